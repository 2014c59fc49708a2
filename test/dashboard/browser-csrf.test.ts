/**
 * Cross-site request forgery, tried for real: the admin is logged in to the dashboard
 * in Chromium, then opens a page served from ANOTHER port of the same host (same site,
 * so her SameSite=Strict cookie rides along). That page tries to revoke a device and to
 * log her out: form posts (form-encoded, into frames) and fetch() with credentials
 * (no-cors with a simple content type, and a JSON one that needs a preflight).
 * Every attempt must be refused: the device stays registered and active (checked through
 * the admin API with the admin token) and her session stays valid. Then the dashboard's
 * own page revokes another device and logs out, to show the guard lets it through.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BrowserContext } from 'playwright-core'
import { launchChromium } from '../helpers/chromium.ts'
import { resolveConfig } from '../../gateway/config.ts'
import { startGateway } from '../../gateway/gateway.ts'
import { memoryLogger } from '../../gateway/log.ts'
import type { HttpMount } from '../../gateway/http-api.ts'
import { mountDashboard } from '../../dashboard/mount.ts'
import { registerSim } from '../gateway/helpers/devices.ts'
import { waitFor } from '../helpers/wait.ts'
import { ADMIN, newPatient } from './helpers.ts'


// A real gateway with two registered devices and the dashboard mounted behind a spy that
// records what each POST to the dashboard carried and how it was answered.
interface Seen { url: string; origin?: string; site?: string; type?: string; cookie: boolean; status?: number }
const seen: Seen[] = []
const spy: HttpMount = async (req, res) => {
  if (req.method === 'POST' && req.url?.startsWith('/api/dash/')) {
    const s: Seen = { url: req.url, origin: req.headers.origin, site: req.headers['sec-fetch-site'] as string | undefined, type: req.headers['content-type'], cookie: /mh_session=/.test(req.headers.cookie ?? '') }
    seen.push(s)
    res.once('finish', () => (s.status = res.statusCode))
  }
  return false
}
const dir = mkdtempSync(join(tmpdir(), 'mh-csrf-'))
const gw = await startGateway(resolveConfig({ dataDir: dir, mqttPort: 'auto', mqttsPort: 0, wsPort: 0, httpPort: 'auto' }), { log: memoryLogger() })
gw.registry.addUser(ADMIN.username, 'admin', ADMIN.password)
const [target, other] = [newPatient('Patient A'), newPatient('Patient B')]
for (const p of [target, other]) registerSim(gw.registry, p.device, p.id)
gw.mountHttp(spy)
await mountDashboard(gw)
const env = { base: `http://127.0.0.1:${gw.ports.http}` }
const profile = mkdtempSync(join(tmpdir(), 'mh-chromium-'))
let ctx: BrowserContext | null = null

// The attacker: a page on another port of 127.0.0.1, aimed at the dashboard.
const revokeUrl = `${env.base}/api/dash/devices/${target.device.id}/revoke`
const logoutUrl = `${env.base}/api/dash/logout`
const evil = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
  res.end(`<!doctype html><title>cute cats</title>
<iframe name="f1"></iframe><iframe name="f2"></iframe>
<form id="revoke" method="POST" action="${revokeUrl}" target="f1"><input name="confirm" value="yes"></form>
<form id="logout" method="POST" action="${logoutUrl}" target="f2"></form>
<script>
const post = (url, init) => fetch(url, { method: 'POST', credentials: 'include', ...init }).then((r) => r.type + ' ' + r.status, (e) => 'refused by the browser: ' + e.message)
const submitInto = (form, frame) => new Promise((resolve) => {
  document.querySelector('iframe[name=' + frame + ']').addEventListener('load', resolve, { once: true })
  document.getElementById(form).submit()
})
window.addEventListener('load', async () => {
  const results = {
    revokeNoCorsText: await post(${JSON.stringify(revokeUrl)}, { mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '{}' }),
    revokeNoCorsForm: await post(${JSON.stringify(revokeUrl)}, { mode: 'no-cors', body: new URLSearchParams({ confirm: 'yes' }) }),
    revokeNoCorsEmpty: await post(${JSON.stringify(revokeUrl)}, { mode: 'no-cors' }),
    revokeCorsJson: await post(${JSON.stringify(revokeUrl)}, { headers: { 'content-type': 'application/json' }, body: '{}' }),
    logoutNoCors: await post(${JSON.stringify(logoutUrl)}, { mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '{}' }),
  }
  await submitInto('revoke', 'f1')
  await submitInto('logout', 'f2')
  window.attackDone = results
})
</script>`)
})
await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r))
const evilBase = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`

t.teardown(async () => {
  await ctx?.close()
  evil.closeAllConnections()
  evil.close()
  await gw.close()
  rmSync(dir, { recursive: true, force: true })
  rmSync(profile, { recursive: true, force: true })
})

const adminApi = (path: string) => fetch(env.base + path, { headers: { authorization: `Bearer ${gw.identity.adminToken}` } }).then((r) => r.json() as Promise<{ id: string; status: string }>)

ctx = await launchChromium(profile, { viewport: { width: 1300, height: 800 } })
const page = ctx.pages()[0] ?? (await ctx.newPage())

t.test('the admin logs in to the dashboard', async (t) => {
  await page.goto(env.base + '/')
  await page.fill('input[name=username]', ADMIN.username)
  await page.fill('input[name=password]', ADMIN.password)
  await page.click('#login button[type=submit]')
  await page.locator('#login').waitFor({ state: 'hidden' })
  const cookies = await ctx!.cookies(env.base)
  t.match(cookies, [{ name: 'mh_session', sameSite: 'Strict', httpOnly: true }], 'a SameSite=Strict session cookie')
  t.equal((await adminApi(`/api/devices/${target.device.id}`)).status, 'active')
})

t.test('a page on another port of the same host cannot revoke a device or log her out', async (t) => {
  seen.length = 0 // the login is not part of the attack
  const attacker = await ctx!.newPage()
  await attacker.goto(evilBase + '/')
  await attacker.waitForFunction(() => (window as unknown as { attackDone?: unknown }).attackDone !== undefined, undefined, { timeout: 30_000 })
  const results = await attacker.evaluate(() => (window as unknown as { attackDone: Record<string, string> }).attackDone)
  t.comment(JSON.stringify(results))

  // What went out: 3 no-cors fetches at revoke, 1 at logout, then the 2 form posts. The JSON
  // fetch needs a CORS preflight, which the dashboard does not grant, so its POST is never sent.
  t.match(results.revokeCorsJson, /^refused by the browser/, 'the JSON fetch died at its preflight')
  await waitFor(() => seen.length === 6 && seen.every((s) => s.status !== undefined), () => `six answered POSTs, saw ${JSON.stringify(seen)}`, 10_000)
  const revoke = `/api/dash/devices/${target.device.id}/revoke`
  t.same(seen.map((s) => s.url), [revoke, revoke, revoke, '/api/dash/logout', revoke, '/api/dash/logout'], 'the six cross-site POSTs reached the dashboard')
  for (const s of seen) {
    t.match(s, { origin: evilBase, site: 'same-site', cookie: true }, `${s.url} (${s.type ?? 'no content-type'}) came from the attacker's origin, with the admin's cookie`)
    t.equal(s.status, 403, `${s.url} (${s.type ?? 'no content-type'}) refused`)
  }
  await attacker.close()

  const dev = await adminApi(`/api/devices/${target.device.id}`)
  t.equal(dev.status, 'active', 'the device is still registered and active (admin API)')
  const me = await page.evaluate(() => fetch('/api/dash/me').then((r) => r.status))
  t.equal(me, 200, "the admin's session is still valid")
})

t.test("the dashboard's own page still revokes and logs out", async (t) => {
  await page.goto(env.base + '/#/devices')
  const row = page.locator(`#devices tr[data-device="${other.device.id}"]`)
  await row.locator('button', { hasText: 'Revoke' }).click()
  await page.locator(`#devices tr[data-device="${other.device.id}"] td`, { hasText: /^revoked$/ }).waitFor()
  t.equal((await adminApi(`/api/devices/${other.device.id}`)).status, 'revoked', 'revoked from the same origin')
  t.equal((await adminApi(`/api/devices/${target.device.id}`)).status, 'active', 'the other device untouched')
  await page.click('#logout')
  await page.locator('#login').waitFor({ state: 'visible' })
  t.equal(await page.evaluate(() => fetch('/api/dash/me').then((r) => r.status)), 401, 'logged out')
})
