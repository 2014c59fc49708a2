/**
 * Frame verification in worker threads. Requests made in one event-loop turn are
 * sent as one batch message per worker (messaging costs ~as much as an HMAC, so
 * batching is what makes the pool worth it), round-robin over the workers. The
 * main thread keeps the broker, the ledger and the sockets; ES256 verification
 * (~100 µs a frame) moves off it. bench/gateway-verify.ts measures both ways.
 */
import { Worker } from 'node:worker_threads'
import { Rejection, type DeviceKey, type FrameChecker, type FrameFacts } from './frame-check.ts'
import { REP_FIELDS, REQ_FIELDS, type VerifyBatch, type VerifyReplyBatch } from './verify-wire.ts'

interface Pending {
  kid: string
  resolve: (f: FrameFacts) => void
  reject: (e: Error) => void
}

/** One worker's next batch: the frames and keys are copied once, into one buffer sent by transfer. */
interface Queue {
  frames: Uint8Array[]
  keys: Array<Uint8Array | null>
  profiles: number[]
  ids: number[]
  kids: string[]
  bytes: number
}

const newQueue = (): Queue => ({ frames: [], keys: [], profiles: [], ids: [], kids: [], bytes: 0 })

function packBatch(q: Queue): VerifyBatch {
  const n = q.ids.length
  const bytes = new Uint8Array(q.bytes)
  const meta = new Int32Array(n * REQ_FIELDS)
  let pos = 0
  for (let i = 0; i < n; i++) {
    const m = i * REQ_FIELDS
    const f = q.frames[i]!
    const k = q.keys[i]!
    meta[m] = q.ids[i]!
    meta[m + 1] = pos
    meta[m + 2] = f.length
    bytes.set(f, pos)
    pos += f.length
    meta[m + 3] = pos
    meta[m + 4] = k ? k.length : -1
    if (k) {
      bytes.set(k, pos)
      pos += k.length
    }
    meta[m + 5] = q.profiles[i]!
  }
  return { bytes, meta, kids: q.kids }
}

export function poolChecker(size = 1): FrameChecker {
  if (!Number.isInteger(size) || size < 1 || size > 64) throw new RangeError(`verify pool size: expected 1..64, got ${size}`)
  const pending = new Map<number, Pending>()
  let nextId = 1
  let rr = 0
  let closed = false
  const queues: Queue[] = []
  let scheduled = false

  // Workers keep the process alive only while frames are in flight, like a socket would.
  let refd = false
  const setRef = (on: boolean) => {
    if (on === refd) return
    refd = on
    for (const w of workers) (on ? w.ref() : w.unref())
  }
  const settle = (id: number) => {
    pending.delete(id)
    if (pending.size === 0) setRef(false)
  }

  const workers: Worker[] = Array.from({ length: size }, (_, i) => {
    // A small young generation: under a ward's steady load V8 otherwise grows it to 48 MB per
    // isolate; capped, RSS while 1,000 devices stream fell ~10 MB at no cost in frames/s (bench/gateway.ts).
    const w = new Worker(new URL('./verify-worker-boot.mjs', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 6 } })
    queues[i] = newQueue()
    w.on('message', (reply: VerifyReplyBatch) => {
      const f = reply.facts
      const refused = new Map(reply.errors.map((e) => [e.i, e]))
      for (let j = 0, o = 0; o < f.length; j++, o += REP_FIELDS) {
        const id = f[o]!
        const p = pending.get(id)
        if (!p) continue
        settle(id)
        if (f[o + 1] === 1) p.resolve({ kid: p.kid, deviceId: p.kid, seq: f[o + 2]!, boot: f[o + 3]!, t0: f[o + 4]!, flags: f[o + 5]! })
        else {
          const e = refused.get(j)
          p.reject(e ? new Rejection(e.code, e.message) : new Error('verify worker gave no verdict'))
        }
      }
    })
    w.on('error', (err) => {
      // A crashed worker fails its in-flight frames as 'internal' (not the device's fault).
      for (const [id, p] of pending) {
        settle(id)
        p.reject(new Error(`verify worker failed: ${err.message}`))
      }
    })
    w.unref()
    return w
  })

  const flush = () => {
    scheduled = false
    workers.forEach((w, i) => {
      const q = queues[i]!
      if (q.ids.length === 0) return
      queues[i] = newQueue()
      const b = packBatch(q)
      w.postMessage(b, [b.bytes.buffer as ArrayBuffer, b.meta.buffer as ArrayBuffer])
    })
  }

  return {
    check(frame: Uint8Array, key: DeviceKey, expectKid: string): Promise<FrameFacts> {
      if (closed) return Promise.reject(new Error('verify pool closed'))
      const id = nextId++
      if (nextId > 0x7fffffff) nextId = 1 // ids travel as int32
      const q = queues[rr++ % size]!
      // The frame is a view into a socket buffer (and the key may sit in Buffer's
      // shared pool): keep the views; packBatch copies their bytes once at flush.
      const k = key.profile === 'se' ? key.publicKey : key.secret
      q.ids.push(id)
      q.frames.push(frame)
      q.keys.push(k)
      q.profiles.push(key.profile === 'se' ? 0 : 1)
      q.kids.push(expectKid)
      q.bytes += frame.length + (k ? k.length : 0)
      if (!scheduled) {
        scheduled = true
        setImmediate(flush)
      }
      setRef(true)
      return new Promise((resolve, reject) => pending.set(id, { kid: expectKid, resolve, reject }))
    },
    async close() {
      closed = true
      await Promise.all(workers.map((w) => w.terminate()))
      for (const [id, p] of pending) {
        settle(id)
        p.reject(new Error('verify pool closed'))
      }
    },
  }
}

/**
 * `verify: 'auto'`: ES256 frames (secure-element devices) go to the worker pool,
 * HMAC frames stay inline — bench/gateway-verify.ts on a 2-core machine: ES256
 * 10.0k/s inline vs 16.4k/s with 2 workers and the main thread 23 % busy instead
 * of 100 %; HMAC 39k/s inline vs 26-31k/s through workers (messaging costs more
 * than the MAC). The pool starts on the first ES256 frame.
 */
export function autoChecker(workers: number, inline: FrameChecker): FrameChecker {
  let pool: FrameChecker | null = null
  return {
    check(frame, key, expectKid) {
      if (key.profile !== 'se') return inline.check(frame, key, expectKid)
      pool ??= poolChecker(workers)
      return pool.check(frame, key, expectKid)
    },
    async close() {
      await Promise.all([pool?.close(), inline.close()])
    },
  }
}

/** Worker count for `verifyWorkers: 0`: one per core but one (the main thread's). */
export const defaultWorkers = (cpus: number): number => Math.max(1, cpus - 1)
