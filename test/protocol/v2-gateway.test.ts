/**
 * Version-2 frames end to end over real sockets: boards (ES256 keys, verified
 * in the gateway's worker pool, and HMAC keys, verified inline) publish frames
 * built with encodePayloadV2 from synthetic MAX30003 words over MQTT; the
 * gateway verifies and stores them in the ledger as it does version 1; the
 * dashboard's vitals show the synthetic heart rate at 128, 256 and 512 sps;
 * a version-1 board is accepted beside them; a gap record restarts the HR
 * detector; a frame carrying a FIFO-empty word is refused; FHIR export writes
 * the version-2 ECG in the chip's scale.
 */
import t from 'tap'
import type { MqttClient } from 'mqtt'
import { signFrameV2 } from '../../protocol/node/sign.ts'
import { fifoWord, ETAG } from '../../hardware-sim/devices/max30003-map.ts'
import type { FramePayloadV2 } from '../../protocol/portable/frame.ts'
import { connectDevice, endClient, newDeviceKey, publishAcked, registerSim, type SimKey } from '../gateway/helpers/devices.ts'
import { ADMIN, Board, CLINICIAN, Client, openSse, startDashEnv } from '../dashboard/helpers.ts'
import { V2Stream, wordBytes } from './helpers/v2-synth.ts'

const env = await startDashEnv(7)
t.teardown(() => env.close())
const t0 = Date.now() - 120_000

interface V2Board {
  patient: string
  key: SimKey
  stream: V2Stream
  client: MqttClient
  hz: number
  bpm: number
  seq: number
}

const RATES: Array<[128 | 256 | 512, number]> = [[128, 64], [256, 78], [512, 96]]
const root = new Client(env.base)
const alice = new Client(env.base)
const boards: V2Board[] = []

async function send(b: V2Board, p: FramePayloadV2): Promise<void> {
  await publishAcked(b.client, `mhealth/dev/${b.key.id}/frames`, Buffer.from(signFrameV2(b.key, p)))
}

t.before(async () => {
  await root.login(ADMIN)
  await alice.login(CLINICIAN)
  for (const p of env.patients) await root.req('POST', `/api/dash/patients/${p.id}/consent`, { action: 'grant', clinicianId: 'alice', scope: 'live' })
  // patients 0-2: the SE boards startDashEnv made; 3-5: a bare (HMAC) board registered for each
  for (let i = 0; i < 6; i++) {
    const patient = env.patients[i]!
    let key = patient.device
    if (i >= 3) {
      key = newDeviceKey('bare')
      registerSim(env.gw.registry, key, patient.id)
    }
    const [hz, bpm] = RATES[i % 3]!
    boards.push({ patient: patient.id, key, hz, bpm, seq: 0, client: await connectDevice(env.mqttUrl, key), stream: new V2Stream({ deviceId: key.id, ecgHz: hz, hrBpm: bpm, gain: ([20, 80, 160] as const)[i % 3], t0 }) })
  }
})
t.teardown(async () => {
  for (const b of boards) await endClient(b.client)
})

t.test('ES256 and HMAC boards at 128, 256 and 512 sps: stored, and the vitals show the synthetic heart rate', async (t) => {
  const sse = await openSse(alice)
  await sse.next((e) => e.event === 'ready')
  for (let k = 0; k < 14; k++) for (const b of boards) await send(b, b.stream.next(b.seq++))
  for (const b of boards) {
    const label = `${b.key.type === 'p256' ? 'ES256' : 'HMAC'} board at ${b.hz} sps, ${b.bpm} /min`
    const f = await sse.next((e) => e.event === 'frame' && e.data.deviceId === b.key.id && e.data.seq === 13)
    const hr = (f.data.vitals as { hr?: { value: number; source: string } }).hr
    t.equal(hr?.source, 'gateway', `${label}: HR computed on the gateway from the FIFO words`)
    t.ok(hr && Math.abs(hr.value - b.bpm) < 1.5, `${label}: HR ${hr?.value}`)
    t.equal(f.data.v, 2)
    t.ok(Array.isArray(f.data.ecg) && (f.data.ecg as number[]).length === b.hz, 'the live stream carries the ECG counts as a JSON array')
    t.equal(f.data.ecgUvPerLsb, 1e6 / (131072 * (f.data.ecgGain as number)), 'with their scale')
    const tr = await alice.req('GET', `/api/dash/patients/${b.patient}/trends?from=${t0 - 1000}&to=${Date.now()}`).then((r) => r.json<{ hr: { value: number }[] }>())
    t.ok(tr.hr.length >= 3 && Math.abs(tr.hr[tr.hr.length - 1]!.value - b.bpm) < 1.5, `${label}: HR trend ends at ${tr.hr[tr.hr.length - 1]?.value}`)
  }
  const devices = await root.req('GET', '/api/dash/devices').then((r) => r.json<{ deviceId: string; acceptedFrames: number }[]>())
  for (const b of boards) t.equal(devices.find((d) => d.deviceId === b.key.id)?.acceptedFrames, 14, `${b.key.id}: all 14 frames stored`)
  const rows = await alice.req('GET', `/api/dash/patients/${boards[1]!.patient}/frames?limit=3`).then((r) => r.json<{ seq: number; leafHash: string }[]>())
  t.same(rows.map((r) => r.seq), [13, 12, 11], 'in the ledger, newest first')
  sse.close()
})

