/**
 * The FHIR export streams (issue 19): on a real gateway with hours of frames in its real
 * ledger, the Bundle is written a few frames at a time, so while a large export is being
 * read (slowly) /healthz still answers at once and a board's PUBLISH still gets its PUBACK;
 * what arrives parses to the same Bundle the in-memory builder gives for the same frames;
 * a client that goes away stops the work; and a third export at once is turned away.
 */
import t from 'tap'
import { request, type ClientRequest, type IncomingMessage } from 'node:http'
import { performance } from 'node:perf_hooks'
import { buildFhirBundle, type ExportFrame } from '../../dashboard/fhir.ts'
import { VitalsTracker } from '../../dashboard/vitals.ts'
import { leafHashOf } from '../../dashboard/leaf-hash.ts'
import { decodeFrame } from '../../protocol/node/decode.ts'
import { fillLedger, ledgerOf } from '../../testing/ledger-frames.ts'
import { connectDevice, endClient, frame, newDeviceKey, publishAcked, registerSim } from '../gateway/helpers/devices.ts'
import { waitFor, expectQuiet } from '../helpers/wait.ts'
import { ADMIN, CLINICIAN, Client, startDashEnv } from './helpers.ts'

const unhandled: unknown[] = []
const onUnhandled = (e: unknown): void => void unhandled.push(e)
process.on('unhandledRejection', onUnhandled)
process.on('uncaughtException', onUnhandled)

const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = []
const env = await startDashEnv(1, { log: (level, msg, fields) => void logs.push({ level, msg, fields }) })
t.teardown(async () => {
  await env.close()
  process.off('unhandledRejection', onUnhandled)
  process.off('uncaughtException', onUnhandled)
})
const [pa] = env.patients
const root = new Client(env.base)
await root.login(ADMIN)
if ((await root.req('POST', `/api/dash/patients/${pa.id}/consent`, { action: 'grant', clinicianId: CLINICIAN.username, scope: 'live' })).status !== 200) throw new Error('consent grant failed')
const alice = new Client(env.base)
await alice.login(CLINICIAN)

// Two more boards on patient A, filled straight into the ledger (after the dashboard is mounted).
const ledger = ledgerOf(env.gw)
const boardA = newDeviceKey('bare')
const boardB = newDeviceKey('bare')
registerSim(env.gw.registry, boardA, pa.id)
registerSim(env.gw.registry, boardB, pa.id)
const now = Date.now()
// Small: both boards at the same t0s (ties across devices), and a backlog of A's sent late.
const SMALL_FROM = now - 6 * 3600_000
await fillLedger(ledger, boardA, { fromMs: SMALL_FROM, count: 40 })
await fillLedger(ledger, boardB, { fromMs: SMALL_FROM, count: 40 })
await fillLedger(ledger, boardA, { fromMs: SMALL_FROM + 500, count: 10, firstSeq: 1000 })
// Large: two hours of one board; building it in one go holds the event loop for seconds.
const BIG_FRAMES = 7200
const BIG_FROM = now - 4 * 3600_000
await fillLedger(ledger, boardA, { fromMs: BIG_FROM, count: BIG_FRAMES, firstSeq: 10_000 })
const bigPath = `/api/dash/patients/${pa.id}/fhir?from=${BIG_FROM}&to=${BIG_FROM + BIG_FRAMES * 1000}`

/** What the export gave before it streamed: every frame read, decoded and built in memory. */
async function inMemoryBundle(fromMs: number, toMs: number, type: 'collection' | 'transaction') {
  const raw = await env.dash.deps.frames({ userId: CLINICIAN.username, role: 'clinician' }, pa.id, fromMs, toMs)
  const vitals = new VitalsTracker()
  const frames: ExportFrame[] = raw.map((bytes) => {
    const p = decodeFrame(bytes).payload
    const v = vitals.add(pa.id, p)
    const fill = (k: 'hr' | 'pr' | 'spo2') => (p[k] ?? (v[k] ? { value: v[k]!.value, quality: v[k]!.quality } : undefined))
    const payload = { ...p, hr: fill('hr'), pr: fill('pr'), spo2: fill('spo2') }
    for (const k of ['hr', 'pr', 'spo2'] as const) if (payload[k] === undefined) delete payload[k]
    // a gateway-computed SpO2 names its calibration (issue 17)
    const cal = !p.spo2 && v.spo2?.calibration ? { spo2Calibration: v.spo2.calibration } : {}
    return { payload, frameHash: leafHashOf(bytes), ...(v.ecg ? { ecg: v.ecg } : {}), ...cal }
  })
  return buildFhirBundle(frames, { patientId: pa.id, patientName: pa.name, fromMs, toMs, type })
}

