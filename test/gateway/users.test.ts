/**
 * Users with roles: `mhealth user add`, login over MQTT and HTTP, the dashboard's
 * login/consent check functions, admin sessions, and $SYS / wildcard abuse refused.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import { resolveConfig } from '../../gateway/config.ts'
import { startGateway } from '../../gateway/gateway.ts'
import { memoryLogger } from '../../gateway/log.ts'
import { checkAccess, checkLogin } from '../../gateway/user-client.ts'
import { signConsent, patientIdFromPublicKey } from '../../ledger/consent.ts'
import { generateKey } from '../../protocol/node/keys.ts'
import { runCli } from '../helpers/cli.ts'
import { connect, connectDevice, endClient, newDeviceKey, registerSim, subscribe } from './helpers/devices.ts'

const closesOnPublish = (c: MqttClient, topic: string) => {
  const closed = new Promise<boolean>((r) => c.once('close', () => r(true)))
  c.publish(topic, 'x', { qos: 1 })
  return closed
}

t.test('users and roles', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mh-gwu-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const log = memoryLogger()
  const gw = await startGateway(resolveConfig({ dataDir: dir, mqttPort: 'auto', mqttsPort: 0, wsPort: 0, httpPort: 'auto' }), { log })
  t.teardown(() => gw.close())
  const mqttUrl = `mqtt://127.0.0.1:${gw.ports.mqtt}`
  const httpUrl = `http://127.0.0.1:${gw.ports.http}`
  const pk = generateKey('ed25519') as { privateKey: Uint8Array; publicKey: Uint8Array }
  const patient = patientIdFromPublicKey(pk.publicKey)
  const dev = newDeviceKey('se')
  registerSim(gw.registry, dev, patient)

  await t.test('mhealth user add / list', async (t) => {
    const r = await runCli(['user', 'add', 'dr.grey', '--role', 'clinician', '--data', dir], { input: 'seattle-grace-1\n' })
    t.equal(r.code, 0, r.stderr)
    t.match(JSON.parse(r.stdout), { username: 'dr.grey', role: 'clinician' })
    t.equal((await runCli(['user', 'add', 'boss', '--role', 'admin', '--data', dir], { input: 'chief-of-surgery\n' })).code, 0)
    const short = await runCli(['user', 'add', 'x', '--role', 'clinician', '--data', dir], { input: 'short\n' })
    t.equal(short.code, 1)
    t.match(short.stderr, /at least 8/)
    t.equal((await runCli(['user', 'add', 'y', '--role', 'janitor', '--data', dir], { input: 'whatever-long\n' })).code, 2)
    t.equal((await runCli(['user', 'add', 'dr.grey', '--role', 'clinician', '--data', dir], { input: 'seattle-grace-1\n' })).code, 1, 'exists')
    const l = await runCli(['user', 'list', '--data', dir])
    t.match(l.stdout, /dr\.grey/)
    t.notMatch(l.stdout, /scrypt|seattle/, 'no password material printed')
  })

  await t.test('dashboard: login and consent check over HTTP and in process', async (t) => {
    t.equal(await checkLogin(httpUrl, 'dr.grey', 'wrong-password'), null)
    t.equal(await checkLogin(httpUrl, 'nobody', 'seattle-grace-1'), null)
    const s = await checkLogin(httpUrl, 'dr.grey', 'seattle-grace-1')
    t.match(s, { username: 'dr.grey', role: 'clinician' })
    t.equal(await checkAccess(httpUrl, s!.token, patient), false, 'no consent yet')
    t.equal(gw.users.canView('dr.grey', patient), false)
    const post = (action: 'grant' | 'revoke', issuedAt: number) =>
      fetch(`${httpUrl}/api/consent`, { method: 'POST', body: new Blob([Buffer.from(signConsent(pk, { action, clinicianId: 'dr.grey', scope: 'live', expiresAt: 0, issuedAt }))]) })
    const t0 = Date.now()
    t.equal((await post('grant', t0)).status, 201)
    t.equal(await checkAccess(httpUrl, s!.token, patient), true, 'consent granted')
    t.equal(gw.users.canView('dr.grey', patient), true)
    t.equal(await checkAccess(httpUrl, s!.token, patient, 'history'), false, 'other scope')
    t.equal((await post('revoke', t0 + 1)).status, 201)
    t.equal(await checkAccess(httpUrl, s!.token, patient), false, 'revoked')
    await t.rejects(checkAccess(httpUrl, 'not-a-session', patient), { status: 401 } as never)
    t.equal((await fetch(`${httpUrl}/api/devices`, { headers: { authorization: `Bearer ${s!.token}` } })).status, 401, 'a clinician session is not an admin')
    const admin = await checkLogin(httpUrl, 'boss', 'chief-of-surgery')
    const list = await fetch(`${httpUrl}/api/devices`, { headers: { authorization: `Bearer ${admin!.token}` } })
    t.equal(list.status, 200, 'an admin session may use the admin API')
    t.equal(await checkAccess(httpUrl, admin!.token, patient), false, 'the admin role does not bypass consent')
    await fetch(`${httpUrl}/api/logout`, { method: 'POST', headers: { authorization: `Bearer ${s!.token}` } })
    await t.rejects(checkAccess(httpUrl, s!.token, patient), { status: 401 } as never, 'logged out')
  })

  await t.test('a login flood is bounded: 2 scrypt checks at once, 64 queued, the rest refused fast', async (t) => {
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => gw.registry.checkUser('dr.grey', 'wrong-password')))
    const busy = results.filter((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'busy').length
    t.equal(busy, 34)
    t.ok(results.every((r) => r.status === 'rejected' || r.value === null), 'no wrong password accepted')
    t.match(await gw.registry.checkUser('dr.grey', 'seattle-grace-1'), { username: 'dr.grey' }, 'a login afterwards works')
  })

  await t.test('MQTT: user login, client ID binding, $SYS and wildcard abuse refused', async (t) => {
    const mismatch = await connect(mqttUrl, { clientId: 'u:boss', username: 'dr.grey', password: Buffer.from('seattle-grace-1') }).catch((e) => e)
    t.equal((mismatch as { code?: number }).code, 2, 'client ID must name the user')
    const asDevice = await connect(mqttUrl, { clientId: dev.id, username: 'dr.grey', password: Buffer.from('seattle-grace-1') }).catch((e) => e)
    t.equal((asDevice as { code?: number }).code, 4, 'a password is not a device token')
    const doc = await connect(mqttUrl, { clientId: 'u:dr.grey:tablet', username: 'dr.grey', password: Buffer.from('seattle-grace-1') })
    for (const f of ['#', '$SYS/#', '$SYS/broker/clients', '+/+/+/+', 'mhealth/#', 'mhealth/patient/+/frames', `mhealth/patient/${patient}/#`, `mhealth/dev/${dev.id}/frames`, `mhealth/dev/${dev.id}/control`])
      t.equal(await subscribe(doc, f), 128, `user may not subscribe ${f}`)
    t.equal(await closesOnPublish(doc, '$SYS/broker/uptime'), true, 'publishing to $SYS closes the connection')
    doc.end(true)
    const d = await connectDevice(mqttUrl, dev)
    t.equal(await subscribe(d, '$SYS/#'), 128)
    t.equal(await subscribe(d, '#'), 128)
    t.equal(await closesOnPublish(d, '$SYS/x'), true, 'a device publishing to $SYS is closed')
    d.end(true)
    t.ok(log.entries.some((e) => e.msg === 'subscribe refused' && e.reason === 'reserved-topic'))
    t.ok(log.entries.some((e) => e.msg === 'subscribe refused' && e.reason === 'wildcard-not-allowed'))
    await endClient(d)
  })
})

t.test('MQTT logins share the per-account backoff: after 3 wrong passwords the 4th attempt waits, the right password too', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mh-gwu-bo-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const gw = await startGateway(resolveConfig({ dataDir: dir, mqttPort: 'auto', mqttsPort: 0, wsPort: 0, httpPort: 0 }), { log: memoryLogger() })
  t.teardown(() => gw.close())
  gw.registry.addUser('dr.bailey', 'clinician', 'seattle-grace-2')
  const url = `mqtt://127.0.0.1:${gw.ports.mqtt}`
  const login = (password: string) => connect(url, { clientId: 'u:dr.bailey', username: 'dr.bailey', password: Buffer.from(password) }).then(
    (c) => (c.end(true), 'ok'),
    (e: Error & { code?: number }) => String(e.code ?? e.message),
  )
  for (let i = 0; i < 3; i++) t.equal(await login('wrong-password'), '4', `wrong password ${i + 1}: bad username or password`)
  t.equal(await login('seattle-grace-2'), '5', 'the 4th attempt from this address is refused unchecked (not authorized), even with the right password')
  await new Promise((r) => setTimeout(r, 1100))
  t.equal(await login('seattle-grace-2'), 'ok', 'after the 1 s wait the right password logs in')
})
