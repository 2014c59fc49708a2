/**
 * Sampling: ECG from the AD8232 at `ecgHz` on a timer, PPG from the MAX30102 FIFO every
 * `ppgPollMs`, into double-buffered typed arrays. When a window fills, the buffers swap
 * and the full one is handed on (next tick of the event loop) while sampling continues in
 * the other, so building, signing and sending a frame never stalls acquisition.
 *
 * Timestamps come from the timer: sample k of the run is due at tStart + k / ecgHz. A tick
 * that runs late (the interpreter was busy) fills the samples it owes with the value it
 * reads and counts them as missed, so the window keeps its nominal rate and the loss is
 * measured; `jitter` is how late ticks ran.
 *
 * Each sample is also delta-packed (protocol/portable/pack.ts) the moment it is taken, so a
 * frame needs no pass over its samples: packing 450 samples at once is ~4,000 interpreted
 * statements, tens of ms on an ESP32, which would stall the 4 ms ECG tick (bench/firmware.ts).
 */
import { maxPackedSize } from '../protocol/portable/pack.ts'
import { samplesAgree, FLAG_PPG_OVERFLOW as FLAG_PPG_LOST } from '../protocol/portable/frame.ts'
import type { Ad8232 } from './drivers/ad8232.ts'
import type { Max30102Decoding as Max30102 } from './drivers/max30102-decode.ts'
import { RANGE } from './config.ts'

export const FLAG_LEAD_OFF = 1
export const FLAG_FINGER_OFF = 2
export const FLAG_NOT_SYNCED = 4
export const FLAG_ECG_SATURATED = 8

/** A byte string of zigzag-varint deltas being built one sample at a time. */
export interface PackedLane {
  buf: Uint8Array
  len: number
  prev: number
}

function lane(n: number): PackedLane {
  return { buf: new Uint8Array(maxPackedSize(n)), len: 0, prev: 0 }
}

/**
 * Appends one sample: the zigzag varint of its difference from the previous one (the first
 * against 0), the encoding of protocol/portable/pack.ts packInto, written out here because
 * a call into packInto per sample costs twice the statements; test/firmware/framer.test.ts
 * checks the bytes against encodePayload. Samples are integers from the drivers' typed arrays.
 */
export function laneAdd(l: PackedLane, s: number): void {
  const d = s - l.prev
  let z = d >= 0 ? d * 2 : -d * 2 - 1
  l.prev = s
  const b = l.buf
  while (z >= 128) {
    b[l.len++] = (z % 128) + 128
    z = Math.floor(z / 128)
  }
  b[l.len++] = z
}

function laneReset(l: PackedLane): void {
  l.len = 0
  l.prev = 0
}

export interface SampleWindow {
  ecg: Uint16Array
  ecgN: number
  red: Uint32Array
  ir: Uint32Array
  ppgN: number
  /** Board time (ms, monotonic) of the first ECG sample. */
  t0: number
  flags: number
  /** ECG samples owed by late ticks within this window. */
  missed: number
  tempC: number
  inUse: boolean
  pEcg: PackedLane
  pRed: PackedLane
  pIr: PackedLane
}

/** Empties a window's samples, flags and counts for reuse from board time t0. */
function emptyWindow(w: SampleWindow, t0: number): void {
  w.ecgN = 0
  w.ppgN = 0
  resetLanes(w)
  w.flags = 0
  w.missed = 0
  w.t0 = t0
}

export interface SamplerOptions {
  ecgHz: number
  windowS: number
  ppgHz: number
  ppgPollMs: number
}

export interface SamplerStats {
  ticks: number
  missed: number
  maxLateMs: number
  sumLateMs: number
  overruns: number
  ppgLost: number
  /** Windows whose PPG was left out because it covered only part of the window. */
  ppgPartial: number
  /** Time spent inside sampling callbacks, ms (CPU cost of acquisition). */
  busyMs: number
}

function makeWindow(o: SamplerOptions): SampleWindow {
  // PPG: room for one FIFO's worth (32) beyond the nominal count, for timer phase.
  const ppgCap = Math.ceil(o.ppgHz * o.windowS) + 32
  return {
    ecg: new Uint16Array(Math.round(o.ecgHz * o.windowS)), ecgN: 0,
    red: new Uint32Array(ppgCap), ir: new Uint32Array(ppgCap), ppgN: 0,
    t0: 0, flags: 0, missed: 0, tempC: NaN, inUse: false,
    pEcg: lane(Math.round(o.ecgHz * o.windowS)), pRed: lane(ppgCap), pIr: lane(ppgCap),
  }
}

function resetLanes(w: SampleWindow): void {
  laneReset(w.pEcg)
  laneReset(w.pRed)
  laneReset(w.pIr)
}

export class Sampler {
  ecg: Ad8232 | null
  ppg: Max30102 | null
  o: SamplerOptions
  now: () => number
  onWindow: (w: SampleWindow) => void
  bufs: SampleWindow[]
  cur: number
  tStart: number
  produced: number
  ecgTimer: any
  ppgTimer: any
  stats: SamplerStats
  periodMs: number

