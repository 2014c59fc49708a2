/** The session store: idle and absolute expiry, revocation, the bound (least recently used goes). */
import t from 'tap'
import { SessionStore } from '../../http/sessions.ts'

const who = (user: string, role = 'clinician') => ({ user, role })

t.test('idle expiry, refreshed by use', async (t) => {
  let now = 0
  const s = new SessionStore({ idleMs: 1000, now: () => now })
  const tok = s.create(who('a'))
  t.match(tok, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url')
  t.not(s.create(who('a')), tok, 'every login gets a new token')
  now = 900
  t.same(s.lookup(tok), { data: who('a'), expiresAt: 1900 })
  now = 1899
  t.same(s.get(tok), who('a'))
  now = 2899
  t.equal(s.get(tok), null, 'idle for its whole idle time')
  t.equal(s.get(undefined), null)
  t.equal(s.get(''), null)
  t.equal(s.get('nope'), null)
})

t.test('absolute expiry, however busy', async (t) => {
  let now = 0
  const s = new SessionStore({ maxAgeMs: 1000, idleMs: Infinity, now: () => now })
  const tok = s.create(who('root', 'admin'))
  t.same(s.lookup(tok), { data: who('root', 'admin'), expiresAt: 1000 })
  now = 999
  t.equal(s.get(tok)?.role, 'admin', 'the role is on the session')
  now = 1000
  t.equal(s.get(tok), null)
  t.equal(s.size, 0, 'an expired session is dropped when found')
})

t.test('revocation', async (t) => {
  const s = new SessionStore<{ user: string; role: string }>()
  const a1 = s.create(who('a'))
  const a2 = s.create(who('a', 'admin'))
  const b = s.create(who('b'))
  s.destroy(a1)
  t.equal(s.get(a1), null)
  s.destroy(undefined)
  s.destroy('unknown')
  t.equal(s.destroyWhere((d) => d.user === 'a'), 1, "all of a user's sessions")
  t.equal(s.get(a2), null)
  t.ok(s.get(b))
})

t.test('bounded: expired sessions go first, then the least recently used', async (t) => {
  let now = 0
  const s = new SessionStore({ maxSessions: 2, idleMs: 100, now: () => now })
  const a = s.create(who('a'))
  now = 50
  const b = s.create(who('b'))
  now = 120
  const c = s.create(who('c'))
  t.equal(s.size, 2, 'a had expired and made room')
  t.ok(s.get(b) && s.get(c))
  s.get(b)
  const d = s.create(who('d'))
  t.equal(s.get(c), null, 'c was least recently used')
  t.ok(s.get(b) && s.get(d))
  t.equal(s.get(a), null)
})

t.test('one store, several kinds: a token opens only its own kind, each kind keeps its lifetime, revocation reaches all', async (t) => {
  let now = 0
  const s = new SessionStore({ now: () => now })
  const api = s.create(who('a'), { kind: 'api', maxAgeMs: 1000, idleMs: Infinity })
  const dash = s.create(who('a'), { kind: 'dashboard', idleMs: 500 })
  const other = s.create(who('b'), { kind: 'dashboard', idleMs: 500 })
  t.same(s.get(api, 'api'), who('a'))
  t.equal(s.get(api, 'dashboard'), null, 'an API token is not a dashboard session')
  t.equal(s.get(dash, 'api'), null, 'a dashboard cookie is not an API token')
  t.equal(s.get(dash), null, 'nor a session of the default kind')
  t.same(s.get(dash, 'dashboard'), who('a'), 'a lookup of the wrong kind did not end the session')
  now = 400
  t.ok(s.get(dash, 'dashboard'), 'used at 400: idle clock restarts')
  t.ok(s.get(api, 'api'))
  now = 800
  t.ok(s.get(dash, 'dashboard'), 'used again at 800')
  now = 999
  t.ok(s.get(api, 'api'), 'API token: absolute 1,000 ms')
  t.equal(s.get(other, 'dashboard'), null, 'dashboard: idle 500 ms')
  now = 1000
  t.equal(s.get(api, 'api'), null, 'API token ended at its age, however busy')
  now = 1200
  t.ok(s.get(dash, 'dashboard'), 'the dashboard session lives on while used')
  const api2 = s.create(who('a'), { kind: 'api' })
  t.equal(s.destroyWhere((d) => (d as unknown as { user: string }).user === 'a'), 2, "one revocation ends the user's sessions of every kind")
  t.equal(s.get(api2, 'api'), null)
  t.equal(s.get(dash, 'dashboard'), null)
})