interface Download {
  req: ClientRequest
  /** Resolves with the response head. */
  head: Promise<IncomingMessage>
  /** Bytes received so far. */
  received(): number
  ended(): boolean
  /** Reads one chunk every `everyMs` (slowly: the server must wait, not buffer). */
  slow(everyMs: number): void
  /** Reads at full speed; resolves with the whole body. */
  rest(): Promise<string>
}

/** A GET whose body is read as the test says: not at all, slowly, or to the end. */
function download(path: string): Download {
  const chunks: Buffer[] = []
  let size = 0
  let done = false
  let pace = 0
  let resolveEnd: (s: string) => void = () => {}
  const end = new Promise<string>((r) => (resolveEnd = r))
  const req = request(env.base + path, { headers: { cookie: alice.cookie }, agent: false })
  req.on('error', () => {}) // the test ends some downloads itself
  const head = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', (res) => {
      res.pause()
      res.on('data', (c: Buffer) => {
        chunks.push(c)
        size += c.length
        if (pace > 0) {
          res.pause()
          setTimeout(() => res.resume(), pace)
        }
      })
      res.on('end', () => {
        done = true
        resolveEnd(Buffer.concat(chunks).toString('utf8'))
      })
      res.on('error', () => {})
      resolve(res)
    })
    req.once('error', reject)
  })
  req.end()
  return {
    req, head, received: () => size, ended: () => done,
    slow(everyMs) {
      pace = everyMs
      void head.then((res) => res.resume())
    },
    async rest() {
      pace = 0
      ;(await head).resume()
      return end
    },
  }
}

/** A GET /healthz on its own connection: its latency in ms. */
function probe(): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now()
    const r = request(env.base + '/healthz', { agent: false }, (res) => {
      res.resume()
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - start) : reject(new Error(`/healthz answered ${res.statusCode}`))))
    })
    r.on('error', reject)
    r.end()
  })
}

t.test('the streamed Bundle is the one the in-memory builder gives for the same frames', async (t) => {
  for (const type of ['collection', 'transaction'] as const) {
    const [from, to] = [SMALL_FROM - 1, SMALL_FROM + 60_000]
    const d = download(`/api/dash/patients/${pa.id}/fhir?from=${from}&to=${to}&type=${type}`)
    const res = await d.head
    t.equal(res.statusCode, 200, `${type}: 200`)
    t.equal(res.headers['transfer-encoding'], 'chunked', `${type}: streamed, no length known up front`)
    t.match(res.headers['content-type'], /^application\/fhir\+json/)
    t.match(res.headers['content-disposition'], /attachment; filename=".+\.fhir\.json"/)
    const got = JSON.parse(await d.rest())
    const want = await inMemoryBundle(from, to, type)
    t.equal(want.entry.filter((e) => e.resource.resourceType === 'Observation' && e.resource.valueSampledData).length, 90, 'the reference holds all 90 frames (2 boards, ties and a late backlog)')
    t.same(got, want, `${type}: same Bundle, entry for entry, and the same id`)
  }
})

