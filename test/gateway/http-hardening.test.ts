/**
 * A real gateway (real registry and ledger in a temp dir, real HTTP listener) with the
 * dashboard mounted, on a clock the test moves:
 *
 *   - password guessing: a source that keeps guessing one account is made to wait, on both
 *     login routes (they share the backoff), and its right password is refused too while it
 *     waits; the clinician logging in from another address is never held up;
 *   - bad percent-encoding in a URL is a 400, never a 500;
 *   - a request body trickled a byte a second is cut off at the default 10 s deadline.
 *
 * 127.0.0.1 and 127.0.0.2 are two sources: Linux answers the whole 127/8 on loopback.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'node:http'
import { connect } from 'node:net'
import { resolveConfig } from '../../gateway/config.ts'
import { startGateway } from '../../gateway/gateway.ts'
import { memoryLogger } from '../../gateway/log.ts'
import { mountDashboard } from '../../dashboard/mount.ts'
import { BODY_TIMEOUT_MS } from '../../http/server.ts'
import { rawGet } from '../http/helpers.ts'

const CLINICIAN = { username: 'alice', password: 'alice-ward-7' }
const ADMIN = { username: 'root', password: 'root-admin-9' }
const WARD = '127.0.0.1' // the clinician's workstation
const GUESSER = '127.0.0.2'

const dir = mkdtempSync(join(tmpdir(), 'mh-gw-http-'))
const clock = { t: Date.now() }
const log = memoryLogger()
const gw = await startGateway(resolveConfig({ dataDir: dir, mqttPort: 'auto', mqttsPort: 0, wsPort: 0, httpPort: 'auto' }), { log, now: () => clock.t })
t.teardown(() => gw.close().finally(() => rmSync(dir, { recursive: true, force: true })))
gw.registry.addUser(CLINICIAN.username, 'clinician', CLINICIAN.password)
gw.registry.addUser(ADMIN.username, 'admin', ADMIN.password)
await mountDashboard(gw)
const port = gw.ports.http!
const base = `http://127.0.0.1:${port}`

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  json: Record<string, unknown>
}

/** A JSON POST from `from` (the source address), as the dashboard page sends it. */
function post(path: string, body: unknown, from: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body)
    const r = request({ host: '127.0.0.1', port, path, method: 'POST', localAddress: from, headers: { 'content-type': 'application/json', origin: base } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: JSON.parse(text) as Record<string, unknown> }))
    })
    r.on('error', reject)
    r.end(data)
  })
}
const dashLogin = (u: { username: string; password: string }, from: string) => post('/api/dash/login', u, from)
const apiLogin = (u: { username: string; password: string }, from: string) => post('/api/login', u, from)
const wrong = { username: CLINICIAN.username, password: 'guess-000' }

// Started first and checked last: it takes the full default deadline.
const trickled = trickle('/api/login')

t.test('guessing one account: the guesser waits, the clinician does not', async (t) => {
  t.equal((await dashLogin(CLINICIAN, GUESSER)).status, 200, 'from either address the right password works at first')
  for (let i = 1; i <= 3; i++) t.equal((await (i % 2 ? dashLogin : apiLogin)(wrong, GUESSER)).status, 401, `wrong password ${i} is checked (free attempt)`)

  const held = await dashLogin(CLINICIAN, GUESSER)
  t.equal(held.status, 429, 'the 4th attempt from the guesser is refused, even with the right password')
  t.equal(held.headers['retry-after'], '1', 'after a wait of 1 s')
  t.match(held.json.error, /too many wrong passwords for this account from your address; try again in 1 s/)
  const heldApi = await apiLogin(CLINICIAN, GUESSER)
  t.equal(heldApi.status, 429, 'the API login route shares the backoff')
  t.equal(heldApi.json.code, 'login-backoff')

  const ward = await dashLogin(CLINICIAN, WARD)
  t.equal(ward.status, 200, 'the clinician at her workstation logs in meanwhile')
  t.match(ward.headers['set-cookie'], [/^mh_session=/])
  t.equal((await apiLogin(CLINICIAN, WARD)).status, 200, 'on the API route too')
  t.equal((await dashLogin(ADMIN, GUESSER)).status, 200, "the guesser's address may still log in to another account")

  clock.t += 1_000
  t.equal((await apiLogin(wrong, GUESSER)).status, 401, 'once the wait is over, a guess is checked again')
  const longer = await dashLogin(wrong, GUESSER)
  t.equal([longer.status, longer.headers['retry-after']].join(' '), '429 2', 'and the next wait is twice as long')
  clock.t += 2_000
  t.equal((await dashLogin(wrong, GUESSER)).status, 401)
  t.equal((await dashLogin(wrong, GUESSER)).headers['retry-after'], '4')
  t.ok(log.entries.some((e) => e.msg === 'login refused' && e.reason === 'login-backoff'), 'refusals are logged')

  clock.t += 4_000
  t.equal((await dashLogin(CLINICIAN, GUESSER)).status, 200, 'the right password once the wait is over')
  for (let i = 1; i <= 3; i++) t.equal((await dashLogin(wrong, GUESSER)).status, 401, `and it clears the record: free attempt ${i} again`)
})

t.test('bad percent-encoding is a 400, never a 500', async (t) => {
  const cookie = String((await dashLogin(ADMIN, WARD)).headers['set-cookie']).split(';')[0]
  for (const target of ['//%zz', '//a%', '/%zz', '/api/%E0%A4%A', '/api/dash/%zz', '/api/dash/patients/%E0%A4%A/trends']) {
    const r = await rawGet(base, target)
    t.equal(r.status, 400, `GET ${target}`)
    t.match(JSON.parse(r.body).error, /percent-encoding/)
  }
  const logged = await new Promise<number>((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port, path: '/api/dash/devices/%zz/revoke', method: 'POST', headers: { cookie, 'content-type': 'application/json' } }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    r.on('error', reject)
    r.end('{}')
  })
  t.equal(logged, 400, 'a logged-in POST with a bad escape too')
  t.notOk(log.entries.some((e) => e.level === 'error' || /route failed/.test(e.msg)), 'nothing was logged as an internal failure')
})

t.test(`a body trickled a byte a second is cut off after ${BODY_TIMEOUT_MS / 1000} s`, async (t) => {
  const r = await trickled
  t.match(r.answer, /^HTTP\/1\.1 408 /, 'answered 408')
  t.match(r.answer, /"code":"body-timeout"/)
  t.ok(r.closedAfterMs >= BODY_TIMEOUT_MS - 50, `the connection was closed after the deadline (${r.closedAfterMs} ms)`)
  t.ok(r.bytesSent < 100, `well before the announced 1,000 bytes (${r.bytesSent} sent)`)
})

/** Announces a 1,000-byte JSON body and sends one byte a second; resolves when the gateway closes the connection. */
function trickle(path: string): Promise<{ answer: string; closedAfterMs: number; bytesSent: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now()
    let answer = ''
    let bytesSent = 0
    let timer: NodeJS.Timeout | undefined
    const s = connect(port, '127.0.0.1', () => {
      s.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`)
      timer = setInterval(() => {
        if (s.writable) s.write(bytesSent++ === 0 ? '{' : ' ')
      }, 1000)
    })
    s.setEncoding('utf8')
    s.on('data', (d: string) => (answer += d))
    s.on('error', () => {}) // a reset once the gateway closes is fine
    s.on('close', () => {
      clearInterval(timer)
      resolve({ answer, closedAfterMs: Date.now() - t0, bytesSent })
    })
    setTimeout(() => reject(new Error('the gateway kept a trickling connection open for 60 s')), 60_000).unref()
  })
}
