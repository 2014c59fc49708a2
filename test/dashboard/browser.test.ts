/**
 * The dashboard as a clinician uses it, in Debian's Chromium driven by
 * playwright-core, against a real gateway (real ledger in a temp dir) fed by
 * real MQTT boards publishing signed frames in real time:
 *
 *   log in → tiles with waveforms drawing and numbers changing → the falling
 *   SpO2 patient raises the alarm → patient view: "verify" checks a frame's
 *   proof in the browser ("verified"; a tampered proof "failed: …") → the
 *   patient revokes consent (admin consent page, another origin so another
 *   cookie jar) → the tile disappears and its data stops.
 *
 * Screenshots go to test-output/ (gitignored) for review.
 */
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BrowserContext, Page } from 'playwright-core'
import { launchChromium } from '../helpers/chromium.ts'
import { ADMIN, Board, CLINICIAN, Client, startDashEnv } from './helpers.ts'
import { waitFor } from '../helpers/wait.ts'

const OUT = fileURLToPath(new URL('../../test-output/', import.meta.url))
mkdirSync(OUT, { recursive: true })

const env = await startDashEnv(2)
const [calm, falling] = env.patients
const profile = mkdtempSync(join(tmpdir(), 'mh-chromium-'))
let ctx: BrowserContext | null = null
const boards: Board[] = []
let feeder: NodeJS.Timeout | null = null
t.teardown(async () => {
  if (feeder) clearInterval(feeder)
  await ctx?.close()
  for (const b of boards) await b.close()
  await env.close()
  rmSync(profile, { recursive: true, force: true })
})

// The clinician may see both patients (granted through the same route the consent page uses).
const root = new Client(env.base)
await root.login(ADMIN)
for (const p of env.patients) {
  const r = await root.req('POST', `/api/dash/patients/${p.id}/consent`, { action: 'grant', clinicianId: CLINICIAN.username, scope: 'live' })
  if (r.status !== 200) throw new Error(`grant: ${r.status} ${r.body}`)
}

// Boards: the calm patient's frames carry no derived values (the gateway computes HR
// and SpO2 with signal/); the falling patient's board reports an SpO2 dropping 1.5 %/s.
const start = Date.now() - 2000
boards.push(new Board(calm.device, env.mqttUrl, start))
boards.push(new Board(falling.device, env.mqttUrl, start, (seq) => ({ hr: { value: 84, quality: 90 }, pr: { value: 84, quality: 85 }, spo2: { value: Math.max(70, 97 - 1.5 * seq), quality: 88 } })))
for (const b of boards) {
  await b.connect()
  await b.send(2)
}
let sending = false
feeder = setInterval(() => {
  if (sending) return
  sending = true
  Promise.all(boards.filter((b) => b.client?.connected).map((b) => b.send(1))).finally(() => (sending = false))
}, 1000)

ctx = await launchChromium(profile, { viewport: { width: 1300, height: 800 } })
const page = ctx.pages()[0] ?? (await ctx.newPage())
const pageErrors: string[] = []
page.on('pageerror', (e) => pageErrors.push(e.message))

const tile = (p: Page, id: string) => p.locator(`.tile[data-patient="${id}"]`)

t.test('login wall, then the ward with live tiles', async (t) => {
  await page.goto(env.base + '/')
  await page.locator('#login').waitFor({ state: 'visible' })
  t.equal(await page.locator('.tile').count(), 0, 'no tiles before login')
  await page.fill('input[name=username]', CLINICIAN.username)
  await page.fill('input[name=password]', 'not-the-password')
  await page.click('#login button[type=submit]')
  await page.locator('#login-error', { hasText: /wrong username or password/ }).waitFor()
  await page.fill('input[name=password]', CLINICIAN.password)
  await page.click('#login button[type=submit]')
  await tile(page, calm.id).waitFor()
  await tile(page, falling.id).waitFor()
  t.match(await tile(page, calm.id).locator('h3').innerText(), /Patient A\s+Bed 1/)
  t.equal(await page.locator('nav a[href="#/devices"]').isHidden(), true, 'admin pages are not offered to a clinician')
})

t.test('waveforms draw and numbers change', async (t) => {
  const hr = tile(page, calm.id).locator('.num.hr b')
  await page.waitForFunction((id) => /^\d+$/.test(document.querySelector(`.tile[data-patient="${id}"] .num.hr b`)?.textContent ?? ''), calm.id, { timeout: 20_000 })
  const hrValue = Number(await hr.innerText())
  t.ok(hrValue > 65 && hrValue < 80, `HR computed on the gateway from raw ECG: ${hrValue}`)
  t.match(await tile(page, calm.id).locator('.num.hr .q').innerText(), /q \d+ · gw/, 'quality and source shown')
  t.match(await tile(page, calm.id).locator('.num.pvc b').innerText(), /^\d+$/, 'PVC/min from the gateway\'s ECG findings')
  t.match(await tile(page, calm.id).locator('.num.pvc .q').innerText(), /^q \d+/, 'with the ECG quality')
  t.equal(await tile(page, calm.id).locator('.rhythm').isHidden(), true, 'a regular rhythm: no rhythm badge')
  t.match(await tile(page, calm.id).locator('.conn').innerText(), /live/)
  t.match(await tile(page, calm.id).locator('.meta').innerText(), /battery 3\.90 V · last frame/)

  const ecg = tile(page, calm.id).locator('canvas.ecg')
  const pleth = tile(page, calm.id).locator('canvas.pleth')
  const a = await ecg.screenshot()
  const pa = await pleth.screenshot()
  const spo2Before = await tile(page, falling.id).locator('.num.spo2 b').innerText()
  // The traces move as frames arrive (one a second per board): screenshot until both changed;
  // on a timeout the two checks below say which one did not.
  let b = a
  let pb = pa
  await waitFor(async () => {
    ;[b, pb] = await Promise.all([ecg.screenshot(), pleth.screenshot()])
    return !a.equals(b) && !pa.equals(pb)
  }, 'both canvases to redraw', 10_000, 200).catch(() => {})
  t.notOk(a.equals(b), 'ECG canvas pixels changed between two screenshots')
  t.notOk(pa.equals(pb), 'pleth canvas pixels changed between two screenshots')
  const lit = await page.evaluate((id) => {
    const c = document.querySelector<HTMLCanvasElement>(`.tile[data-patient="${id}"] canvas.ecg`)!
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data
    let n = 0
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++
    return n
  }, calm.id)
  t.ok(lit > 200, `the ECG trace is drawn (${lit} pixels)`)
  await page.waitForFunction(([id, before]) => document.querySelector(`.tile[data-patient="${id}"] .num.spo2 b`)?.textContent !== before, [falling.id, spo2Before] as const, { timeout: 10_000 })
  const spo2After = await tile(page, falling.id).locator('.num.spo2 b').innerText()
  t.ok(Number(spo2After) < Number(spo2Before), `the falling patient's SpO2 number went down: ${spo2Before} → ${spo2After}`)
})

