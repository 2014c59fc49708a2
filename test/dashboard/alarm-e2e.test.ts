/**
 * The alarm system end to end on a real gateway: a board's signed frames with a low SpO2
 * raise an alarm that shows in GET /api/alarms, arrives on the dashboard's event stream and
 * on the MQTT alarm topic; a clinician with consent acknowledges it (403 without); the ack
 * is a ledger leaf that `mhealth ledger proof` proves; a restart on the same data dir
 * rebuilds the active alarm from the ledger.
 */
import t from 'tap'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'node:http'
import { resolveConfig } from '../../gateway/config.ts'
import { startGateway } from '../../gateway/gateway.ts'
import { memoryLogger } from '../../gateway/log.ts'
import { mountDashboard } from '../../dashboard/mount.ts'
import type { LedgerFrameStore } from '../../gateway/ledger-store.ts'
import { parseAlarmEvent } from '../../ledger/alarm-record.ts'
import { toHex } from '../../ledger/merkle.ts'
import { Board, Client, openSse, startDashEnv, CLINICIAN, ADMIN } from './helpers.ts'
import { connect, endClient, subscribe } from '../gateway/helpers/devices.ts'
import { runCli } from '../helpers/cli.ts'
import type { AlarmView } from '../../dashboard/alarm-service.ts'

const BOB = { username: 'bob', password: 'bob-ward-8' }

function bearer(base: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: <T>() => T; body: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body)
    const r = request(base + path, { method, headers: { authorization: `Bearer ${token}`, ...(data ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let text = ''
      res.on('data', (c) => (text += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, json: <T>() => JSON.parse(text) as T }))
    })
    r.on('error', reject)
    r.end(data)
  })
}

