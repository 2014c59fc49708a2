/** Request bodies: size limits (announced and streamed), malformed and non-object JSON, the JSON type check. */
import t from 'tap'
import { readBody, readJson, parseJsonObject } from '../../http/body.ts'
import { requestListener } from '../../http/server.ts'
import { sendJson } from '../../http/respond.ts'
import { call, listen } from './helpers.ts'

const json = { 'content-type': 'application/json' }

t.test('readJson over a real socket', async (t) => {
  const base = await listen(
    t,
    requestListener(async ({ req, res, path }) => {
      if (path === '/raw') return sendJson(res, 200, { bytes: (await readBody(req, { maxBytes: 16 })).length })
      sendJson(res, 200, await readJson(req, { maxBytes: 64, requireJsonType: path === '/typed' }))
    }),
  )
  const ok = await call(base, 'POST', '/', { headers: json, body: '{"a":1}' })
  t.equal(ok.status, 200)
  t.same(ok.json(), { a: 1 })
  t.equal(ok.headers['content-type'], 'application/json; charset=utf-8')

  const malformed = await call(base, 'POST', '/', { headers: json, body: '{"a":' })
  t.equal(malformed.status, 400)
  t.match(malformed.json().error, /^invalid JSON body: /)
  for (const body of ['[1,2]', 'null', '"x"', '3', '']) {
    const r = await call(base, 'POST', '/', { headers: json, body })
    t.equal(r.status, 400, `${JSON.stringify(body)} is not a JSON object`)
  }

  const big = '{"a":"' + 'x'.repeat(100) + '"}'
  const announced = await call(base, 'POST', '/', { headers: json, body: big })
  t.equal(announced.status, 413, 'over the limit by content-length')
  t.same(announced.json(), { error: 'body over 64 bytes' })
  const streamed = await call(base, 'POST', '/', { headers: json, chunks: [Buffer.from(big.slice(0, 50)), Buffer.from(big.slice(50))] })
  t.equal(streamed.status, 413, 'over the limit while streaming (chunked, no length)')
  const huge = await call(base, 'POST', '/raw', { chunks: Array.from({ length: 64 }, () => Buffer.alloc(16 * 1024, 1)) })
  t.equal(huge.status, 413, 'a megabyte past the limit still gets its answer')
  t.equal((await call(base, 'POST', '/raw', { body: 'x'.repeat(16) })).json().bytes, 16, 'exactly the limit is fine')

  const untyped = await call(base, 'POST', '/typed', { body: '{}' })
  t.equal(untyped.status, 415)
  t.same(untyped.json(), { error: 'expected content-type application/json, got none' })
  t.equal((await call(base, 'POST', '/typed', { headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{}' })).status, 200)
  t.equal((await call(base, 'POST', '/', { body: '{}' })).status, 200, 'the type is only checked when asked for')
})

t.test('parseJsonObject', async (t) => {
  t.same(parseJsonObject(Buffer.from('{"k":[1]}')), { k: [1] })
  t.throws(() => parseJsonObject('nope'), { name: 'HttpError', status: 400, message: /^invalid JSON body: / })
})
