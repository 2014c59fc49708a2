/**
 * Frame verification in worker threads. Requests made in one event-loop turn are
 * sent as one batch message per worker (messaging costs ~as much as an HMAC, so
 * batching is what makes the pool worth it), round-robin over the workers. The
 * main thread keeps the broker, the ledger and the sockets; ES256 verification
 * (~100 µs a frame) moves off it. bench/gateway-verify.ts measures both ways.
 */
import { Worker } from 'node:worker_threads'
import { Rejection, type DeviceKey, type FrameChecker, type FrameFacts } from './frame-check.ts'
import type { VerifyReply, VerifyRequest } from './verify-worker.ts'

interface Pending {
  resolve: (f: FrameFacts) => void
  reject: (e: Error) => void
}

export function poolChecker(size = 1): FrameChecker {
  if (!Number.isInteger(size) || size < 1 || size > 64) throw new RangeError(`verify pool size: expected 1..64, got ${size}`)
  const pending = new Map<number, Pending>()
  let nextId = 1
  let rr = 0
  let closed = false
  const queues: VerifyRequest[][] = []
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
    const w = new Worker(new URL('./verify-worker-boot.mjs', import.meta.url))
    queues[i] = []
    w.on('message', (replies: VerifyReply[]) => {
      for (const r of replies) {
        const p = pending.get(r.id)
        if (!p) continue
        settle(r.id)
        if (r.ok) p.resolve(r.facts)
        else p.reject(new Rejection(r.code, r.message))
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
      if (queues[i]!.length === 0) return
      w.postMessage(queues[i])
      queues[i] = []
    })
  }

  return {
    check(frame: Uint8Array, key: DeviceKey, expectKid: string): Promise<FrameFacts> {
      if (closed) return Promise.reject(new Error('verify pool closed'))
      const id = nextId++
      const i = rr++ % size
      // Copies: a payload is a view into a larger socket buffer, and structured clone
      // would copy that whole buffer; the key may sit in Buffer's shared pool.
      const k: DeviceKey = { profile: key.profile, publicKey: key.publicKey && new Uint8Array(key.publicKey), secret: key.secret && new Uint8Array(key.secret) }
      queues[i]!.push({ id, frame: new Uint8Array(frame), key: k, expectKid })
      if (!scheduled) {
        scheduled = true
        setImmediate(flush)
      }
      setRef(true)
      return new Promise((resolve, reject) => pending.set(id, { resolve, reject }))
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
