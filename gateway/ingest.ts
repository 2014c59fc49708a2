/**
 * The frame pipeline, as a named list of small steps run in order for each PUBLISH
 * on a device's frames topic:
 *
 *   limit → authorize → verify (decode + signature) → bind → plausible → dedupe → persist
 *
 * then the broker hook acknowledges (PUBACK) only after `persist` resolved, i.e.
 * once the FrameStore holds the frame durably. Any step may throw a Rejection:
 * the frame is not stored, the device gets a NACK on its control topic with the
 * reason, the rejection is counted by reason.
 */
import { StoreUnavailable, type FrameStore } from './ledger-port.ts'
import type { DeviceRegistry } from './registry.ts'
import type { GatewayMetrics } from './metrics.ts'
import type { Logger } from './log.ts'
import { Rejection, type DeviceKey, type FrameChecker, type FrameFacts } from './frame-check.ts'
import { TokenBucket } from './rate-limit.ts'

export interface IngestLimits {
  /** Largest frame payload accepted (bytes). */
  maxFrameBytes: number
  /** How far in the future a frame's t0 may be (board clock ahead of ours). */
  futureSkewMs: number
  /** How old a frame's t0 may be (boards buffer frames while offline). */
  maxAgeMs: number
  /** Per-device sustained frames/s and burst. */
  ratePerSec: number
  rateBurst: number
  /** Longest a frame is held back by the rate limit before it is refused instead. */
  maxThrottleMs: number
}

export interface DeviceSession {
  deviceId: string
  patient: string
  key: DeviceKey
  bucket: TokenBucket
  /** Completion order of this client's frames, so PUBACKs leave in PUBLISH order [MQTT-4.6.0-2]. */
  tail: Promise<unknown>
  active: boolean
}

export type Outcome =
  | { kind: 'stored'; seq: number; leafIndex: number }
  | { kind: 'duplicate'; seq: number }
  | { kind: 'rejected'; reason: string; detail: string; seq: number | null }
  /** The store could not keep it (disk full): no PUBACK, the board keeps the frame and resends. */
  | { kind: 'unavailable'; reason: 'storage'; detail: string; seq: number | null }

export interface IngestDeps {
  store: FrameStore
  checker: FrameChecker
  registry: DeviceRegistry
  metrics: GatewayMetrics
  log: Logger
  limits: IngestLimits
  now: () => number
  /** Sends a control message (JSON) to the device. */
  control(deviceId: string, msg: Record<string, unknown>): void
  /** Fans a stored frame out to the patient's live topic. */
  fanOut(patientId: string, frame: Buffer): void
  /** Frames being persisted, by device+seq, so a retransmission waits for its first copy. */
  inflight: Map<string, Promise<boolean>>
}

interface Ctx {
  session: DeviceSession
  frame: Buffer
  received: number
  facts?: FrameFacts
  duplicate?: boolean
  leafIndex?: number
  /** Releases this frame's (device, seq) claim, telling waiters whether it was stored. */
  settle?: (stored: boolean) => void
}

type Step = [name: string, run: (d: IngestDeps, c: Ctx) => void | Promise<void>]

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

