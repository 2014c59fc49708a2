/**
 * Request targets that are not valid URLs are the client's mistake: a 400 with a JSON error,
 * never a 500. And a target starting with `//` is a path, not a host. Raw sockets, since no
 * HTTP client sends such targets.
 */
import t from 'tap'
import { requestListener } from '../../http/server.ts'
import { sendJson } from '../../http/respond.ts'
import { Router } from '../../http/router.ts'
import type { RequestContext } from '../../http/server.ts'
import { listen, rawGet } from './helpers.ts'

t.test('bad targets are 400s; // paths stay paths', async (t) => {
  const internal: unknown[] = []
  const routes = new Router<RequestContext>()
    .get('/api/x/:id', ({ res, path }, p) => sendJson(res, 200, { path, id: p.id }))
    .get('//api/x', ({ res, path }) => sendJson(res, 200, { path }))
  const base = await listen(t, requestListener((c) => routes.dispatch(c.method, c.path, c), { onInternal: (e) => internal.push(e) }))

  for (const target of ['//%zz', '//a%', '/%zz', '/nothing/%E0%A4%A', '/api/x/%E0%A4%A', 'http://[::1/']) {
    const r = await rawGet(base, target)
    t.equal(r.status, 400, `${target} is a 400`)
    t.match(JSON.parse(r.body), { error: /^request target: expected a path \(or absolute URL\) with valid percent-encoding, got / })
  }

  t.same(JSON.parse((await rawGet(base, '//api/x')).body), { path: '//api/x' }, "'//api/x' is that path, not host 'api' and path /x")
  t.equal((await rawGet(base, '//[')).status, 404, "'//[' is a path no route has (it crashed the URL parser)")
  t.equal((await rawGet(base, '//evil/api/x/1')).status, 404, "'//evil/api/x/1' does not reach /api/x/:id")
  t.same(JSON.parse((await rawGet(base, '/api/x/a%20b?q=%zz')).body), { path: '/api/x/a%20b', id: 'a b' }, 'good targets are unchanged; a bad query escape stays as sent')
  t.same(JSON.parse((await rawGet(base, 'http://any.host/api/x/7')).body), { path: '/api/x/7', id: '7' }, 'an absolute-form target still works')
  t.same(internal, [], 'nothing was logged as an internal failure')
})