t.test('a large export read slowly: /healthz answers and PUBACKs come while it runs', async (t) => {
  const board = await connectDevice(env.mqttUrl, pa.device)
  t.teardown(() => endClient(board))
  // The first frame of a run starts the verify workers (most of a second, export or not).
  await publishAcked(board, `mhealth/dev/${pa.device.id}/frames`, frame(pa.device, 99, { t0: Date.now() - 1000 }))
  const d = download(bigPath)
  // Probe at once: before streaming, building the Bundle held the loop before the head went out.
  await new Promise<void>((r) => (d.req.writableFinished ? r() : d.req.once('finish', () => r())))
  d.slow(20)
  // Two clients at once, as on a ward: a monitor probing /healthz and a board publishing.
  const probes: number[] = []
  const pubacks: number[] = []
  await Promise.all([
    (async () => {
      for (let i = 0; i < 20; i++) probes.push(await probe())
    })(),
    (async () => {
      for (let i = 0; i < 5; i++) {
        const start = performance.now()
        await publishAcked(board, `mhealth/dev/${pa.device.id}/frames`, frame(pa.device, 100 + i, { t0: Date.now() - 1000 }))
        pubacks.push(performance.now() - start)
      }
    })(),
  ])
  t.comment(`probes ${probes.map((p) => p.toFixed(1)).join(" ")}; pubacks ${pubacks.map((p) => p.toFixed(1)).join(" ")}`)
  t.notOk(d.ended(), `the export was still running through every probe (${d.received()} bytes read so far)`)
  t.ok(d.received() > 0, 'and it had started sending')
  const worstProbe = Math.max(...probes)
  t.ok(worstProbe < 200, `each of 20 /healthz probes under 200 ms (worst ${worstProbe.toFixed(1)} ms)`)
  const worstAck = Math.max(...pubacks)
  t.ok(worstAck < 1000, `each of ${pubacks.length} PUBLISHes got its PUBACK within 1 s (worst ${worstAck.toFixed(1)} ms)`)
  const bundle = JSON.parse(await d.rest()) as { resourceType: string; entry: { resource: Record<string, unknown> }[]; id: string }
  t.equal(bundle.resourceType, 'Bundle')
  t.equal(bundle.entry.filter((e) => e.resource.valueSampledData).length, BIG_FRAMES, 'read to the end, one ECG Observation per stored frame')
  t.match(bundle.id, /^[0-9a-f-]{36}$/)
})

t.test('a client that goes away mid-export stops the work; a third export at once is turned away', async (t) => {
  const reads = { n: 0 }
  const frameAt = ledger.frameAt
  ledger.frameAt = function (this: typeof ledger, i: number) {
    reads.n++
    return frameAt.call(this, i)
  }
  t.teardown(() => void (ledger.frameAt = frameAt))
  const before = logs.length
  const d = download(bigPath)
  await d.head
  d.slow(5)
  await waitFor(() => d.received() > 64 * 1024, 'the first 64 KB of the export', 30_000)
  d.req.destroy()
  await waitFor(() => logs.slice(before).some((l) => l.msg === 'FHIR export stopped before the end'), 'the export to notice the client went away', 30_000)
  const stopped = logs.slice(before).find((l) => l.msg === 'FHIR export stopped before the end')!
  t.ok((stopped.fields!.frames as number) < BIG_FRAMES, `stopped after ${stopped.fields!.frames} of ${BIG_FRAMES} frames`)
  const n = reads.n
  await expectQuiet(300, 'frames read after the stop')
  t.equal(reads.n, n, 'no frame is read from the ledger after the stop')
  t.ok(n < BIG_FRAMES, `${n} of ${BIG_FRAMES} frames were read`)

  const a = download(bigPath)
  const b = download(bigPath)
  await Promise.all([a.head, b.head])
  const third = await alice.req('GET', bigPath)
  t.equal(third.status, 503, 'a third export while two run: 503')
  t.match(third.json<{ error: string }>().error, /exports are running/)
  a.req.destroy()
  b.req.destroy()
  await waitFor(async () => (await alice.req('GET', `/api/dash/patients/${pa.id}/fhir?from=${SMALL_FROM}&to=${SMALL_FROM + 1000}`)).status === 200, 'exports to be taken again once those two stopped', 30_000)
  t.same(unhandled, [], 'no unhandled error or rejection')
})