const steps: Step[] = [
  [
    'limit',
    async (d, c) => {
      if (c.frame.length === 0 || c.frame.length > d.limits.maxFrameBytes)
        throw new Rejection('size', `frame is ${c.frame.length} bytes, expected 1..${d.limits.maxFrameBytes}`)
      const wait = c.session.bucket.reserve(d.now())
      if (wait > d.limits.maxThrottleMs) {
        c.session.bucket.refund()
        throw new Rejection('rate-limit', `over ${d.limits.ratePerSec} frames/s`)
      }
      if (wait > 0) {
        d.metrics.rateLimited.inc()
        await sleep(wait)
      }
    },
  ],
  [
    'authorize',
    (_d, c) => {
      if (!c.session.active) throw new Rejection('device-revoked', `device ${c.session.deviceId} was revoked`)
    },
  ],
  [
    'verify',
    async (d, c) => {
      const t = performance.now()
      try {
        c.facts = await d.checker.check(c.frame, c.session.key, c.session.deviceId)
      } finally {
        d.metrics.verifySeconds.observe((performance.now() - t) / 1000)
      }
    },
  ],
  [
    'bind',
    (_d, c) => {
      const f = c.facts!
      // The frame must be signed as, and about, the device that is connected.
      if (f.kid !== c.session.deviceId) throw new Rejection('kid-mismatch', `kid ${f.kid} is not the client ID ${c.session.deviceId}`)
      if (f.deviceId !== c.session.deviceId) throw new Rejection('kid-mismatch', `payload deviceId ${f.deviceId} is not the client ID ${c.session.deviceId}`)
    },
  ],
  [
    'plausible',
    (d, c) => {
      const now = d.now()
      const t0 = c.facts!.t0
      if (t0 > now + d.limits.futureSkewMs) throw new Rejection('time', `t0 ${t0} is ${t0 - now} ms ahead of the gateway clock`)
      if (t0 < now - d.limits.maxAgeMs) throw new Rejection('time', `t0 ${t0} is older than ${d.limits.maxAgeMs} ms`)
    },
  ],
  [
    'dedupe',
    async (d, c) => {
      const key = dedupeKey(c.session.deviceId, c.facts!.seq)
      // Claim (device, seq) synchronously: a retransmission arriving before the first
      // copy's PUBACK waits for that copy instead of storing a second one.
      for (;;) {
        const pending = d.inflight.get(key)
        if (!pending) break
        if (await pending) {
          c.duplicate = true
          return
        }
        // the first copy failed to store: this copy tries (after re-checking the claim)
      }
      let settle!: (stored: boolean) => void
      d.inflight.set(key, new Promise<boolean>((r) => (settle = r)))
      c.settle = (stored) => {
        d.inflight.delete(key)
        settle(stored)
      }
      try {
        const fault = d.store.fault?.()
        if (fault) throw new StoreUnavailable(fault)
        if (await d.store.hasFrame(c.session.deviceId, c.facts!.seq)) {
          c.duplicate = true
          c.settle(true)
        }
      } catch (err) {
        c.settle(false)
        throw err
      }
    },
  ],
  [
    'persist',
    async (d, c) => {
      if (c.duplicate) return
      let stored = false
      try {
        const fault = d.store.fault?.()
        if (fault) throw new StoreUnavailable(fault)
        const r = await d.store.appendFrame(c.frame, { deviceId: c.session.deviceId, seq: c.facts!.seq, t0: c.facts!.t0 })
        if (r.duplicate) c.duplicate = true
        c.leafIndex = r.leafIndex
        stored = true
      } finally {
        c.settle!(stored)
      }
    },
  ],
]

const dedupeKey = (id: string, seq: number) => id + '\u0000' + seq

/** Runs the pipeline for one frame; never throws (every failure becomes an Outcome). */
export async function ingestFrame(d: IngestDeps, session: DeviceSession, frame: Buffer): Promise<Outcome> {
  const c: Ctx = { session, frame, received: performance.now() }
  let step = ''
  try {
    for (const [name, run] of steps) {
      step = name
      await run(d, c)
    }
  } catch (err) {
    if (err instanceof StoreUnavailable) return unavailable(d, session, c, err)
    // Any other failure to look up or store the frame is the store's, not the frame's: it is
    // not acknowledged either (a PUBACK after a failed persist lost frames on a full disk).
    if (!(err instanceof Rejection) && (step === 'dedupe' || step === 'persist')) return unavailable(d, session, c, new StoreUnavailable(`${step}: ${(err as Error).message}`))
    const r = err instanceof Rejection ? err : (err as { code?: unknown }).code && typeof (err as { code: unknown }).code === 'string' && step === 'verify'
      ? new Rejection((err as { code: string }).code, (err as Error).message)
      : null
    if (!r) {
      // Not the frame's fault (store failure, bug): log and refuse, never acknowledge as stored.
      d.log.log('error', 'ingest failed', { deviceId: session.deviceId, step, error: (err as Error).message })
      return reject(d, session, c, new Rejection('internal', `gateway could not ${step} the frame`))
    }
    return reject(d, session, c, r)
  }
  const f = c.facts!
  d.registry.noteSeq(session.deviceId, f.seq, d.now())
  if (c.duplicate) {
    d.metrics.framesDuplicate.inc()
    return { kind: 'duplicate', seq: f.seq }
  }
  d.metrics.framesAccepted.inc()
  d.metrics.ingestSeconds.observe((performance.now() - c.received) / 1000)
  d.fanOut(session.patient, c.frame)
  return { kind: 'stored', seq: f.seq, leafIndex: c.leafIndex! }
}

function unavailable(d: IngestDeps, session: DeviceSession, c: Ctx, err: StoreUnavailable): Outcome {
  const seq = c.facts ? c.facts.seq : null
  d.metrics.framesRejected.inc({ reason: 'storage' })
  d.log.log('error', 'frame not stored: storage unavailable', { deviceId: session.deviceId, seq, detail: err.message })
  d.control(session.deviceId, { t: 'nack', seq, reason: 'storage' })
  return { kind: 'unavailable', reason: 'storage', detail: err.message, seq }
}

function reject(d: IngestDeps, session: DeviceSession, c: Ctx, r: Rejection): Outcome {
  const seq = c.facts ? c.facts.seq : null
  d.metrics.framesRejected.inc({ reason: r.code })
  d.log.log('warn', 'frame rejected', { deviceId: session.deviceId, seq, reason: r.code, detail: r.message })
  d.control(session.deviceId, { t: 'nack', seq, reason: r.code })
  return { kind: 'rejected', reason: r.code, detail: r.message, seq }
}
