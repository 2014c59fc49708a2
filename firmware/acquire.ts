/**
 * Acquisition with no JavaScript per sample (issue 24): one drain timer empties both sensor
 * FIFOs in bursts into double-buffered raw byte windows.
 *
 * - ECG: the MAX30003 driver copies its FIFO words (3 bytes each, as read) straight into the
 *   window's ECG bytes (`drain(into, offset)`), stopping at the window's end; the rest goes
 *   into the next window in the same callback.
 * - PPG: the MAX30102's waiting samples arrive in one I2C read (6 bytes each) and go into the
 *   window's PPG bytes with one typed-array `set` (two when a window boundary falls inside the
 *   burst: the burst is split in proportion to the ECG samples either side of the boundary,
 *   so both lanes of a window cover the same time).
 * - An overflow is a gap, never invented samples: the window records [lane, at, lost] (lost
 *   estimated from the time since the last drain, since the chips cannot count past their
 *   FIFO) and carries on. A stall longer than a whole window becomes whole windows not made,
 *   reported as dropped frames, and the timeline resumes after it.
 * - Lead-off and R-to-R come from the MAX30003's STATUS and RTOR, read when its INTB line says
 *   something is pending.
 *
 * The ECG is the window clock: a window is full after windowS x ecgHz samples (lost ones
 * included); the PPG is optional. Each window's t0 is the board time of its first sample:
 * the timeline starts at the ECG SYNCH and follows the sample count, re-anchored to the board
 * clock when they drift apart (the chip's crystal and the ESP32's differ by tens of ppm).
 *
 * A full window is handed on (setTimeout 0) and held by the consumer until `release`. If the
 * consumer still holds the other buffer when it is needed again (a callback that never ran:
 * the interpreter abandons callbacks on out-of-memory), the window is taken back, counted as a
 * dropped frame and a fault, and a late release of it is ignored (token).
 */
import { samplesAgree, FLAG_PPG_OVERFLOW } from '../protocol/portable/frame.ts'
import type { Max30003 } from './drivers/max30003.ts'
import { OVF_MAX, type Max30102 } from './drivers/max30102.ts'

export const LANE_ECG = 0
export const LANE_PPG = 1
/** Gap records and R-to-R intervals kept per window (more gaps merge into the last one). */
export const MAX_GAPS = 6
export const MAX_RR = 8
export const FLAG_LEAD_OFF = 1
export const FLAG_FINGER_OFF = 2
/** The MAX30102's OVF_COUNTER saturates (datasheet: at 0x1F; a reading this high may be a floor). */
const OVF_SATURATED = OVF_MAX
/** PPG samples the FIFO holds (datasheet: 32-sample FIFO). */
const PPG_FIFO = 32
/** Die temperature every 10 s. */
const TEMP_EVERY_MS = 10000
/** Without an INTB pin: read STATUS every this many drains. */
const STATUS_EVERY = 4
/** PPG LED control and finger-off: every this many bursts (about once a second), not every drain. */
const TRACK_EVERY = 8

export interface RawWindow {
  /** ECG bytes as read: 3 per sample. */
  ecg: Uint8Array
  ecgN: number
  ecgLost: number
  /** PPG bytes as read: 6 per sample (red 3, IR 3). */
  ppg: Uint8Array
  ppgN: number
  ppgLost: number
  /** PPG lane valid for this window (false: the sensor did not cover it). */
  ppgOk: boolean
  /** Flat [lane, at, lost] triples. */
  gaps: number[]
  /** R-to-R intervals, ms. */
  rr: number[]
  flags: number
  /** Board time (ms) of the first sample. */
  t0: number
  tempC: number
  inUse: boolean
  token: number
}

export interface AcqOptions {
  /** ECG samples/s (0 = no ECG lane). */
  ecgHz: number
  /** PPG FIFO samples/s (0 = no PPG lane). */
  ppgHz: number
  windowS: number
  drainMs: number
}

export interface AcqStats {
  drains: number
  /** Samples drained. */
  ecg: number
  ppg: number
  /** Samples lost to overflow (estimates). */
  ecgLost: number
  ppgLost: number
  gaps: number
  windows: number
  /** Whole windows not made during a stall longer than a window (dropped frames). */
  skipped: number
  /** Held windows taken back from a consumer that never released them (dropped frames, faults). */
  reclaimed: number
  /** Windows sent without their PPG lane (the sensor did not cover them). */
  ppgPartial: number
  ppgErrors: number
  ecgErrors: number
  rr: number
  leadOff: number
  /** Drain timer lateness, ms. */
  maxLateMs: number
  sumLateMs: number
}

