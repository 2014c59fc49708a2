/** The router: params (decoded), order, 404, 405 with Allow, over a real socket through the error sender. */
import t from 'tap'
import { Router } from '../../http/router.ts'
import { requestListener, type RequestContext } from '../../http/server.ts'
import { sendJson } from '../../http/respond.ts'
import { call, listen } from './helpers.ts'

const echo = (name: string) => ({ res }: RequestContext, params: Record<string, string>) => sendJson(res, 200, { route: name, params })
const routes = () =>
  new Router<RequestContext>()
    .get('/a/new', echo('literal first'))
    .get('/a/:id', echo('param'))
    .post('/a/:id/revoke', echo('revoke'))

t.test('matching', async (t) => {
  const r = routes().on('DELETE', '/a/:id', echo('delete'))
  const m = r.match('GET', '/a/x%2Fy')
  t.ok(m.handler)
  t.same(m.handler && m.params, { id: 'x/y' }, 'params are percent-decoded')
  t.same(r.match('GET', '/a/'), { handler: null, allowed: [] }, 'an empty segment is no param')
  t.same(r.match('GET', '/a/b/c'), { handler: null, allowed: [] }, 'segment counts must agree')
  t.same(r.match('PUT', '/a/b'), { handler: null, allowed: ['GET', 'DELETE'] })
  t.ok(r.has('/a/b/revoke'))
  t.notOk(r.has('/b'))
  t.throws(() => r.match('GET', '/a/%E0%A4%A'), { status: 400, message: /percent-encoding/ })
  t.throws(() => new Router().get('a', () => {}), /starting with \//)
})

t.test('dispatch over a real socket', async (t) => {
  const r = routes()
  const base = await listen(t, requestListener((c) => r.dispatch(c.method, c.path, c)))
  t.same((await call(base, 'GET', '/a/new')).json(), { route: 'literal first', params: {} }, 'patterns are tried in order')
  t.same((await call(base, 'GET', '/a/7?x=1')).json(), { route: 'param', params: { id: '7' } })
  t.same((await call(base, 'POST', '/a/dev%201/revoke')).json(), { route: 'revoke', params: { id: 'dev 1' } })
  const missing = await call(base, 'GET', '/nope')
  t.equal(missing.status, 404)
  t.same(missing.json(), { error: 'no route GET /nope' })
  const wrong = await call(base, 'DELETE', '/a/7')
  t.equal(wrong.status, 405)
  t.equal(wrong.headers.allow, 'GET')
  t.match(wrong.json().error, 'DELETE not allowed on /a/7')
  t.equal((await call(base, 'GET', '/a/%E0%A4%A')).status, 400, 'bad percent-encoding is a 400, not a crash')
})
