/**
 * HTTPS and WSS on a real `mhealth gateway` process: the HTTP API over TLS pinned to the
 * printed certificate fingerprint (the same one MQTTS uses), MQTT over wss:// with the same
 * pin, and the dashboard over HTTPS in the real browser (login, Secure cookie, a
 * state-changing request through the same-origin check).
 */
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PeerCertificate } from 'node:tls'
import { launchChromium } from '../helpers/chromium.ts'
import { runCli } from '../helpers/cli.ts'
import { connectDevice, endClient, frame, newDeviceKey, publishAcked } from './helpers/devices.ts'
import { spawnGateway } from './helpers/process.ts'

const dir = mkdtempSync(join(tmpdir(), 'mh-https-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const data = join(dir, 'data')

/** TLS options that trust exactly the certificate whose SHA-256 fingerprint is `pin`. */
function pinned(ca: Buffer, pin: string) {
  return {
    ca,
    checkServerIdentity: (_host: string, cert: PeerCertificate): Error | undefined =>
      cert.fingerprint256 === pin ? undefined : new Error(`certificate fingerprint ${cert.fingerprint256} is not the pinned ${pin}`),
  }
}

function httpsJson(url: string, tlsOpts: ReturnType<typeof pinned>, o: { method?: string; headers?: Record<string, string>; body?: unknown } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: o.method ?? 'GET', headers: { 'content-type': 'application/json', ...o.headers }, ...tlsOpts, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) as Record<string, unknown> }))
    })
    req.on('error', reject)
    req.end(o.body === undefined ? undefined : JSON.stringify(o.body))
  })
}

t.test('mhealth gateway --https-port --wss-port: API, MQTT and dashboard over TLS', async (t) => {
  const add = await runCli(['user', 'add', 'nurse.ann', '--role', 'clinician', '--data', data], { input: 'ward-seven-night\n' })
  t.equal(add.code, 0, add.stderr)
  const gw = await spawnGateway(data, ['--https-port', 'auto', '--wss-port', 'auto', '--dashboard', '--log-level', 'warn'])
  t.teardown(() => gw.stop())
  const ports = gw.ready.ports as typeof gw.ready.ports & { https: number | null; wss: number | null }
  t.ok(ports.https && ports.wss, 'HTTPS and WSS bound')
  t.equal(ports.mqtts, null, 'MQTTS stays as asked (off): the certificate is made for HTTPS and WSS alone')
  const printed = /fingerprint \(pin this on devices\): ([0-9A-F:]{95})/.exec(gw.stderr())?.[1]
  t.ok(printed, 'the fingerprint is printed')
  t.equal(gw.ready.tlsSha256, printed, 'and is in the ready line')
  const ca = readFileSync(join(data, 'tls', 'cert.pem'))
  const pin = pinned(ca, printed!)
  const base = `https://127.0.0.1:${ports.https}`
  t.equal((gw.ready as { dashboard?: string }).dashboard, `${base}/`, 'the ready line names the HTTPS dashboard URL')

  const health = await httpsJson(`${base}/healthz`, pin)
  t.equal(health.status, 200, 'GET /healthz over HTTPS, pinned')
  t.equal(health.body.ok, true)

  const wrongPin = await httpsJson(`${base}/healthz`, pinned(ca, printed!.replace(/^../, printed!.startsWith('00') ? '11' : '00'))).catch((e: Error) => e)
  t.match(String(wrongPin), /not the pinned/, 'a different pin is refused')

  const adminToken = readFileSync(join(data, 'admin.token'), 'utf8').trim()
  const k = newDeviceKey('se')
  if (k.type !== 'p256') throw new Error('expected a P-256 key')
  const reg = await httpsJson(`${base}/api/devices`, pin, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}` },
    body: { profile: 'se', publicKey: Buffer.from(k.publicKey).toString('hex'), patient: 'p-1' },
  })
  t.equal(reg.status, 201, `device registered through the admin API over HTTPS: ${JSON.stringify(reg.body)}`)

  await t.test('MQTT over wss:// with the same pin: a frame is acknowledged', async (t) => {
    const c = await connectDevice(`wss://127.0.0.1:${ports.wss}`, k, { ca, wsOptions: { checkServerIdentity: pin.checkServerIdentity } } as never)
    await publishAcked(c, `mhealth/dev/${k.id}/frames`, frame(k, 1))
    await endClient(c)
    const untrusted = await connectDevice(`wss://127.0.0.1:${ports.wss}`, k).catch((e: Error) => e)
    t.match(String(untrusted), /self.signed|certificate/i, 'a client that does not trust the certificate is not connected')
    const plain = await connectDevice(`ws://127.0.0.1:${ports.wss}`, k, { connectTimeout: 3000 }).catch((e: Error) => e)
    t.type(plain, Error, 'plain ws:// on the WSS port does not connect')
  })

  await t.test('the dashboard over HTTPS in chromium: login, Secure cookie, a POST passes the same-origin check', async (t) => {
    const profile = mkdtempSync(join(tmpdir(), 'mh-chromium-'))
    const ctx = await launchChromium(profile, { ignoreHTTPSErrors: true })
    t.teardown(async () => {
      await ctx.close()
      rmSync(profile, { recursive: true, force: true })
    })
    const tab = ctx.pages()[0] ?? (await ctx.newPage())
    const resp = await tab.goto(`${base}/`)
    const sec = await resp!.securityDetails()
    t.ok(sec, 'the page came over TLS')
    await tab.fill('input[name=username]', 'nurse.ann')
    await tab.fill('input[name=password]', 'ward-seven-night')
    await tab.click('#login button[type=submit]')
    await tab.locator('#login').waitFor({ state: 'hidden', timeout: 30_000 })
    const who = await tab.evaluate(() => fetch('/api/dash/me').then((r) => r.json() as Promise<{ userId: string }>))
    t.equal(who.userId, 'nurse.ann', 'a browser logs in over HTTPS')
    const cookies = await ctx.cookies(base)
    t.ok(cookies.length > 0 && cookies.every((c) => c.secure && c.httpOnly), 'the session cookie is Secure and HttpOnly over HTTPS')
    const logout = await tab.evaluate(() => fetch('/api/dash/logout', { method: 'POST', headers: { 'content-type': 'application/json' } }).then((r) => r.status))
    t.equal(logout, 200, 'a state-changing request from the https page is accepted as same-origin')
    const after = await tab.evaluate(() => fetch('/api/dash/me').then((r) => r.status))
    t.equal(after, 401, 'and it took effect')
  })

  await t.test('over plain HTTP the cookie is not Secure (it would never be sent back)', async (t) => {
    const login = await fetch(`http://127.0.0.1:${ports.http}/api/dash/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'nurse.ann', password: 'ward-seven-night' }) })
    t.equal(login.status, 200)
    t.notMatch(login.headers.get('set-cookie') ?? '', /Secure/)
  })
})
