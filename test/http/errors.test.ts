/** One error sender: HttpError and mapped domain errors become JSON; anything else a 500 that leaks nothing; mounts go first. */
import t from 'tap'
import { HttpError } from '../../http/errors.ts'
import { requestListener, type Mount } from '../../http/server.ts'
import { sendJson, sendText, sendFile, staticFile, contentTypeOf } from '../../http/respond.ts'
import { call, listen } from './helpers.ts'

class DomainError extends Error {
  constructor(message: string, readonly kind: 'missing' | 'other') {
    super(message)
  }
}

t.test('error mapping over a real socket', async (t) => {
  const internal: unknown[] = []
  const mounts: Mount[] = []
  const base = await listen(
    t,
    requestListener(
      ({ res, path }) => {
        if (path === '/teapot') throw new HttpError(418, 'short and stout', { code: 'teapot', headers: { 'x-why': 'tea' } })
        if (path === '/missing') throw new DomainError('no such thing', 'missing')
        if (path === '/half') {
          res.writeHead(200, { 'content-type': 'text/plain' })
          res.write('partial')
          throw new Error('died mid-answer')
        }
        if (path === '/ok') return sendText(res, 200, 'fine\n')
        throw new Error('secret internal detail at /srv/db')
      },
      {
        mounts,
        mapError: (err) => (err instanceof DomainError && err.kind === 'missing' ? new HttpError(404, err.message) : undefined),
        onInternal: (err) => internal.push(err),
      },
    ),
  )
  const tea = await call(base, 'GET', '/teapot')
  t.equal(tea.status, 418)
  t.same(tea.json(), { error: 'short and stout', code: 'teapot' })
  t.equal(tea.headers['x-why'], 'tea')
  t.equal(tea.headers['cache-control'], 'no-store')
  const missing = await call(base, 'GET', '/missing')
  t.equal(missing.status, 404)
  t.same(missing.json(), { error: 'no such thing' }, 'no code unless one is given')
  const boom = await call(base, 'GET', '/boom')
  t.equal(boom.status, 500)
  t.same(boom.json(), { error: 'internal error' })
  t.notMatch(boom.body, /secret|srv/, 'nothing internal reaches the client')
  t.match(internal, [{ message: 'secret internal detail at /srv/db' }], 'but it is logged')
  await t.rejects(call(base, 'GET', '/half'), 'an answer already under way is cut off, not patched with a second status')
  t.equal(internal.length, 2)

  mounts.push(async (req, res) => {
    if (req.url !== '/mounted') return false
    sendJson(res, 200, { mounted: true })
    return true
  })
  t.same((await call(base, 'GET', '/mounted')).json(), { mounted: true }, 'mounts added while running answer first')
  t.equal((await call(base, 'GET', '/ok')).body, 'fine\n', 'and pass on what they do not answer')
})

t.test('static files and content types', async (t) => {
  t.equal(contentTypeOf('index.html'), 'text/html; charset=utf-8')
  t.equal(contentTypeOf('app.JS'), 'text/javascript; charset=utf-8')
  t.equal(contentTypeOf('app.css'), 'text/css; charset=utf-8')
  t.equal(contentTypeOf('x.json'), 'application/json; charset=utf-8')
  t.equal(contentTypeOf('blob'), 'application/octet-stream')
  const f = staticFile('app.css', Buffer.from('body{}'))
  t.match(f.etag, /^"[A-Za-z0-9_-]{22}"$/)
  t.equal(staticFile('other.css', Buffer.from('body{}')).etag, f.etag, 'the ETag follows the bytes')
  const base = await listen(t, requestListener(({ res }) => sendFile(res, f, { 'content-security-policy': "default-src 'self'" })))
  const r = await call(base, 'GET', '/app.css')
  t.equal(r.body, 'body{}')
  t.match(r.headers, { 'content-type': 'text/css; charset=utf-8', 'content-length': '6', etag: f.etag, 'x-content-type-options': 'nosniff', 'content-security-policy': "default-src 'self'" })
  const head = await call(base, 'HEAD', '/app.css')
  t.equal(head.body, '', 'HEAD: headers only')
  t.equal(head.headers['content-length'], '6')
})