t.test('a version-1 board is accepted beside them', async (t) => {
  const patient = env.patients[6]!
  const board = new Board(patient.device, env.mqttUrl, t0)
  await board.connect()
  await board.send(12)
  const tr = await waitFor(async () => {
    const r = await alice.req('GET', `/api/dash/patients/${patient.id}/trends?from=${t0 - 1000}&to=${Date.now()}`).then((x) => x.json<{ hr: { value: number }[] }>())
    return r.hr.length > 0 && r.hr.length >= 3 ? r : null
  })
  t.ok(Math.abs(tr.hr[tr.hr.length - 1]!.value - 72) < 1, `v1 HR ${tr.hr[tr.hr.length - 1]!.value}`)
  await board.close()
})

t.test('a frame with a gap record restarts the HR detector: no rate across the lost samples', async (t) => {
  const sse = await openSse(alice)
  await sse.next((e) => e.event === 'ready')
  for (const b of [boards[0]!, boards[4]!]) {
    const before = b.seq
    await send(b, b.stream.next(b.seq++))
    await send(b, b.stream.next(b.seq++, { ecgLost: Math.round(b.hz * 0.3), ecgLostAt: Math.round(b.hz * 0.4) }))
    for (let k = 0; k < 6; k++) await send(b, b.stream.next(b.seq++))
    const hrOf = async (seq: number) => ((await sse.next((e) => e.event === 'frame' && e.data.deviceId === b.key.id && e.data.seq === seq)).data.vitals as { hr?: { value: number } }).hr
    t.ok(await hrOf(before), `${b.hz} sps: HR just before`)
    const gapFrame = await sse.next((e) => e.event === 'frame' && e.data.deviceId === b.key.id && e.data.seq === before + 1)
    t.same(gapFrame.data.gaps, [{ lane: 0, at: Math.round(b.hz * 0.4), lost: Math.round(b.hz * 0.3) }], 'the gap record reaches the dashboard')
    t.equal(gapFrame.data.flags, 32, 'FLAG_GAP')
    t.equal((gapFrame.data.vitals as { hr?: unknown }).hr, undefined, `${b.hz} sps: the frame with the gap has no HR (the detector started over at the gap)`)
    t.equal(await hrOf(before + 2), undefined, 'nor the next one (relearning)')
    const back = await hrOf(before + 7)
    t.ok(back && Math.abs(back.value - b.bpm) < 1.5, `${b.hz} sps: HR back at ${back?.value} once relearned`)
  }
  sse.close()
})

t.test('verify-and-store refuses a version-2 frame the board could not have built', async (t) => {
  const b = boards[2]!
  const p = b.stream.next(b.seq)
  const raw = new Uint8Array(p.ecgRaw!)
  raw.set(wordBytes([fifoWord(0, ETAG.EMPTY)]), 30)
  const nacks: string[] = []
  await new Promise<void>((r) => b.client.subscribe(`mhealth/dev/${b.key.id}/control`, { qos: 1 }, () => r()))
  b.client.on('message', (_topic, msg) => nacks.push(String(msg)))
  await send(b, { ...p, ecgRaw: raw })
  const nack = await waitFor(async () => nacks.map((m) => JSON.parse(m) as { t: string; reason?: string; seq?: number }).find((m) => m.t === 'nack') ?? null)
  t.same(nack, { t: 'nack', seq: null, reason: 'schema' }, 'NACK with the reason')
  const devices = await root.req('GET', '/api/dash/devices').then((r) => r.json<{ deviceId: string; acceptedFrames: number; rejected?: Record<string, number> }[]>())
  const d = devices.find((x) => x.deviceId === b.key.id)!
  t.equal(d.acceptedFrames, 14, 'not stored')
  t.match(env.logs.find((e) => e.msg === 'frame rejected' && (e as { deviceId?: string }).deviceId === b.key.id), { reason: 'schema', detail: /word 10 has ETAG 110 \(FIFO empty\)/ })
})

t.test('FHIR export of version-2 frames: mV per count from the chip gain', async (t) => {
  const b = boards[1]! // 256 sps, gain 80
  const r = await alice.req('GET', `/api/dash/patients/${b.patient}/fhir?from=${t0 - 1000}&to=${Date.now()}`)
  t.equal(r.status, 200)
  const bundle = r.json<{ entry: { resource: Record<string, any> }[] }>()
  const ecg = bundle.entry.map((e) => e.resource).filter((x) => x.valueSampledData)
  t.equal(ecg.length, 14, 'one ECG Observation per frame')
  const sd = ecg[0]!.valueSampledData
  t.equal(sd.factor, 1e3 / (131072 * 80))
  t.equal(sd.period, 3.90625)
  t.equal(sd.data.split(' ').length, 256)
  const hr = bundle.entry.map((e) => e.resource).filter((x) => x.code?.coding?.length === 1 && x.code.coding[0].code === '8867-4') // ECG heart rate (the pulse rate carries 8889-8 as well)
  t.ok(hr.length > 0 && Math.abs(hr[hr.length - 1]!.valueQuantity.value - b.bpm) < 1.5, `HR Observations from the gateway's vitals: ${hr[hr.length - 1]?.valueQuantity.value}`)
})

async function waitFor<T>(fn: () => Promise<T | null>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== null) return v
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 50))
  }
}
