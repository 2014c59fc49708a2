/**
 * `mhealth gateway --dashboard` as a real process serves the ward dashboard on its own HTTP
 * listener (not only `mhealth demo` does): the page, a browser login with an account made by
 * `mhealth user add`, the session cookie. And the API answers an unknown /api/ path with a
 * plain 404 whoever asks, where it used to ask for the admin token (401).
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { launchChromium } from '../helpers/chromium.ts'
import { runCli } from '../helpers/cli.ts'
import { spawnGateway } from './helpers/process.ts'


const dir = mkdtempSync(join(tmpdir(), 'mh-gwdash-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const data = join(dir, 'data')

t.test('mhealth gateway --dashboard serves the page and a login works', async (t) => {
  const add = await runCli(['user', 'add', 'nurse.ann', '--role', 'clinician', '--data', data], { input: 'ward-seven-night\n' })
  t.equal(add.code, 0, add.stderr)
  const gw = await spawnGateway(data, ['--dashboard', '--log-level', 'warn'])
  t.teardown(() => gw.stop())
  const base = `http://127.0.0.1:${gw.ready.ports.http}`
  t.equal((gw.ready as { dashboard?: string }).dashboard, `${base}/`, 'the ready line names the dashboard URL')

  const page = await fetch(`${base}/`)
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.match(await page.text(), /<html/i, 'GET / is the dashboard page')

  const login = await fetch(`${base}/api/dash/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'nurse.ann', password: 'ward-seven-night' }) })
  t.equal(login.status, 200, 'login over HTTP')
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!
  const me = await fetch(`${base}/api/dash/me`, { headers: { cookie } })
  t.match(await me.json(), { userId: 'nurse.ann', role: 'clinician' }, 'the session cookie opens the dashboard API')
  t.equal((await fetch(`${base}/healthz`)).status, 200, "the gateway's own routes still answer")

  const profile = mkdtempSync(join(tmpdir(), 'mh-chromium-'))
  const ctx = await launchChromium(profile)
  t.teardown(async () => {
    await ctx.close()
    rmSync(profile, { recursive: true, force: true })
  })
  const tab = ctx.pages()[0] ?? (await ctx.newPage())
  await tab.goto(`${base}/`)
  await tab.fill('input[name=username]', 'nurse.ann')
  await tab.fill('input[name=password]', 'ward-seven-night')
  await tab.click('#login button[type=submit]')
  await tab.locator('#login').waitFor({ state: 'hidden', timeout: 30_000 })
  const who = await tab.evaluate(() => fetch('/api/dash/me').then((r) => r.json() as Promise<{ userId: string }>))
  t.equal(who.userId, 'nurse.ann', 'a browser logs in on the real gateway')
})

t.test('without --dashboard there is no page; --dashboard with no HTTP listener is a usage error', async (t) => {
  const gw = await spawnGateway(data, ['--log-level', 'warn'])
  t.teardown(() => gw.stop())
  t.equal((await fetch(`http://127.0.0.1:${gw.ready.ports.http}/`)).status, 404)
  const bad = await runCli(['gateway', '--data', join(dir, 'other'), '--dashboard', '--http-port', '0'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /--dashboard needs the HTTP listener/)
})

t.test('the config file turns the dashboard on too ("dashboard": true); a bad value is a usage error', async (t) => {
  const cfgFile = join(dir, 'gateway.json')
  writeFileSync(cfgFile, JSON.stringify({ dashboard: true, logLevel: 'warn' }))
  const gw = await spawnGateway(data, ['--config', cfgFile])
  t.teardown(() => gw.stop())
  const base = `http://127.0.0.1:${gw.ready.ports.http}`
  t.equal((gw.ready as { dashboard?: string }).dashboard, `${base}/`)
  t.equal((await fetch(`${base}/`)).status, 200, 'the page is served')
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ dashboard: 'yes' }))
  const bad = await runCli(['gateway', '--data', join(dir, 'other2'), '--config', join(dir, 'bad.json')])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /dashboard: expected true or false, got "yes"/)
})

t.test('an unknown /api/ path is a 404 before any token check', async (t) => {
  const gw = await spawnGateway(data, ['--log-level', 'warn'])
  t.teardown(() => gw.stop())
  const base = `http://127.0.0.1:${gw.ready.ports.http}`
  for (const [method, path] of [['GET', '/api/nope'], ['POST', '/api/devicez'], ['GET', '/api/devices/x/y/z'], ['DELETE', '/api/'] ] as const) {
    const r = await fetch(base + path, { method })
    t.equal(r.status, 404, `${method} ${path} without a token`)
    t.match(await r.json(), { error: /no route/ }, 'a JSON error body')
  }
  const known = await fetch(`${base}/api/devices`)
  t.equal(known.status, 401, 'a known admin route still needs the token')
  t.equal(known.headers.get('www-authenticate'), 'Bearer')
  const wrongMethod = await fetch(`${base}/api/login`)
  t.equal(wrongMethod.status, 405, 'GET on the login route names the method to use')
  t.equal(wrongMethod.headers.get('allow'), 'POST')
  const admin = await fetch(`${base}/api/devices`, { method: 'PUT', headers: { authorization: 'Bearer nonsense' } })
  t.equal(admin.status, 401, 'a known path with the wrong method and no valid token: 401, not a 405 that reveals the methods')
})
