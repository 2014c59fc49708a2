/**
 * Per-frame work in few, short callbacks, one frame at a time, with a way back when a
 * callback never runs (issue 12: the interpreter abandons a callback on out-of-memory):
 *
 *   window handed on ─▶ build (callback 1: payload bytes; the window is released here)
 *                     ─▶ seal  (callback 2: the MAC; SE: the digest, handed to the part, whose
 *                               answer comes in the driver's poll callback)
 *                     ─▶ send  (callback 3: publish, or the flash ring when offline)
 *
 * A window that arrives while a frame is still in progress waits (one at most; the
 * acquisition takes it back if it waits a whole window). A job older than `jobMaxMs` is
 * abandoned when the next window arrives: counted as a fault and a dropped frame, and a late
 * continuation of it is ignored (each stage checks it still owns the job).
 */
import type { Signer } from './signer.ts'

export interface PipelineParts<W> {
  /** The payload of a window (a view valid until the next build); null or a throw drops the window. */
  build: (w: W) => Uint8Array | null
  /** The window's buffers are free again. */
  release: (w: W, token: number) => void
  /** Whether the window is still the consumer's (false: the acquisition took it back). */
  valid: (w: W, token: number) => boolean
  signer: Signer
  /** Publishes a COSE frame (binary string) or keeps it in flash. */
  submit: (frame: string) => void
  toStr: (u8: Uint8Array) => string
  now: () => number
  log: (m: string) => void
  /** A job (build to send) older than this is taken for abandoned, ms. */
  jobMaxMs: number
}

interface Job {
  id: number
  t: number
  payload: Uint8Array | null
}

export interface PipelineStats {
  /** Payloads built, frames sealed and handed to the uplink. */
  made: number
  frames: number
  bytes: number
  /** ms of board time in the build stage (the frame build's cost, as the real interpreter was timed). */
  frameMs: number
  sendMs: number
  signErrors: number
  buildErrors: number
  sendErrors: number
  /** Jobs abandoned after jobMaxMs (a stage's callback never ran). */
  abandoned: number
}

export class Pipeline<W> {
  p: PipelineParts<W>
  job: Job | null
  pending: W | null
  pendingToken: number
  n: number
  /** Frames lost here (build/sign errors, abandoned jobs) and faults recovered, until taken. */
  dropped: number
  faults: number
  stats: PipelineStats

  constructor(p: PipelineParts<W>) {
    this.p = p
    this.job = null
    this.pending = null
    this.pendingToken = 0
    this.n = 0
    this.dropped = 0
    this.faults = 0
    this.stats = { made: 0, frames: 0, bytes: 0, frameMs: 0, sendMs: 0, signErrors: 0, buildErrors: 0, sendErrors: 0, abandoned: 0 }
  }

  /** Forgets any job and waiting window (a watchdog restart): each is a frame not sent. */
  reset(): void {
    if (this.job) this.dropped++
    if (this.pending) this.dropped++
    this.job = null
    this.pending = null
  }

  /** A full window from the acquisition (its own callback). */
  onWindow(w: W, token: number): void {
    const j = this.job
    if (j && this.p.now() - j.t > this.p.jobMaxMs) {
      this.p.log('frame ' + j.id + ' abandoned after ' + Math.round(this.p.now() - j.t) + ' ms')
      this.stats.abandoned++
      this.dropped++
      this.faults++
      this.job = null
    }
    if (!this.p.valid(w, token)) return
    if (this.job) {
      this.pending = w
      this.pendingToken = token
      return
    }
    this.build(w, token)
  }

  build(w: W, token: number): void {
    const self = this
    const t = this.p.now()
    const j: Job = { id: ++this.n, t: t, payload: null }
    this.job = j
    try {
      j.payload = this.p.build(w)
      if (!j.payload) this.dropped++ // nothing a frame could carry (a window all gap)
    } catch (e) {
      this.p.log('frame: ' + e)
      this.stats.buildErrors++
      this.dropped++
    }
    this.p.release(w, token)
    this.stats.frameMs += this.p.now() - t
    if (!j.payload) return this.done(j)
    this.stats.made++
    setTimeout(function () { self.seal(j) }, 0)
  }

  seal(j: Job): void {
    if (j !== this.job) return
    const self = this
    this.p.signer.sign(j.payload!, function (err, cose) {
      // The COSE bytes become a string at once (the signer reuses its buffer); the publish, or
      // the flash write when offline, runs in a callback of its own so neither stage is long.
      const s = err || !cose ? null : self.p.toStr(cose)
      setTimeout(function () { self.sent(j, err, s, cose ? cose.length : 0) }, 0)
    })
  }

  /** The COSE frame as a binary string (made at once: the signer's buffer is reused). */
  sent(j: Job, err: string | null, frame: string | null, bytes: number): void {
    if (j !== this.job) return // abandoned meanwhile: a newer frame owns the buffers
    if (err || frame === null) {
      this.stats.signErrors++
      this.dropped++
      this.p.log('sign: ' + err)
    } else {
      try {
        this.p.submit(frame)
        this.stats.frames++
        this.stats.bytes += bytes
      } catch (e) {
        this.stats.sendErrors++
        this.p.log('send: ' + e)
      }
    }
    this.done(j)
  }

  done(j: Job): void {
    if (j !== this.job) return
    this.job = null
    const w = this.pending
    if (w) {
      const self = this
      const token = this.pendingToken
      this.pending = null
      setTimeout(function () { self.onWindow(w, token) }, 0)
    }
  }
}
