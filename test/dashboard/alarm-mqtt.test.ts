/**
 * The MQTT alarm topics' ACL on a real gateway: an admin account (a paging system) follows
 * any patient's alarms and the gateway's own; a clinician only those of a patient whose
 * consent they hold, and hears nothing more the moment it is revoked.
 */
import t from 'tap'
import { canSubscribe, alarmsTopic, GATEWAY_ALARMS_TOPIC } from '../../gateway/acl.ts'
import { Board, startDashEnv, CLINICIAN, ADMIN } from './helpers.ts'
import { connect, endClient, subscribe } from '../gateway/helpers/devices.ts'

t.test('acl: alarm topics', async (t) => {
  const yes = () => true
  const no = () => false
  const clin = { kind: 'user', username: 'alice', role: 'clinician' } as const
  const admin = { kind: 'user', username: 'root', role: 'admin' } as const
  t.ok(canSubscribe(clin, alarmsTopic('pt-a'), yes).ok)
  t.same(canSubscribe(clin, alarmsTopic('pt-a'), no), { ok: false, reason: 'no-consent' })
  t.ok(canSubscribe(admin, alarmsTopic('pt-a'), no).ok, 'an admin (pager) account: any patient')
  t.same(canSubscribe(clin, GATEWAY_ALARMS_TOPIC, yes), { ok: false, reason: 'admins-only' })
  t.ok(canSubscribe(admin, GATEWAY_ALARMS_TOPIC, no).ok)
  t.same(canSubscribe(admin, 'mhealth/alarms/+', yes), { ok: false, reason: 'wildcard-not-allowed' })
  t.same(canSubscribe({ kind: 'device', deviceId: 'd', patient: 'pt-a' }, alarmsTopic('pt-a'), yes), { ok: false, reason: 'not-own-control-topic' })
  t.same(canSubscribe({ kind: 'anonymous' }, alarmsTopic('pt-a'), yes), { ok: false, reason: 'anonymous-clinical-namespace' })
})

t.test('a clinician whose consent is revoked hears no more alarms; the pager still does', async (t) => {
  let clock = Date.now()
  const env = await startDashEnv(1, { now: () => clock, alarmTickMs: 0 })
  t.teardown(() => env.close())
  const [A] = env.patients
  const root = { userId: ADMIN.username, role: 'admin' as const }
  await env.dash.deps.grantConsent(root, A.id, CLINICIAN.username, 'live', null)
  const nurse = await connect(env.mqttUrl, { clientId: 'u:alice:phone', username: CLINICIAN.username, password: CLINICIAN.password })
  const pager = await connect(env.mqttUrl, { clientId: 'u:root:pager', username: ADMIN.username, password: ADMIN.password })
  t.teardown(() => Promise.all([endClient(nurse), endClient(pager)]))
  t.equal(await subscribe(nurse, alarmsTopic(A.id)), 0)
  t.equal(await subscribe(pager, alarmsTopic(A.id)), 0)
  const got = { nurse: [] as string[], pager: [] as string[] }
  nurse.on('message', (_t, p) => got.nurse.push(String(JSON.parse(String(p)).change)))
  pager.on('message', (_t, p) => got.pager.push(String(JSON.parse(String(p)).change)))
  const board = new Board(A.device, env.mqttUrl, clock, () => ({ hr: { value: 150, quality: 95 } }))
  await board.connect()
  t.teardown(() => board.close())
  const until = async (pred: () => boolean): Promise<void> => {
    const end = Date.now() + 20_000
    while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  }
  for (let i = 0; i < 12; i++) {
    await board.send(1)
    clock += 1000
  }
  await until(() => got.nurse.includes('start') && got.pager.includes('start'))
  t.same([got.nurse, got.pager], [['start'], ['start']], 'hr-high: both hear it')
  await env.dash.deps.revokeConsent(root, A.id, CLINICIAN.username, 'live')
  const id = env.dash.deps.alarmService.list()[0].id
  await env.dash.deps.alarmService.acknowledge(id, 'root')
  await until(() => got.pager.includes('ack'))
  await new Promise((r) => setTimeout(r, 200))
  t.same(got.pager, ['start', 'ack'])
  t.same(got.nurse, ['start'], 'consent revoked: the ack did not reach her')
})