t.test('falling SpO2 raises the alarm', async (t) => {
  await page.locator(`.tile[data-patient="${falling.id}"].alarm`).waitFor({ timeout: 20_000 })
  t.match(await tile(page, falling.id).locator('.alarmtext').innerText(), /SpO2 LOW \d+%/)
  t.equal(await tile(page, falling.id).locator('.num.spo2').getAttribute('class'), 'num spo2 bad')
  t.notOk(await tile(page, calm.id).evaluate((e) => e.classList.contains('alarm')), 'the calm patient has no alarm')
  writeFileSync(join(OUT, 'dashboard-ward.png'), await page.screenshot({ fullPage: true }))
})

t.test('verify a frame in the browser', async (t) => {
  await tile(page, calm.id).locator('h3 a').click()
  await page.locator('#frames tr:nth-child(3) button.verify').waitFor()
  t.match(await page.locator('#fhir').getAttribute('href'), new RegExp(`/api/dash/patients/${calm.id}/fhir\\?from=\\d+&to=\\d+`))
  await page.locator('#frames tr:nth-child(2) button.verify').click()
  const ok = page.locator('#frames tr:nth-child(2) .result')
  await ok.filter({ hasText: /verified|failed/ }).waitFor()
  t.match(await ok.innerText(), /^verified: block \d+, leaf \d+ of \d+$/)
  t.equal(await ok.getAttribute('class'), 'result ok')

  // The check really runs here: a proof whose block signature was altered in transit fails.
  await page.route('**/api/dash/proof/*', async (route) => {
    const res = await route.fetch()
    const j = (await res.json()) as { block: { signature: string } }
    j.block.signature = (j.block.signature[0] === '0' ? '1' : '0') + j.block.signature.slice(1)
    await route.fulfill({ response: res, json: j })
  })
  await page.locator('#frames tr:nth-child(3) button.verify').click()
  const bad = page.locator('#frames tr:nth-child(3) .result')
  await bad.filter({ hasText: /verified|failed/ }).waitFor()
  t.match(await bad.innerText(), /^failed: block \d+: producer signature does not verify/)
  await page.unroute('**/api/dash/proof/*')
  writeFileSync(join(OUT, 'dashboard-patient.png'), await page.screenshot({ fullPage: true }))
})

t.test('revoking consent stops the data at once', async (t) => {
  await page.goto(env.base + '/#/ward')
  await tile(page, calm.id).waitFor()
  await page.waitForFunction((id) => /^\d+$/.test(document.querySelector(`.tile[data-patient="${id}"] .num.hr b`)?.textContent ?? ''), calm.id)
  // The patient's side: the consent page, on another host name (its own cookie jar).
  const admin = await ctx!.newPage()
  admin.on('pageerror', (e) => pageErrors.push(e.message))
  await admin.goto(env.base.replace('127.0.0.1', 'localhost') + '/#/consent')
  await admin.fill('input[name=username]', ADMIN.username)
  await admin.fill('input[name=password]', ADMIN.password)
  await admin.click('#login button[type=submit]')
  const revoke = admin.locator(`.consent[data-patient="${calm.id}"] button.revoke[data-clinician="${CLINICIAN.username}"]`)
  await revoke.click()
  await admin.locator('.notice', { hasText: /revoke recorded/ }).waitFor()
  await tile(page, calm.id).waitFor({ state: 'detached', timeout: 5000 })
  t.match(await page.locator('#ward-notice').innerText(), /Access to Patient A ended \(consent revoked\)/)
  t.equal(await tile(page, falling.id).count(), 1, 'the other patient stays')
  // The server refuses the revoked patient's data to this session too.
  const status = await page.evaluate(async (id) => (await fetch(`/api/dash/patients/${id}/trends`)).status, calm.id)
  t.equal(status, 403)
  writeFileSync(join(OUT, 'dashboard-after-revoke.png'), await page.screenshot({ fullPage: true }))
  // The device view on the same admin page: both boards, connected, with their counts.
  await admin.click('nav a[href="#/devices"]')
  await admin.locator(`#devices tr[data-device="${calm.device.id}"]`).waitFor()
  t.match(await admin.locator(`#devices tr[data-device="${falling.device.id}"]`).innerText(), /active\s+connected/)
  writeFileSync(join(OUT, 'dashboard-devices.png'), await admin.screenshot({ fullPage: true }))
  await admin.close()
  t.same(pageErrors, [], 'no script errors in the pages')
})