t.test('a low SpO2 raises an alarm seen on the API, SSE and MQTT; a consented clinician acks it; the ack is provable; a restart rebuilds it', async (t) => {
  let clock = Date.now()
  const env = await startDashEnv(2, { now: () => clock, alarmTickMs: 0 })
  let closed = false
  t.teardown(async () => {
    if (!closed) await env.close()
  })
  env.gw.registry.addUser(BOB.username, 'clinician', BOB.password)
  const [A, B] = env.patients
  const root = { userId: ADMIN.username, role: 'admin' as const }
  await env.dash.deps.grantConsent(root, A.id, CLINICIAN.username, 'live', null)
  const token = env.gw.identity.adminToken

  const alice = new Client(env.base)
  await alice.login(CLINICIAN)
  const bob = new Client(env.base)
  await bob.login(BOB)
  const sse = await openSse(alice)
  await sse.next((e) => e.event === 'ready')
  t.ok(sse.events.some((e) => e.event === 'alarms'), 'the stream opens with the current alarms')

  // A pager: alice over MQTT may follow A's alarms (consent), not B's.
  const pager = await connect(env.mqttUrl, { clientId: 'u:alice:pager', username: CLINICIAN.username, password: CLINICIAN.password })
  t.teardown(() => endClient(pager))
  t.equal(await subscribe(pager, `mhealth/alarms/${A.id}`), 0, 'consented: subscribed')
  t.equal(await subscribe(pager, `mhealth/alarms/${B.id}`), 128, 'no consent: refused')
  t.equal(await subscribe(pager, 'mhealth/gateway/alarms'), 128, "the gateway's own alarms: admins only")
  const paged: Record<string, unknown>[] = []
  pager.on('message', (_topic, payload) => paged.push(JSON.parse(String(payload)) as Record<string, unknown>))

  // A board whose own SpO2 reading is 80 %: below the 85 % critical limit.
  const board = new Board(A.device, env.mqttUrl, clock, () => ({ spo2: { value: 80, quality: 95 }, hr: { value: 75, quality: 95 } }))
  await board.connect()
  t.teardown(() => board.close())
  for (let i = 0; i < 9; i++) {
    await board.send(1)
    clock += 1000
  }
  t.same((await bearer(env.base, token, 'GET', '/api/alarms')).json<{ alarms: AlarmView[] }>().alarms, [], 'not before the 10 s condition delay')
  for (let i = 0; i < 3; i++) {
    await board.send(1)
    clock += 1000
  }
  const started = await sse.next((e) => e.event === 'alarm' && e.data.change === 'start')
  const alarm = started.data.alarm as AlarmView
  t.match(alarm, { deviceId: A.device.id, patientId: A.id, condition: 'spo2-low', priority: 'high', kind: 'physiological', state: 'active', endedAt: null })
  t.type(alarm.leafIndex, 'number', 'the start is a ledger leaf')

  const list = await bearer(env.base, token, 'GET', '/api/alarms?state=active')
  t.equal(list.status, 200)
  const listed = list.json<{ alarms: AlarmView[] }>().alarms
  t.same(listed.map((a) => Object.keys(a).sort()), [['condition', 'deviceId', 'endedAt', 'id', 'kind', 'leafIndex', 'patientId', 'priority', 'startedAt', 'state'].sort()], 'exactly the documented fields')
  t.equal(listed[0].id, alarm.id)
  t.equal((await alice.req('GET', `/api/alarms?patient=${A.id}`)).json<{ alarms: AlarmView[] }>().alarms.length, 1, 'alice (consent) sees it')
  t.same((await bob.req('GET', '/api/alarms')).json<{ alarms: AlarmView[] }>().alarms, [], 'bob (no consent) sees none')
  t.equal((await bob.req('GET', `/api/alarms?patient=${A.id}`)).status, 403)
  t.equal((await new Client(env.base).req('GET', '/api/alarms')).status, 401, 'nobody: 401')

  const deadline = Date.now() + 20_000
  while (!paged.some((m) => m.change === 'start') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  t.match(paged.find((m) => m.change === 'start'), { alarm: { id: alarm.id, condition: 'spo2-low' } }, 'paged on MQTT')

  // bob may not acknowledge; alice may; the ack is its own leaf.
  t.equal((await bob.req('POST', `/api/alarms/${alarm.id}/ack`, {})).status, 403, 'no consent: 403')
  t.equal((await alice.req('POST', `/api/alarms/${alarm.id}/ack`)).status, 415, 'a cookie request must be JSON (same-origin rule)')
  const ack = await alice.req('POST', `/api/alarms/${alarm.id}/ack`, {})
  t.equal(ack.status, 200, ack.body)
  const acked = ack.json<{ alarm: AlarmView; leafIndex: number }>()
  t.equal(acked.alarm.state, 'acknowledged')
  t.type(acked.leafIndex, 'number')
  t.equal((await alice.req('POST', `/api/alarms/${alarm.id}/ack`, {})).status, 409, 'twice: conflict')
  await sse.next((e) => e.event === 'alarm' && e.data.change === 'ack' && e.data.by === CLINICIAN.username)
  const sil = await bearer(env.base, token, 'POST', `/api/alarms/${alarm.id}/silence`, { seconds: 0 })
  t.equal(sil.status, 400, 'silence needs 1..600 s')

  // limits: read, set (a leaf), refused without consent
  const lim = await alice.req('GET', `/api/patients/${A.id}/alarm-limits`)
  t.same(lim.json(), { patientId: A.id, limits: { spo2Low: 90, spo2Critical: 85, hrLow: 50, hrHigh: 120 } })
  const put = await alice.req('PUT', `/api/patients/${A.id}/alarm-limits`, { limits: { hrHigh: 140 } })
  t.equal(put.status, 200, put.body)
  t.equal(put.json<{ limits: { hrHigh: number } }>().limits.hrHigh, 140)
  t.equal((await bob.req('PUT', `/api/patients/${A.id}/alarm-limits`, { limits: { hrHigh: 140 } })).status, 403)
  t.equal((await alice.req('PUT', `/api/patients/${A.id}/alarm-limits`, { limits: { hrHigh: 'x' } })).status, 400)

  // The FHIR export of A carries the alarm as an Observation (alarm-fhir.ts).
  const fhir = await alice.req('GET', `/api/dash/patients/${A.id}/fhir?from=${board.t0 - 1000}&to=${clock + 60_000}`)
  t.equal(fhir.status, 200)
  const alarmObs = (fhir.json<{ entry: { resource: { identifier?: { system: string; value: string }[] } }[] }>().entry).filter((e) => e.resource.identifier?.some((i) => i.system === 'urn:mhealth:alarm-id' && i.value === alarm.id))
  t.equal(alarmObs.length, 1, 'the alarm is in the FHIR export')

  // The ack is proven by the CLI, beside the running gateway, and its bytes say who and what.
  const ledger = (env.gw.store as LedgerFrameStore).ledger
  const ackHash = toHex(ledger.tree.leaf(acked.leafIndex))
  const pr = await runCli(['ledger', 'proof', '--data', join(env.dir, 'ledger'), '--frame', ackHash])
  t.equal(pr.code, 0, pr.stderr)
  const bundle = JSON.parse(pr.stdout) as { leaf: { kind: string; index: number; bytes: string } }
  t.equal(bundle.leaf.kind, 'alarm')
  t.equal(bundle.leaf.index, acked.leafIndex)
  t.match(parseAlarmEvent(Buffer.from(bundle.leaf.bytes, 'base64')), { e: 'ack', id: alarm.id, by: CLINICIAN.username, condition: 'spo2-low' })

  // Restart on the same data dir: the alarm (still on, acknowledged) comes back from the ledger.
  await sse.close()
  await board.close()
  await endClient(pager)
  await env.gw.close()
  closed = true
  const gw2 = await startGateway(resolveConfig({ dataDir: env.dir, mqttPort: 'auto', mqttsPort: 0, wsPort: 0, httpPort: 'auto' }), { log: memoryLogger() })
  t.teardown(async () => {
    await gw2.close()
    rmSync(env.dir, { recursive: true, force: true })
  })
  await mountDashboard(gw2, { now: () => clock, alarmTickMs: 0 })
  const after = await bearer(`http://127.0.0.1:${gw2.ports.http}`, gw2.identity.adminToken, 'GET', '/api/alarms')
  const rebuilt = after.json<{ alarms: AlarmView[] }>().alarms
  t.same(rebuilt.map((a) => [a.id, a.condition, a.state, a.leafIndex]), [[alarm.id, 'spo2-low', 'acknowledged', alarm.leafIndex]], 'rebuilt from the ledger')
  const lim2 = await bearer(`http://127.0.0.1:${gw2.ports.http}`, gw2.identity.adminToken, 'GET', `/api/patients/${A.id}/alarm-limits`)
  t.equal(lim2.json<{ limits: { hrHigh: number } }>().limits.hrHigh, 140, 'limits too')
  const v = await runCli(['ledger', 'verify', '--data', join(env.dir, 'ledger')])
  t.equal(v.code, 0, v.stderr)
  t.match(v.stdout, /alarm events/)
})