function makeWindow(ecgN: number, ppgCap: number): RawWindow {
  return {
    ecg: new Uint8Array(3 * ecgN), ecgN: 0, ecgLost: 0,
    ppg: new Uint8Array(6 * ppgCap), ppgN: 0, ppgLost: 0, ppgOk: true,
    gaps: [], rr: [], flags: 0, t0: 0, tempC: NaN, inUse: false, token: 0,
  }
}

function clear(w: RawWindow, t0: number): void {
  w.ecgN = 0
  w.ecgLost = 0
  w.ppgN = 0
  w.ppgLost = 0
  w.ppgOk = true
  w.gaps.length = 0
  w.rr.length = 0
  w.flags = 0
  w.t0 = t0
  w.tempC = NaN
}

function addGap(w: RawWindow, lane: number, at: number, lost: number): void {
  const g = w.gaps
  const n = g.length
  if (n >= 3 && g[n - 3] === lane && (g[n - 2] === at || n >= 3 * MAX_GAPS)) {
    g[n - 1] += lost // same place, or no room left: one record says it
    return
  }
  g.push(lane, at, lost)
}

export class Acquirer {
  ecg: Max30003
  ppg: Max30102 | null
  /** INTB level (truthy = high, nothing pending); null = no pin, poll STATUS. */
  intb: (() => number | boolean) | null
  o: AcqOptions
  now: () => number
  onWindow: (w: RawWindow, token: number) => void
  bufs: RawWindow[]
  cur: number
  /** ECG items (samples + lost) per window; PPG samples a window has room for. */
  nom: number
  ppgCap: number
  /** ms per ECG sample; board time of sample 0; samples (and lost ones) before the current window. */
  period: number
  tStart: number
  idx: number
  timer: any
  nextDue: number
  lastPpgMs: number
  /** Drains since the last PPG burst, and drains between bursts. */
  sincePpg: number
  ppgEvery: number
  /** Board time of the next die temperature conversion; bursts since the last LED tracking. */
  tempAt: number
  sinceTrack: number
  /** The timeline waits for the first samples to anchor it (the SYNCH may repeat after the PLL locks). */
  anchor: boolean
  sinceStatus: number
  /**
   * ECG items lost but not yet placed; since the last PPG burst: ECG items added to the current
   * window, and (k1 >= 0) to the window that closed meanwhile, and whole windows skipped.
   */
  carry: number
  added: number
  k1: number
  skip: number
  full: RawWindow | null
  /** Callbacks to run right after the next drain (connects: the FIFOs have just been emptied). */
  after: (() => void)[]
  /** Frames lost here and faults recovered here, since the consumer last took them. */
  dropped: number
  faults: number
  stats: AcqStats

  constructor(ecg: Max30003, intb: (() => number | boolean) | null, ppg: Max30102 | null, o: AcqOptions, now: () => number, onWindow: (w: RawWindow, token: number) => void) {
    if (!(o.ecgHz > 0 && (!ppg || o.ppgHz > 0) && o.windowS >= 1 && o.windowS <= 5 && o.drainMs >= 5)) {
      throw new Error('acquisition: bad options ' + JSON.stringify(o))
    }
    this.ecg = ecg
    this.ppg = ppg
    this.intb = intb
    this.o = o
    this.now = now
    this.onWindow = onWindow
    this.nom = Math.round(o.ecgHz * o.windowS)
    // A window boundary splits bursts in proportion: a window may get a sample or two more
    // than nominal; one FIFO's worth of room covers any phase.
    this.ppgCap = ppg ? Math.round(o.ppgHz * o.windowS) + PPG_FIFO + 1 : 0
    // ECG: a whole FIFO of room beyond nominal (see close()).
    this.bufs = [makeWindow(this.nom + 32, this.ppgCap), makeWindow(this.nom + 32, this.ppgCap)]
    this.cur = 0
    this.period = 1000 / o.ecgHz
    this.tStart = 0
    this.idx = 0
    this.timer = undefined
    this.nextDue = 0
    this.lastPpgMs = 0
    this.tempAt = 0
    this.sinceTrack = 0
    this.anchor = true
    this.sinceStatus = 0
    this.carry = 0
    this.added = 0
    this.k1 = -1
    this.skip = 0
    this.full = null
    this.sincePpg = 0
    // PPG bursts at most 85 % of its FIFO's time apart (32 samples: 640 ms at 50 sps; at a
    // 180 ms drain, every third drain: 540 ms, leaving 100 ms for a late one, twice the
    // longest callback at the high cost).
    this.ppgEvery = ppg ? Math.max(1, Math.floor((PPG_FIFO * 850) / o.ppgHz / o.drainMs)) : 0
    this.after = []
    this.dropped = 0
    this.faults = 0
    this.stats = {
      drains: 0, ecg: 0, ppg: 0, ecgLost: 0, ppgLost: 0, gaps: 0, windows: 0, skipped: 0, reclaimed: 0,
      ppgPartial: 0, ppgErrors: 0, ecgErrors: 0, rr: 0, leadOff: 0, maxLateMs: 0, sumLateMs: 0,
    }
  }

