/** Browser sessions: idle expiry, bounded count (least recently used goes), cookie parsing. */
import t from 'tap'
import { SessionStore, readCookie, sessionCookie } from '../../dashboard/session.ts'

const actor = (n: string) => ({ userId: n, role: 'clinician' as const })

t.test('idle expiry', async (t) => {
  let now = 0
  const s = new SessionStore({ idleMs: 1000, now: () => now })
  const tok = s.create(actor('a'))
  t.match(tok, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url')
  now = 900
  t.same(s.get(tok), actor('a'))
  now = 1800
  t.same(s.get(tok), actor('a'), 'use refreshes the idle timer')
  now = 2801
  t.equal(s.get(tok), null, 'idle too long')
  t.equal(s.get(undefined), null)
  t.equal(s.get('nope'), null)
})

t.test('bounded: the least recently used session ends first', async (t) => {
  const s = new SessionStore({ maxSessions: 2 })
  const a = s.create(actor('a'))
  const b = s.create(actor('b'))
  s.get(a)
  const c = s.create(actor('c'))
  t.equal(s.get(b), null, 'b was least recently used')
  t.ok(s.get(a) && s.get(c))
  s.destroy(a)
  t.equal(s.get(a), null)
})

t.test('cookies', async (t) => {
  t.equal(readCookie('x=1; mh_session=abc; y=2', 'mh_session'), 'abc')
  t.equal(readCookie('mh_sessionx=abc', 'mh_session'), undefined)
  t.equal(readCookie(undefined, 'mh_session'), undefined)
  t.match(sessionCookie('tok', true), /HttpOnly; SameSite=Strict; Secure$/)
  t.notMatch(sessionCookie('tok', false), /Secure/)
})
