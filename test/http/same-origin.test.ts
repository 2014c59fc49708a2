/**
 * The cross-site request guard over a real socket: each check on its own (Fetch Metadata,
 * Origin, the JSON content type), the safe methods that pass, and the clear 403/415 it answers.
 */
import t from 'tap'
import { assertSameOrigin, isStateChanging, mediaType } from '../../http/same-origin.ts'
import { requestListener } from '../../http/server.ts'
import { sendJson } from '../../http/respond.ts'
import { call, listen } from './helpers.ts'

const JSON_TYPE = { 'content-type': 'application/json' }

t.test('assertSameOrigin over a real socket', async (t) => {
  let ran = 0
  const base = await listen(
    t,
    requestListener(({ req, res }) => {
      assertSameOrigin(req)
      ran++
      sendJson(res, 200, { ok: true })
    }),
  )
  const self = base // http://127.0.0.1:PORT, which is what node sends as Host
  const port = new URL(base).port
  const post = (headers: Record<string, string>, body = '{}') => call(base, 'POST', '/act', { headers, body })

  // Allowed: this server's own page, a non-browser client, and the same origin spelled differently.
  t.equal((await post({ ...JSON_TYPE, origin: self, 'sec-fetch-site': 'same-origin' })).status, 200, 'own page (Origin and Sec-Fetch-Site)')
  t.equal((await post(JSON_TYPE)).status, 200, 'no Origin, no Fetch Metadata: a non-browser client')
  t.equal((await post({ ...JSON_TYPE, 'sec-fetch-site': 'none' })).status, 200, "Sec-Fetch-Site 'none' (user-initiated)")
  t.equal((await post({ 'content-type': 'Application/JSON; charset=utf-8', origin: `HTTP://127.0.0.1:${port}` })).status, 200, 'case and parameters do not matter')
  t.equal((await call(base, 'POST', '/act', { headers: { ...JSON_TYPE, host: 'ward.example:80', origin: 'http://ward.example' }, body: '{}' })).status, 200, 'an explicit default port is the same origin')

  // Refused: another origin, by each signal alone.
  const before = ran
  const sameSite = await post({ ...JSON_TYPE, 'sec-fetch-site': 'same-site' })
  t.equal(sameSite.status, 403, "Sec-Fetch-Site 'same-site' (another port of this host)")
  t.same(sameSite.json().code, 'cross-site')
  t.match(sameSite.json().error, /^cross-site request refused: Sec-Fetch-Site is 'same-site'/)
  t.equal((await post({ ...JSON_TYPE, 'sec-fetch-site': 'cross-site' })).status, 403, "Sec-Fetch-Site 'cross-site'")
  const otherPort = await post({ ...JSON_TYPE, origin: `http://127.0.0.1:${Number(port) + 1}` })
  t.equal(otherPort.status, 403, 'Origin on another port')
  t.match(otherPort.json().error, /Origin http:\/\/127\.0\.0\.1:\d+ is not this server \(127\.0\.0\.1:\d+\)/)
  t.equal((await post({ ...JSON_TYPE, origin: 'http://localhost:' + port })).status, 403, 'Origin with another host name')
  t.equal((await post({ ...JSON_TYPE, origin: 'null' })).status, 403, "Origin 'null' (sandboxed frame)")
  t.equal((await post({ ...JSON_TYPE, origin: 'garbage' })).status, 403, 'an unparsable Origin')
  t.equal((await post({ ...JSON_TYPE, origin: 'file://' })).status, 403, 'a non-http Origin')

  // Refused: what a plain form (or a no-cors fetch) can send, even with no Origin at all.
  for (const type of ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/plain', 'application/jsonp', '']) {
    const r = await post(type ? { 'content-type': type } : {}, type ? 'a=1' : '')
    t.equal(r.status, 415, `content-type '${type}' refused`)
    t.equal(r.json().code, 'json-required')
  }
  for (const method of ['PUT', 'PATCH', 'DELETE']) t.equal((await call(base, method, '/act', { headers: { origin: 'http://evil.example' } })).status, 403, `${method} is guarded too`)
  t.equal(ran, before, 'no refused request reached the handler')

  // Safe methods change nothing: they pass whatever they carry.
  for (const method of ['GET', 'HEAD', 'OPTIONS']) t.equal((await call(base, method, '/act', { headers: { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' } })).status, 200, `${method} passes`)
})

t.test('the helpers', async (t) => {
  t.same(['GET', 'head', 'OPTIONS'].map(isStateChanging), [false, false, false])
  t.same(['POST', 'put', 'PATCH', 'DELETE', 'PROPFIND'].map(isStateChanging), [true, true, true, true, true])
  t.equal(mediaType(' Application/Json ; charset=UTF-8'), 'application/json')
  t.equal(mediaType(undefined), '')
})