  /** Starts the drain timer. Call after the sensors' init (the ECG's SYNCH is time zero). */
  start(): void {
    const self = this
    const t = this.now()
    this.tStart = this.ecg.lastMs
    this.idx = 0
    this.carry = 0
    this.added = 0
    this.k1 = -1
    this.skip = 0
    this.sincePpg = 0
    this.lastPpgMs = t
    this.tempAt = t + TEMP_EVERY_MS
    this.anchor = true
    this.cur = 0
    for (let i = 0; i < 2; i++) {
      const w = this.bufs[i]
      if (w.inUse) w.token++ // a consumer still holding it from before a restart lets go of nothing
      w.inUse = false
    }
    clear(this.bufs[0], this.tStart)
    this.nextDue = t + this.o.drainMs
    this.timer = setInterval(function () { self.drain() }, this.o.drainMs)
  }

  /** Stops the timer; windows still held by a consumer become stale (their tokens move on). */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    for (let i = 0; i < 2; i++) {
      this.bufs[i].token++
      this.bufs[i].inUse = false
    }
  }

  /** Samples drained so far (the watchdog's "the sensors produce"). */
  produced(): number {
    return this.stats.ecg + this.stats.ppg
  }

  /** The consumer is done with a window (ignored if the window was taken back meanwhile). */
  release(w: RawWindow, token: number): void {
    if (w.token === token) w.inUse = false
  }

  /**
   * One drain: the timer callback. This is the board's most frequent callback: the common path
   * is a few dozen statements and one SPI burst; the PPG burst comes every `ppgEvery` drains
   * (its FIFO holds 640 ms at 50 sps) and whenever a window closes; what happens once a window
   * or once in a while is in methods of its own.
   */
  drain(): void {
    const t = this.now()
    const st = this.stats
    st.drains++
    const dm = this.o.drainMs
    const late = t - this.nextDue
    if (late > 0) {
      st.sumLateMs += late
      if (late > st.maxLateMs) st.maxLateMs = late
    }
    // After a stall (or a jump of the board clock) the schedule starts again from here.
    this.nextDue = (late > 4 * dm || late < -dm ? t : this.nextDue) + dm
    let w = this.bufs[this.cur]
    try {
      const r = this.ecg.drain(w.ecg, 3 * w.ecgN, t)
      if (r.overflow) {
        this.carry += r.lostSamples
        st.ecgLost += r.lostSamples
      } else {
        w.ecgN += r.n
        this.added += r.n
        st.ecg += r.n
      }
    } catch (e) {
      st.ecgErrors++
    }
    if (this.carry > 0) this.placeCarry(w)
    if (w.ecgN + w.ecgLost >= this.nom) w = this.close(t)
    else if (this.anchor && w.ecgN > 0) this.reanchor(t)
    // Lead-off and R-to-R, when INTB says the MAX30003 has something (or every few drains
    // without the pin). Not in a drain that closes a window (the longest one): INTB stays low,
    // the next drain reads it.
    if (!this.full && (this.intb ? !this.intb() : ++this.sinceStatus >= STATUS_EVERY)) this.status(w)
    if (this.ppg && (this.full || ++this.sincePpg >= this.ppgEvery)) this.drainPpg(t, w)
    if (this.full) {
      this.handOn(this.full)
      this.full = null
    }
    if (this.after.length > 0) {
      for (let i = 0; i < this.after.length; i++) setTimeout(this.after[i], 0)
      this.after = []
    }
  }

  /** The MAX30102 burst, placed in the window(s) the ECG samples since the last burst went to. */
  drainPpg(t: number, w: RawWindow): void {
    const ppg = this.ppg!
    const st = this.stats
    this.sincePpg = 0
    let rx: Uint8Array | null = null
    let pn = 0
    let plost = 0
    try {
      rx = ppg.burst(PPG_FIFO)
      pn = ppg.n
      if (ppg.lost > 0) plost = this.ppgLoss(t, ppg.lost)
      this.lastPpgMs = t
      if (pn > 0 && ++this.sinceTrack >= TRACK_EVERY) {
        this.sinceTrack = 0
        ppg.track(rx!, pn)
        if (ppg.fingerOff) w.flags |= FLAG_FINGER_OFF
      }
      if (t >= this.tempAt && !this.full) this.temperature(t)
    } catch (e) {
      // A sensor gone from the bus costs this burst; the window is checked before it goes.
      st.ppgErrors++
    }
    st.ppg += pn
    if (pn + plost > 0) {
      if (this.k1 < 0 && plost === 0 && w.ppgN + pn <= this.ppgCap) {
        w.ppg.set(rx!, 6 * w.ppgN) // the common case: the whole burst into this window, one copy
        w.ppgN += pn
      } else this.placePpg(rx, pn, plost)
    }
    this.added = 0
    this.k1 = -1
    this.skip = 0
  }

  /** OVF_COUNTER saturates: past it, the time since the last read says how many came. */
  ppgLoss(t: number, ovf: number): number {
    let lost = ovf
    if (ovf >= OVF_SATURATED) {
      const est = Math.round(((t - this.lastPpgMs) * this.o.ppgHz) / 1000) - PPG_FIFO
      if (est > lost) lost = est
    }
    this.stats.ppgLost += lost
    return lost
  }

  /** Die temperature every TEMP_EVERY_MS: start a conversion, collect it at the next drain. */
  temperature(t: number): void {
    const ppg = this.ppg!
    if (ppg.tempPending) {
      const tc = ppg.readTemp()
      if (ppg.tempPending) return // still converting
      this.bufs[this.cur].tempC = tc
      this.tempAt = t + TEMP_EVERY_MS
    } else ppg.startTemp()
  }

  /**
   * The window is full: hand it on and continue in the other buffer. A window's ECG buffer has
   * room for a whole FIFO beyond its nominal length, so a drain never stops at the boundary:
   * the samples past it move to the next window with one `set`.
   */
  close(t: number): RawWindow {
    const old = this.bufs[this.cur]
    // Past the nominal length there are only samples: lost ones are placed up to the room left.
    const excess = old.ecgN + old.ecgLost - this.nom
    this.added -= excess
    const w = this.swap()
    if (excess > 0) {
      old.ecgN -= excess
      w.ecg.set(old.ecg.subarray(3 * old.ecgN, 3 * (old.ecgN + excess)), 0)
      w.ecgN = excess
      this.added = excess
    }
    if (this.carry > 0) this.placeCarry(w)
    this.reanchor(t)
    return w
  }

  /**
   * ECG samples lost in an overflow go into the window as a gap at its current end, as many as
   * it has room for; a loss of the window's room plus a whole window or more skips whole
   * windows (counted as dropped frames) and leaves the remainder (less than a window, so the
   * next window always gets samples too) for the next window.
   */
  placeCarry(w: RawWindow): void {
    if (this.carry <= 0) return
    const room = this.nom - w.ecgN - w.ecgLost
    if (this.carry >= room + this.nom) {
      const whole = Math.floor((this.carry - room) / this.nom)
      this.skip += whole
      this.carry -= whole * this.nom
    }
    const k = this.carry < room ? this.carry : room
    if (k > 0) {
      addGap(w, LANE_ECG, w.ecgN, k)
      this.stats.gaps++
      w.ecgLost += k
      this.added += k
      this.carry -= k
    }
  }

  /** Lead-off and R-to-R from STATUS and RTOR (the drain calls it when something is pending). */
  status(w: RawWindow): void {
    this.sinceStatus = 0
    try {
      const s = this.ecg.status()
      if (s.leadsOff) {
        w.flags |= FLAG_LEAD_OFF
        this.stats.leadOff++
      }
      if (s.rrMs > 0 && w.rr.length < MAX_RR) {
        w.rr.push(Math.round(s.rrMs))
        this.stats.rr++
      }
    } catch (e) {
      this.stats.ecgErrors++
    }
  }

  /**
   * Closes the current window and continues in the other buffer. The full one is handed on at
   * the end of the drain, after the PPG burst has been placed.
   */
  swap(): RawWindow {
    const full = this.bufs[this.cur]
    const next = this.bufs[1 - this.cur]
    if (next.inUse) {
      // The consumer never gave it back within a window: its callback did not run. Take it.
      next.token++
      next.inUse = false
      this.stats.reclaimed++
      this.dropped++
      this.faults++
    }
    if (this.k1 < 0) this.k1 = this.added
    this.added = 0
    this.idx += this.nom + this.skip * this.nom
    if (this.skip > 0) {
      this.stats.skipped += this.skip
      this.dropped += this.skip
    }
    full.inUse = true
    this.full = full
    clear(next, this.tStart + this.idx * this.period)
    this.cur = 1 - this.cur
    return next
  }

  /** The PPG of this drain (plost lost, then pn samples), split over the windows the ECG filled. */
  placePpg(rx: Uint8Array | null, pn: number, plost: number): void {
    const total = plost + pn
    if (total === 0) return
    if (this.k1 < 0) {
      this.assign(this.bufs[this.cur], 0, total, rx, plost)
      return
    }
    const k2 = this.added
    const e = this.k1 + this.skip * this.nom + k2
    const m1 = e > 0 ? Math.round((total * this.k1) / e) : 0
    const m2 = e > 0 ? Math.round((total * k2) / e) : total
    if (m1 > 0) this.assign(this.full!, 0, m1, rx, plost)
    if (m2 > 0) this.assign(this.bufs[this.cur], total - m2, total, rx, plost)
  }

  /**
   * Items [a, b) of a PPG burst (items 0..plost-1 lost, then the samples of rx) into a window:
   * the lost part as a gap at the window's current end, the samples with one `set`.
   */
  assign(w: RawWindow, a: number, b: number, rx: Uint8Array | null, plost: number): void {
    const lostEnd = b < plost ? b : plost
    if (lostEnd > a) {
      addGap(w, LANE_PPG, w.ppgN, lostEnd - a)
      this.stats.gaps++
      w.ppgLost += lostEnd - a
    }
    let s0 = (a > plost ? a : plost) - plost
    let s1 = b - plost
    if (s1 > s0 && rx) {
      if (w.ppgN + s1 - s0 > this.ppgCap) {
        // Never expected (the cap is a FIFO beyond nominal): what does not fit is a gap.
        const over = w.ppgN + s1 - s0 - this.ppgCap
        s1 -= over
        w.ppgLost += over
        this.stats.ppgLost += over
      }
      w.ppg.set(rx.subarray(6 * s0, 6 * s1), 6 * w.ppgN)
      w.ppgN += s1 - s0
    }
  }

  /**
   * Keeps the timeline on the board clock: after a drain that emptied the master FIFO, its
   * newest sample was taken within about a sample period before now. Further apart than
   * 40 ms plus two periods, the timeline moves to the clock (drift, or a stall whose loss the
   * chip could not report).
   */
  reanchor(t: number): void {
    this.anchor = false
    if (this.ecg.behind) return
    const w = this.bufs[this.cur]
    const e = t - (this.tStart + (this.idx + w.ecgN + w.ecgLost) * this.period)
    if (e > 40 + 2 * this.period || e < -40 - 2 * this.period) {
      this.tStart += e
      w.t0 += e
    }
  }

  /** Checks the lanes agree, then hands the window to the consumer in a callback of its own. */
  handOn(full: RawWindow): void {
    const self = this
    if (this.ppg) {
      const ppgItems = full.ppgN + full.ppgLost
      if (ppgItems === 0 || !samplesAgree((full.ecgN + full.ecgLost) / this.o.ecgHz, ppgItems / this.o.ppgHz)) {
        // The pulse oximeter stopped (or started) answering inside this window: a frame whose
        // lanes cover different times is refused, so this one goes without its PPG.
        full.ppgOk = false
        full.flags |= FLAG_PPG_OVERFLOW
        this.stats.ppgPartial++
      }
    }
    this.stats.windows++
    const token = full.token
    setTimeout(function () { self.onWindow(full, token) }, 0)
  }
}