  constructor(ecg: Ad8232 | null, ppg: Max30102 | null, o: SamplerOptions, now: () => number, onWindow: (w: SampleWindow) => void) {
    if (!(o.ecgHz >= RANGE.ecgHzMin && o.ecgHz <= RANGE.ecgHzMax)) throw new Error('sampler: ecgHz expected ' + RANGE.ecgHzMin + '..' + RANGE.ecgHzMax + ', got ' + o.ecgHz)
    if (!(o.windowS >= RANGE.windowSMin && o.windowS <= RANGE.windowSMax)) throw new Error('sampler: windowS expected ' + RANGE.windowSMin + '..' + RANGE.windowSMax + ', got ' + o.windowS)
    this.ecg = ecg
    this.ppg = ppg
    this.o = o
    this.now = now
    this.onWindow = onWindow
    this.bufs = [makeWindow(o), makeWindow(o)]
    this.cur = 0
    this.tStart = 0
    this.produced = 0
    this.ecgTimer = undefined
    this.ppgTimer = undefined
    this.periodMs = 1000 / o.ecgHz
    this.stats = { ticks: 0, missed: 0, maxLateMs: 0, sumLateMs: 0, overruns: 0, ppgLost: 0, ppgPartial: 0, busyMs: 0 }
  }

  start(): void {
    const self = this
    this.tStart = this.now()
    this.produced = 0
    this.bufs[this.cur].t0 = this.tStart
    this.tick() // sample 0 is due now
    this.ecgTimer = setInterval(function () { self.tick() }, this.periodMs)
    if (this.ppg) this.ppgTimer = setInterval(function () { self.pollPpg() }, this.o.ppgPollMs)
  }

  stop(): void {
    if (this.ecgTimer !== undefined) clearInterval(this.ecgTimer)
    if (this.ppgTimer !== undefined) clearInterval(this.ppgTimer)
    this.ecgTimer = undefined
    this.ppgTimer = undefined
  }

  tick(): void {
    const t = this.now()
    // Samples due by now, counting one whose slot is under half a period away as due: timer
    // callbacks fire a hair early or late, and that must not read as a missed sample.
    const due = Math.floor((t - this.tStart) / this.periodMs + 0.5) + 1
    let owed = due - this.produced
    if (owed <= 0) return
    if (owed > this.o.ecgHz * 2 || owed < 0) {
      // The board clock jumped (RTC set or skewed): restart the schedule rather than
      // inventing seconds of samples.
      this.tStart = t - this.produced * this.periodMs
      owed = 1
    }
    this.stats.ticks++
    // How late the first owed sample is relative to its ideal time.
    const late = t - (this.tStart + this.produced * this.periodMs)
    this.stats.sumLateMs += late
    if (late > this.stats.maxLateMs) this.stats.maxLateMs = late
    const v = this.ecg ? this.ecg.sample() : 0
    let w = this.bufs[this.cur]
    if (v === 0 || v === 4095) w.flags |= FLAG_ECG_SATURATED
    // Lead-off pins change slowly: look every 25 samples (10 times a second at 250 Hz).
    if (this.ecg && this.produced % 25 === 0 && this.ecg.leadOff()) w.flags |= FLAG_LEAD_OFF
    if (owed > 1) {
      w.missed += owed - 1
      this.stats.missed += owed - 1
    }
    while (owed > 0) {
      w.ecg[w.ecgN++] = v
      laneAdd(w.pEcg, v)
      this.produced++
      owed--
      if (w.ecgN === w.ecg.length) w = this.swap()
    }
    this.stats.busyMs += this.now() - t
  }

  pollPpg(): void {
    const ppg = this.ppg
    if (!ppg) return
    const t = this.now()
    const w = this.bufs[this.cur]
    const lost0 = ppg.lostSamples
    const n0 = w.ppgN
    try {
      w.ppgN += ppg.read(w.red, w.ir, w.ppgN, w.red.length)
    } catch (e) {
      // An I2C error costs this poll's samples, not the firmware.
    }
    for (let i = n0; i < w.ppgN; i++) {
      laneAdd(w.pRed, w.red[i])
      laneAdd(w.pIr, w.ir[i])
    }
    this.stats.ppgLost += ppg.lostSamples - lost0
    if (ppg.fingerOff) w.flags |= FLAG_FINGER_OFF
    // Die temperature every ~10 s: start a conversion, collect it on a later poll.
    try {
      if (ppg.tempPending) w.tempC = ppg.readTemp()
      else if (this.produced % (this.o.ecgHz * 10) < this.o.ecgHz * this.o.ppgPollMs / 1000) ppg.startTemp()
    } catch (e) {
      // A sensor gone from the bus: no temperature this time, the sampling goes on.
    }
    this.stats.busyMs += this.now() - t
  }

  /** Hands the full window on and continues in the other buffer. */
  swap(): SampleWindow {
    const full = this.bufs[this.cur]
    const next = this.bufs[1 - this.cur]
    const self = this
    const t0 = this.tStart + this.produced * this.periodMs
    if (next.inUse) {
      // The consumer is still busy with the previous window: this one is lost (counted);
      // reuse its own buffer rather than stall.
      this.stats.overruns++
      emptyWindow(full, t0)
      return full
    }
    if (full.ppgN > 0 && !samplesAgree(full.ecgN / this.o.ecgHz, full.ppgN / this.o.ppgHz)) {
      // The pulse oximeter stopped (or started) answering inside this window: a frame with
      // a fraction of a window of PPG is refused, so send the ECG alone and say PPG was lost.
      this.stats.ppgPartial++
      full.ppgN = 0
      laneReset(full.pRed)
      laneReset(full.pIr)
      full.flags |= FLAG_PPG_LOST
    }
    full.inUse = true
    this.cur = 1 - this.cur
    emptyWindow(next, t0)
    next.tempC = NaN
    setTimeout(function () { self.onWindow(full) }, 0)
    return next
  }

  /** The consumer is done with a window's buffers. */
  release(w: SampleWindow): void {
    w.inUse = false
  }
}
