/**
 * A user's lifecycle on a running `mhealth gateway --dashboard` (a real process): delete, new
 * password and new role, over the admin API and with the CLI on the same data dir; each ends
 * the user's sessions on every channel (API bearer token, dashboard cookie, MQTT connection). The admin token
 * rotates (CLI and API) without a restart. Bad input is refused and changes nothing.
 */
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.ts'
import { expectQuiet, waitFor } from '../helpers/wait.ts'
import { spawnGateway } from './helpers/process.ts'
import { connect } from './helpers/devices.ts'

const dir = mkdtempSync(join(tmpdir(), 'mh-gwlife-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const data = join(dir, 'data')

const USERS = { carol: 'carol-pass-1', dave: 'dave-pass-22', erin: 'erin-pass-333', fay: 'fay-pass-4444', gus: 'gus-pass-55555', hal: 'hal-pass-666666' }
for (const [name, pw] of Object.entries(USERS)) {
  const r = await runCli(['user', 'add', name, '--role', 'clinician', '--data', data], { input: pw + '\n' })
  if (r.code !== 0) throw new Error(r.stderr)
}
const gw = await spawnGateway(data, ['--dashboard', '--log-level', 'warn'])
t.teardown(() => gw.stop())
const base = `http://127.0.0.1:${gw.ready.ports.http}`
let adminToken = readFileSync(join(data, 'admin.token'), 'utf8').trim()

const json = { 'content-type': 'application/json' }
const admin = (method: string, path: string, body?: unknown, token = adminToken) =>
  fetch(base + path, { method, headers: { ...json, authorization: `Bearer ${token}` }, body: body === undefined ? undefined : JSON.stringify(body) })

/** A user logged in on every channel (API, dashboard, two MQTT apps); `alive()` says which still work. */
async function loginBoth(username: string, password: string) {
  const api = await fetch(`${base}/api/login`, { method: 'POST', headers: json, body: JSON.stringify({ username, password }) })
  if (api.status !== 200) throw new Error(`api login ${username}: ${api.status}`)
  const { token, role } = (await api.json()) as { token: string; role: string }
  const dash = await fetch(`${base}/api/dash/login`, { method: 'POST', headers: json, body: JSON.stringify({ username, password }) })
  if (dash.status !== 200) throw new Error(`dashboard login ${username}: ${dash.status}`)
  const cookie = (dash.headers.get('set-cookie') ?? '').split(';')[0]!
  // Two MQTT connections of the user (two apps): u:<name> and u:<name>:<app>.
  const url = `mqtt://127.0.0.1:${gw.ready.ports.mqtt}`
  const mqtts = await Promise.all([`u:${username}`, `u:${username}:tablet`].map((clientId) => connect(url, { clientId, username, password, reconnectPeriod: 0 })))
  t.teardown(() => { for (const c of mqtts) c.end(true) })
  return {
    role,
    token,
    async alive() {
      const a = await fetch(`${base}/api/access?patient=p1`, { headers: { authorization: `Bearer ${token}` } })
      const d = await fetch(`${base}/api/dash/me`, { headers: { cookie } })
      return { api: a.status === 200, dashboard: d.status === 200, mqtt: mqtts.every((c) => c.connected) }
    },
  }
}
const canLogin = async (username: string, password: string) =>
  (await fetch(`${base}/api/login`, { method: 'POST', headers: json, body: JSON.stringify({ username, password }) })).status === 200
const dead = { api: false, dashboard: false, mqtt: false }
const live = { api: true, dashboard: true, mqtt: true }

t.test('admin API: DELETE /api/users/:name ends every session of the user', async (t) => {
  const s = await loginBoth('carol', USERS.carol)
  t.same(await s.alive(), live)
  const r = await admin('DELETE', '/api/users/carol')
  t.equal(r.status, 200)
  await waitFor(async () => JSON.stringify(await s.alive()) === JSON.stringify(dead), 'every session of carol to end')
  t.same(await s.alive(), dead, 'API token, dashboard cookie and both MQTT connections end at once')
  t.notOk(await canLogin('carol', USERS.carol), 'the deleted user cannot log in')
  t.equal((await admin('DELETE', '/api/users/carol')).status, 404, 'deleting again: 404')
  t.equal((await admin('DELETE', '/api/users/carol', undefined, 'wrong-token')).status, 401, 'the token is checked')
})

t.test('admin API: a new password ends the old sessions; the new one works and stays', async (t) => {
  const s = await loginBoth('dave', USERS.dave)
  const short = await admin('POST', '/api/users/dave/password', { password: 'short' })
  t.equal(short.status, 400, 'a short password is refused')
  t.match(await short.json(), { error: /at least 8/ })
  t.same(await s.alive(), live, 'and changes nothing')
  t.equal((await admin('POST', '/api/users/dave/password', {})).status, 400, 'no password: 400')
  t.equal((await admin('POST', '/api/users/nobody/password', { password: 'long-enough-1' })).status, 404)

  t.equal((await admin('POST', '/api/users/dave/password', { password: 'dave-new-pass' })).status, 200)
  await waitFor(async () => JSON.stringify(await s.alive()) === JSON.stringify(dead), 'every session of dave to end')
  t.same(await s.alive(), dead)
  t.notOk(await canLogin('dave', USERS.dave), 'the old password no longer works')
  const fresh = await loginBoth('dave', 'dave-new-pass')
  // The gateway's user timer runs every 500 ms: give it three turns to (wrongly) end this session.
  await expectQuiet(1500, 'the user timer must not end a login made after the change')
  t.same(await fresh.alive(), live, 'a login after the change is not ended by the change')
})

t.test('admin API: a new role ends the sessions; the next login has the new role', async (t) => {
  const s = await loginBoth('erin', USERS.erin)
  t.equal(s.role, 'clinician')
  t.equal((await admin('POST', '/api/users/erin/role', { role: 'janitor' })).status, 400, 'unknown role refused')
  t.same(await s.alive(), live, 'and changes nothing')
  const r = await admin('POST', '/api/users/erin/role', { role: 'admin' })
  t.match(await r.json(), { username: 'erin', role: 'admin' })
  await waitFor(async () => JSON.stringify(await s.alive()) === JSON.stringify(dead), 'every session of erin to end')
  t.same(await s.alive(), dead, 'the clinician sessions ended')
  const again = await loginBoth('erin', USERS.erin)
  t.equal(again.role, 'admin')
  t.equal((await admin('GET', '/api/devices', undefined, again.token)).status, 200, 'her new session opens the admin API')
})

t.test('CLI on the same data dir: delete, passwd, role end the sessions of a running gateway', async (t) => {
  const fay = await loginBoth('fay', USERS.fay)
  const gus = await loginBoth('gus', USERS.gus)
  const hal = await loginBoth('hal', USERS.hal)

  const del = await runCli(['user', 'delete', 'fay', '--data', data])
  t.equal(del.code, 0, del.stderr)
  await waitFor(async () => JSON.stringify(await fay.alive()) === JSON.stringify(dead), 'fay sessions to end', 10_000)
  t.notOk(await canLogin('fay', USERS.fay))

  const pw = await runCli(['user', 'passwd', 'gus', '--data', data], { input: 'gus-new-password\n' })
  t.equal(pw.code, 0, pw.stderr)
  await waitFor(async () => JSON.stringify(await gus.alive()) === JSON.stringify(dead), 'gus sessions to end', 10_000)
  t.ok(await canLogin('gus', 'gus-new-password'))

  const role = await runCli(['user', 'role', 'hal', '--role', 'admin', '--data', data])
  t.equal(role.code, 0, role.stderr)
  t.match(JSON.parse(role.stdout), { username: 'hal', role: 'admin' })
  await waitFor(async () => JSON.stringify(await hal.alive()) === JSON.stringify(dead), 'hal sessions to end', 10_000)
  t.same((await loginBoth('hal', USERS.hal)).role, 'admin')

  const users = await runCli(['user', 'list', '--data', data])
  t.notMatch(users.stdout, /"fay"/)
})

t.test('CLI: bad input is an error and changes nothing', async (t) => {
  const gone = await runCli(['user', 'delete', 'nobody', '--data', data])
  t.equal(gone.code, 1)
  t.match(gone.stderr, /user nobody does not exist/)
  const short = await runCli(['user', 'passwd', 'gus', '--data', data], { input: 'short\n' })
  t.equal(short.code, 1)
  t.match(short.stderr, /at least 8/)
  t.ok(await canLogin('gus', 'gus-new-password'), 'the password is unchanged')
  const none = await runCli(['user', 'passwd', 'gus', '--data', data], { input: '' })
  t.equal(none.code, 2, 'no password on stdin: usage error')
  t.equal((await runCli(['user', 'passwd', 'nobody', '--data', data], { input: 'long-enough-1\n' })).code, 1)
  t.equal((await runCli(['user', 'role', 'gus', '--role', 'janitor', '--data', data])).code, 2)
  t.equal((await runCli(['user', 'delete', 'gus', '--data', join(dir, 'nowhere')])).code, 1, 'no registry there')
  t.equal((await runCli(['admin-token', 'rotate', '--data', join(dir, 'nowhere')])).code, 1, 'no token there')
})

t.test('the admin token rotates without a restart (CLI, then API)', async (t) => {
  const old = adminToken
  const r = await runCli(['admin-token', 'rotate', '--data', data])
  t.equal(r.code, 0, r.stderr)
  adminToken = r.stdout.trim()
  t.not(adminToken, old)
  t.equal(readFileSync(join(data, 'admin.token'), 'utf8').trim(), adminToken, 'written to DATA/admin.token')
  t.equal((await admin('GET', '/api/devices', undefined, old)).status, 401, 'the old token is refused by the running gateway')
  t.equal((await admin('GET', '/api/devices')).status, 200, 'the new one works')

  const api = await admin('POST', '/api/admin-token/rotate')
  t.equal(api.status, 200)
  const { token } = (await api.json()) as { token: string }
  t.equal(readFileSync(join(data, 'admin.token'), 'utf8').trim(), token, 'the API rotation is written to the file too')
  t.equal((await admin('GET', '/api/devices')).status, 401, 'the token used to rotate is now refused')
  adminToken = token
  t.equal((await admin('GET', '/api/devices')).status, 200)
})
