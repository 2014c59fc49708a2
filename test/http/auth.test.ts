/** Bearer tokens, cookies, and session lookups as middleware, over a real socket. */
import t from 'tap'
import { bearerToken, tokenMatcher, readCookie, sessionCookie, clearedCookie, cookieSession, bearerSession, requireSession, unauthorized } from '../../http/auth.ts'
import { SessionStore } from '../../http/sessions.ts'
import { requestListener } from '../../http/server.ts'
import { sendJson } from '../../http/respond.ts'
import { call, listen } from './helpers.ts'

t.test('bearer tokens', async (t) => {
  const at = (authorization?: string) => bearerToken({ headers: authorization === undefined ? {} : { authorization } } as never)
  t.equal(at('Bearer abc '), 'abc')
  t.equal(at('Bearer '), null)
  t.equal(at('Basic abc'), null)
  t.equal(at(), null)
  const matches = tokenMatcher('s3cret')
  t.ok(matches('s3cret'))
  t.notOk(matches('s3cret!'), 'a longer token does not match')
  t.notOk(matches('s3cre'), 'nor a prefix')
  t.notOk(matches(null))
})

t.test('cookies', async (t) => {
  t.equal(readCookie('x=1; sid=abc; y=2', 'sid'), 'abc')
  t.equal(readCookie('sidx=abc', 'sid'), undefined)
  t.equal(readCookie(undefined, 'sid'), undefined)
  t.equal(sessionCookie('sid', 'tok', false), 'sid=tok; Path=/; HttpOnly; SameSite=Strict')
  t.match(sessionCookie('sid', 'tok', true), /; Secure$/)
  t.equal(clearedCookie('sid'), 'sid=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0')
})

t.test('session and bearer auth as middleware', async (t) => {
  const store = new SessionStore<{ user: string; role: 'clinician' | 'admin' | 'patient' }>()
  const byCookie = requireSession(cookieSession(store, 'sid'), 'log in first')
  const byBearer = requireSession(bearerSession(store), 'session token required')
  const isAdmin = tokenMatcher('admin-token')
  const base = await listen(
    t,
    requestListener(({ req, res, path }) => {
      if (path === '/cookie') return sendJson(res, 200, byCookie(req))
      if (path === '/bearer') return sendJson(res, 200, byBearer(req))
      if (!isAdmin(bearerToken(req))) throw unauthorized('admin token required')
      sendJson(res, 200, { admin: true })
    }),
  )
  const tok = store.create({ user: 'p-1', role: 'patient' })
  t.same((await call(base, 'GET', '/cookie', { headers: { cookie: `a=b; sid=${tok}` } })).json(), { user: 'p-1', role: 'patient' })
  t.same((await call(base, 'GET', '/bearer', { headers: { authorization: `Bearer ${tok}` } })).json(), { user: 'p-1', role: 'patient' })
  const none = await call(base, 'GET', '/cookie')
  t.equal(none.status, 401)
  t.same(none.json(), { error: 'log in first' })
  t.equal(none.headers['www-authenticate'], undefined, 'no bearer challenge for a cookie session')
  t.equal((await call(base, 'GET', '/bearer', { headers: { authorization: 'Bearer forged' } })).status, 401)
  store.destroy(tok)
  t.equal((await call(base, 'GET', '/cookie', { headers: { cookie: `sid=${tok}` } })).status, 401, 'a destroyed session is gone')

  const refused = await call(base, 'GET', '/admin', { headers: { authorization: 'Bearer admin-tokem' } })
  t.equal(refused.status, 401)
  t.equal(refused.headers['www-authenticate'], 'Bearer')
  t.equal((await call(base, 'GET', '/admin', { headers: { authorization: 'Bearer admin-token' } })).status, 200)
})
