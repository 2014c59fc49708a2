/**
 * ECG findings end to end: a board on a real gateway (real MQTT, ledger, HTTP) sends signed
 * frames of a synthetic AF-like ECG with PVCs; the gateway's vitals carry the rhythm call,
 * PVC/min and quality on the live stream, in the trends route and in the FHIR export.
 */
import t from 'tap'
import { ADMIN, Board, CLINICIAN, Client, openSse, startDashEnv, synthEcg } from './helpers.ts'

const env = await startDashEnv(1)
t.teardown(() => env.close())
const [pa] = env.patients
const t0 = Date.now() - 120_000

interface Findings { rhythm: string | null; pvcPerMin: number; windowS: number; quality: number; at: number }

t.test('rhythm, PVC/min and quality reach the live stream, the trends and the FHIR export', async (t) => {
  const root = new Client(env.base)
  await root.login(ADMIN)
  t.equal((await root.req('POST', `/api/dash/patients/${pa.id}/consent`, { action: 'grant', clinicianId: 'alice', scope: 'live' })).status, 200)
  const alice = new Client(env.base)
  await alice.login(CLINICIAN)
  const sse = await openSse(alice)
  await sse.next((e) => e.event === 'ready')

  const ecgOf = synthEcg({ seed: 4, af: true, pvcRate: 0.15 })
  const board = new Board(pa.device, env.mqttUrl, t0, (seq) => ({ ecg: ecgOf(seq) }))
  await board.connect()
  await board.send(45)
  const last = await sse.next((e) => e.event === 'frame' && e.data.seq === 44)
  const ecg = (last.data.vitals as { ecg?: Findings }).ecg
  t.ok(ecg, 'the live frame carries ECG findings')
  t.equal(ecg!.rhythm, 'AF', 'the rhythm call')
  t.ok(ecg!.pvcPerMin > 0, `PVC/min ${ecg!.pvcPerMin}`)
  t.ok(ecg!.quality >= 50 && ecg!.windowS === 45, `quality ${ecg!.quality}, over ${ecg!.windowS} s`)
  t.equal(ecg!.at, t0 + 45_000, 'the end of the frame')
  t.ok((last.data.vitals as { hr?: unknown }).hr, 'the existing vitals are still there')
  const first = sse.events.find((e) => e.event === 'frame' && e.data.seq === 0)!
  t.equal((first.data.vitals as { ecg?: unknown }).ecg, undefined, 'the first frame: nothing judged yet, no findings')

  const tr = await alice.req('GET', `/api/dash/patients/${pa.id}/trends?from=${t0 - 1000}&to=${Date.now()}`).then((r) => r.json<{ hr: unknown[]; pvcPerMin: { t: number; value: number }[]; rhythm: { t: number; rhythm: string | null }[] }>())
  t.ok(tr.hr.length > 0, 'the HR series as before')
  t.ok(tr.rhythm.length >= 40 && tr.rhythm.length === tr.pvcPerMin.length, `rhythm and PVC/min series (${tr.rhythm.length} points)`)
  t.equal(tr.rhythm.at(-1)!.rhythm, 'AF')
  t.ok(tr.pvcPerMin.at(-1)!.value > 0)

  const fhir = await alice.req('GET', `/api/dash/patients/${pa.id}/fhir?from=${t0 - 1000}&to=${Date.now()}`)
  t.equal(fhir.status, 200)
  const obs = fhir.json<{ entry: { resource: Record<string, any> }[] }>().entry.map((e) => e.resource).filter((r) => r.resourceType === 'Observation')
  const pvc = obs.filter((o) => o.code.coding.some((c: { code: string }) => c.code === '148066'))
  const rhythm = obs.filter((o) => o.code.coding.some((c: { code: string }) => c.code === '8884-9'))
  t.equal(pvc.length, tr.pvcPerMin.length, 'a PVC-rate Observation per frame with findings (recomputed from the stored frames)')
  t.equal(rhythm.length, tr.rhythm.length, 'and a rhythm Observation')
  t.equal(pvc.at(-1)!.valueQuantity.value, tr.pvcPerMin.at(-1)!.value, 'the same values as the live chain')
  t.equal(rhythm.at(-1)!.valueCodeableConcept.coding[0].code, 'AF')
  t.equal(obs.filter((o) => o.valueSampledData).length, 45, 'the ECG waveform Observations as before')
  sse.close()
  await board.close()
})
