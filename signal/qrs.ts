/**
 * Streaming QRS detector of the Pan–Tompkins family (Pan & Tompkins 1985,
 * with the decision rules of Hamilton & Tompkins 1986), written for the
 * Espruino subset: one `push(sample)` per ADC sample, fixed-size typed-array
 * rings allocated in the constructor, no allocation per sample, and every
 * length and time constant derived from the sample rate, so the same code
 * serves the AD8232 board (250 Hz), the MAX30003 (128, 256, 512 sps) and
 * MIT-BIH records (360 Hz); samples may be of any integer scale.
 *
 * Chain per sample (integer-exact up to the squarer):
 *   1. low-pass   y = 2y1 - y2 + x - 2x[n-m] + x[n-2m]   (two moving sums, m = 30 ms)
 *   2. high-pass  y = lp[n-M/2] - sum(lp[n-M+1..n]) / M  (M = 160 ms: all-pass minus mean)
 *   3. derivative d = 2h + h[n-s] - h[n-3s] - 2h[n-4s]  (s = fs/200 samples)
 *   4. square     q = d * d
 *   5. integrate  i = sum(q[n-W+1..n])                (W = 150 ms)
 * then peak picking on i, adaptive signal/noise peak levels, T-wave
 * discrimination by slope, search-back for missed beats, and the R peak
 * refined on the raw signal. Beats are emitted with a delay of about
 * 0.3–0.5 s (a search-back beat later), each with its sample index.
 *
 * Nothing here is tuned per record: constants are physiological (refractory
 * 200 ms, T-wave window 360 ms, search-back after 1.66 RR) or from the papers.
 */
import { sortFirst } from './sort.ts'

/** Called once per detected beat: R-peak sample index, RR in samples (0 for the first beat). */
export type BeatCallback = (rIndex: number, rrSamples: number) => void

export interface QrsOptions {
  /** Sample rate in Hz (50..2000). */
  fs: number
  /** Called for every detected beat, in order of sample index. */
  onBeat?: BeatCallback
  /** Seconds of learning before thresholds are trusted (default 2). Candidates found meanwhile are classified afterwards, not lost. */
  learnSeconds?: number
}

/**
 * Decision constants, shared by every record and every rate (exported for the
 * bench and the docs; changing them changes the validated figures).
 */
export const QRS_TUNING = {
  /** Threshold = noise level + thresholdFraction * (signal level - noise level); 0.3125 as in Hamilton & Tompkins 1986. */
  thresholdFraction: 0.3125,
  /** A peak within tWaveSeconds of a beat whose slope is below tWaveSlope of the beat's is a T wave. */
  tWaveSeconds: 0.36,
  tWaveSlope: 0.5,
  refractorySeconds: 0.2,
  /** A candidate at least tWaveSlope as steep as the last beat (QRS-like, not a T wave) needs only this fraction of the threshold. */
  steepFraction: 0.9,
  /** Search back once this many mean RR intervals pass without a beat. */
  searchBackRr: 1.66,
  /** Search-back accepts a peak above this fraction of the threshold... */
  searchBackFraction: 0.5,
  /**
   * ...or above this lower fraction when its slope is QRS-like (at least searchBackSlope of the
   * last beat's): small aberrant or premature beats before a pause (a T wave's slope is about a
   * tenth of its QRS's).
   */
  searchBackLowFraction: 0.2,
  searchBackSlope: 0.3,
  /** A beat arriving this long after the last (under 50 bpm) first takes such a peak between them (see classify). */
  longRrSeconds: 1.2,
  /**
   * A rival closer than competeRr mean RR (and than tWaveSeconds) to an accepted beat competes
   * with it on rhythm. Beyond tWaveSeconds a rival above the threshold is a beat: premature
   * ventricular beats in bigeminy come 0.4-0.6 RR after a normal one and were lost to the rule.
   */
  competeRr: 0.7,
  /** ...and may replace it only if its slope is at least this fraction of the beat's. */
  competeSlope: 0.3,
  /** ...and competes only if its slope is below this fraction of the beat's; a comparable rival is an early (ectopic) beat. */
  competeMaxSlope: 0.9,
  /**
   * ...and never when it continues a fast run at the held beat's own pace (its interval from the held
   * beat within this fraction of the held beat's, under 0.6 s): beats of ventricular tachycardia
   * come closer together than the T-wave window and are not rivals of each other.
   */
  runTolerance: 0.3,
}

const MAX_LEARN_PEAKS = 32

/** Smallest power of two >= n. */
function pow2(n: number): number {
  let p = 1
  while (p < n) p *= 2
  return p
}
const LEVELS = 8
const RR_HISTORY = 8

export class QrsDetector {
  // Hot fields first: Espruino finds an object's properties by walking a list.
  /** Samples pushed since construction or the last reset. */
  n = 0
  /** Int32: any integer scale fits (12-bit ADC codes, MIT-BIH's 11 bits, 18-bit MAX30003 counts, microvolts). */
  private raw: Int32Array
  /** Band-passed signal, aligned with `raw` (same index), to locate the QRS and for the derivative. */
  private bp: Float32Array
  /** Mask of the raw/bp rings (power-of-two length, so `i & mask` wraps any index, negative too). */
  private rm: number
  private m: number
  private m2: number
  private lpY1 = 0
  private lpY2 = 0
  private hpRing: Float64Array // low-pass output history (>= M+1)
  private hm: number
  private M: number
  private Mh: number
  private invM: number
  private hpSum = 0
  private bpDelay: number
  private s: number
  private s3: number
  private s4: number
  private qRing: Float64Array // squared derivative (>= W+1)
  private qm: number
  private W: number
  private qSum = 0
  private sqMax = 0
  private prevI = 0
  private rising = false
  private candIdx = -1
  private candVal = 0
  /** Next sample index at which a timed decision (hold-back, learning, search-back) may be due. */
  private due = 0
  readonly fs: number
  private onBeat: BeatCallback | undefined
  /** Samples from raw input to the integrator output of the same event. */
  private delay: number
  private rawLen: number
  // levels and decisions
  /** Signal and noise levels: medians of the last 8 QRS and noise peaks (robust to one huge artefact). */
  private spk = 0
  private npk = 0
  /** Median of the last 8 sub-threshold peaks outside T-wave windows: the noise the signal-quality index judges (a T wave is not noise). */
  private opk = 0
  private oBuf: Float64Array
  private oPos = 0
  private sBuf: Float64Array
  private nBuf: Float64Array
  private sPos = 0
  private nPos = 0
  private sortTmp: Float64Array
  private lastQrs = -1
  /** Accepted beat not yet emitted (integrator index, R index, slope). */
  private pendIdx = -1
  private pendR = -1
  private pendSlope = 0
  private holdN: number
  private lastSlope = 0
  private rr: Int32Array
  private rrCount = 0
  private rrPos = 0
  private rrMean = 0
  // best sub-threshold candidate since the last beat, for search-back
  private sbVal = 0
  private sbIdx = -1
  private sbR = -1
  private sbSlope = 0
  // learning phase
  private learnN: number
  private learning = true
  private lVal: Float64Array
  private lIdx: Int32Array
  private lR: Int32Array
  private lSlope: Float64Array
  private lCount = 0
  /** Beats emitted since reset. */
  beats = 0
  /** Last detected R index and RR (samples). */
  lastR = -1
  lastRr = 0

  constructor(opts: QrsOptions) {
    if (!opts || typeof opts.fs !== 'number' || !(opts.fs >= 50 && opts.fs <= 2000)) {
      throw new Error('QrsDetector: expected fs between 50 and 2000 Hz, got ' + (opts ? opts.fs : opts))
    }
    const fs = opts.fs
    this.fs = fs
    this.onBeat = opts.onBeat
    this.m = Math.max(2, Math.round(fs * 0.03))
    this.m2 = 2 * this.m
    this.M = 2 * Math.max(4, Math.round(fs * 0.08))
    this.Mh = this.M / 2
    this.invM = 1 / this.M
    this.s = Math.max(1, Math.round(fs / 200))
    this.s3 = 3 * this.s
    this.s4 = 4 * this.s
    this.W = Math.max(4, Math.round(fs * 0.15))
    this.bpDelay = this.m - 1 + this.M / 2
    this.delay = this.bpDelay + 2 * this.s
    this.hpRing = new Float64Array(pow2(this.M + 1))
    this.hm = this.hpRing.length - 1
    this.qRing = new Float64Array(pow2(this.W + 1))
    this.qm = this.qRing.length - 1
    // raw history must reach back from a confirmed integrator peak to its QRS
    this.rawLen = pow2(this.delay + this.W + Math.round(fs * 0.45))
    this.rm = this.rawLen - 1
    this.raw = new Int32Array(this.rawLen)
    this.bp = new Float32Array(this.rawLen)
    this.rr = new Int32Array(RR_HISTORY)
    // a rival is classified at most W samples after its own integrator peak
    this.holdN = Math.round(QRS_TUNING.tWaveSeconds * fs) + this.W + 1
    this.sBuf = new Float64Array(LEVELS)
    this.nBuf = new Float64Array(LEVELS)
    this.oBuf = new Float64Array(LEVELS)
    this.sortTmp = new Float64Array(LEVELS)
    this.learnN = Math.round(fs * (opts.learnSeconds === undefined ? 2 : opts.learnSeconds))
    this.lVal = new Float64Array(MAX_LEARN_PEAKS)
    this.lIdx = new Int32Array(MAX_LEARN_PEAKS)
    this.lR = new Int32Array(MAX_LEARN_PEAKS)
    this.lSlope = new Float64Array(MAX_LEARN_PEAKS)
  }

  /** Forget everything (after lead-off or a gap): relearn thresholds from the next samples. */
  reset(): void {
    this.n = 0
    this.due = 0
    this.raw.fill(0)
    this.bp.fill(0)
    this.hpRing.fill(0)
    this.qRing.fill(0)
    this.lpY1 = this.lpY2 = this.hpSum = this.qSum = 0
    this.prevI = this.candVal = this.sqMax = 0
    this.candIdx = -1
    this.rising = false
    this.spk = this.npk = this.opk = 0
    this.oBuf.fill(0)
    this.oPos = 0
    this.sBuf.fill(0)
    this.nBuf.fill(0)
    this.sPos = this.nPos = 0
    this.lastQrs = -1
    this.lastSlope = 0
    this.pendIdx = this.pendR = -1
    this.pendSlope = 0
    this.rrCount = this.rrPos = this.rrMean = 0
    this.sbVal = 0
    this.sbIdx = this.sbR = -1
    this.sbSlope = 0
    this.learning = true
    this.lCount = 0
    this.beats = 0
    this.lastR = -1
    this.lastRr = 0
  }

  /** Median integrator height of recent beats (0 while learning). */
  get signalLevel(): number {
    return this.learning ? 0 : this.spk
  }

  /** Median integrator height of recent non-beat peaks. */
  get noiseLevel(): number {
    return this.npk
  }

  /** Median integrator height of recent peaks below the threshold and outside T-wave windows (noise, not T waves). */
  get artefactLevel(): number {
    return this.opk
  }

  /** True until the learning period has ended. */
  get isLearning(): boolean {
    return this.learning
  }

  /** Mean of the last 8 RR intervals in samples (0 before two beats). */
  get meanRr(): number {
    return this.rrMean
  }

  /** End of input: emits the beat still held back, if any. Returns the number of beats emitted. */
  finish(): number {
    return this.pendIdx >= 0 ? this.flush() : 0
  }

  /**
   * Feeds one raw sample: an integer of any scale within ±2^31 (12-bit ADC codes,
   * signed 18-bit counts, microvolts); the detector adapts to amplitude. Returns
   * the number of beats emitted by this call.
   */
  push(sample: number): number {
    const n = this.n
    const raw = this.raw
    const rm = this.rm
    // The low-pass below cancels x against the copies it reads back from the ring
    // m and 2m samples later, so it must use exactly what the ring kept (a
    // fraction or an out-of-range value would otherwise drift the recursion).
    raw[n & rm] = sample
    const x = raw[n & rm]
    if (n === 0) this.prime(x)
    // 1. low-pass: triangular FIR as a recursive integer filter (gain m*m), taps read from the raw ring
    const lp = 2 * this.lpY1 - this.lpY2 + x - 2 * raw[(n - this.m) & rm] + raw[(n - this.m2) & rm]
    this.lpY2 = this.lpY1
    this.lpY1 = lp
    // 2. high-pass: the sample M/2 back minus the moving mean over M
    const hr = this.hpRing
    const hm = this.hm
    this.hpSum += lp - hr[(n - this.M) & hm]
    hr[n & hm] = lp
    const hp = hr[(n - this.Mh) & hm] - this.hpSum * this.invM
    // the band-passed sample belongs to raw index k; the derivative reads its predecessors from the same ring
    const bp = this.bp
    const k = n - this.bpDelay
    bp[k & rm] = hp
    // 3. derivative over 4s samples, 4. square
    const d = 2 * hp + bp[(k - this.s) & rm] - bp[(k - this.s3) & rm] - 2 * bp[(k - this.s4) & rm]
    const q = d * d
    // 5. moving-window integration over W
    const qr = this.qRing
    const iv = (this.qSum += q - qr[(n - this.W) & this.qm])
    qr[n & this.qm] = q
    if (q > this.sqMax) this.sqMax = q
    this.n = n + 1
    let emitted = 0
    // peak picking: a candidate starts when the integrator rises and is
    // confirmed once it has fallen to half or W samples have passed
    if (iv > this.prevI) {
      if (!this.rising && this.candIdx < 0) {
        this.rising = true
        this.sqMax = q
      }
      if (this.rising && iv > this.candVal) {
        this.candVal = iv
        this.candIdx = n
      }
    }
    this.prevI = iv
    if (this.candIdx >= 0 && (iv < this.candVal * 0.5 || n - this.candIdx > this.W)) {
      emitted += this.peak(this.candVal, this.candIdx, this.refine(this.candIdx), Math.sqrt(this.sqMax))
      this.candVal = 0
      this.candIdx = -1
      this.rising = false
    }
    if (n >= this.due) emitted += this.timers(n)
    return emitted
  }

  /**
   * The time-driven decisions, run only when `due`: emit a held-back beat,
   * end the learning period, search back for a missed beat. Sets the next due time.
   */
  private timers(n: number): number {
    let emitted = 0
    if (this.pendIdx >= 0 && n - this.pendIdx > this.holdN) emitted += this.flush()
    if (this.learning) {
      if (n + 1 >= this.learnN) emitted += this.endLearning()
    } else if (this.lastQrs >= 0 && this.sbIdx >= 0 && this.rrMean > 0 && n - this.lastQrs > QRS_TUNING.searchBackRr * this.rrMean) {
      // search-back: the best sub-threshold peak since the last beat is a missed beat if it clears half the threshold
      const thr = this.threshold()
      if (this.sbVal > QRS_TUNING.searchBackFraction * thr || (this.sbVal > QRS_TUNING.searchBackLowFraction * thr && this.sbSlope > QRS_TUNING.searchBackSlope * this.lastSlope)) {
        this.spk = this.level(this.sBuf, this.sPos++ % LEVELS, this.sbVal)
        emitted += this.accept(this.sbIdx, this.sbR, this.sbSlope)
      } else {
        // Nothing passed even half the threshold for 1.66 RR: if the best peak still stands
        // above the noise, the beats may have shrunk (a lead moved, an amplitude step): it
        // enters the signal level, which then decays over a few missed intervals instead of
        // staying locked on the old amplitude.
        if (this.sbVal > this.npk) this.spk = this.level(this.sBuf, this.sPos++ % LEVELS, this.sbVal)
        this.sbIdx = -1
        this.sbVal = 0
      }
    }
    // next due: the earliest sample at which one of the conditions above can become true
    let due = Infinity
    if (this.pendIdx >= 0) due = this.pendIdx + this.holdN + 1
    if (this.learning) {
      if (this.learnN - 1 < due) due = this.learnN - 1
    } else if (this.lastQrs >= 0 && this.sbIdx >= 0 && this.rrMean > 0) {
      const sb = Math.floor(this.lastQrs + QRS_TUNING.searchBackRr * this.rrMean) + 1
      if (sb < due) due = sb
    }
    this.due = due > n ? due : n + 1
    return emitted
  }

  /** Start the filters as if `x` had been present forever, so the first samples raise no step transient. */
  private prime(x: number): void {
    this.raw.fill(x)
    const lp = this.m * this.m * x
    this.lpY1 = this.lpY2 = lp
    this.hpRing.fill(lp)
    this.hpSum = lp * this.M
    this.bp.fill(0)
    this.qRing.fill(0)
    this.qSum = 0
  }

  private threshold(): number {
    return this.npk + QRS_TUNING.thresholdFraction * (this.spk - this.npk)
  }

  /** Stores `v` at `pos` of a level buffer and returns the buffer's median (insertion sort of 8: no allocation). */
  private level(buf: Float64Array, pos: number, v: number): number {
    buf[pos] = v
    const t = this.sortTmp
    sortFirst(buf, LEVELS, t)
    return (t[LEVELS / 2 - 1] + t[LEVELS / 2]) * 0.5
  }

  /**
   * R location for an integrator peak at index t: the QRS is first located as
   * the largest band-passed deflection in the window the integrator covered,
   * then refined to the extremum of the raw signal with the same polarity
   * within 40 ms of it (baseline wander is negligible over that span).
   */
  private refine(t: number): number {
    const len = this.rawLen
    const rm = this.rm
    const fs = this.fs
    let hi = t - this.delay - Math.round(this.W * 0.1)
    let lo = t - this.delay - Math.round(this.W * 0.8)
    const newest = this.n - 1 - this.bpDelay // latest band-passed sample stored
    if (hi > newest) hi = newest
    if (lo < 0) lo = 0
    if (lo <= this.n - len) lo = this.n - len + 1
    if (hi <= lo) return t - this.delay
    let best = lo
    let bestV = -1
    let sign = 1
    for (let i = lo; i <= hi; i++) {
      const b = this.bp[i & rm]
      const v = b < 0 ? -b : b
      if (v > bestV) {
        bestV = v
        best = i
        sign = b < 0 ? -1 : 1
      }
    }
    const w = Math.round(fs * 0.04)
    let a = best - w
    let z = best + w
    if (a <= this.n - len) a = this.n - len + 1
    if (a < 0) a = 0
    if (z > this.n - 1) z = this.n - 1
    let r = best
    let rv = -Infinity
    for (let i = a; i <= z; i++) {
      const v = sign * this.raw[i & rm]
      if (v > rv) {
        rv = v
        r = i
      }
    }
    return r
  }

  private endLearning(): number {
    this.learning = false
    let max = 0
    let sum = 0
    for (let i = 0; i < this.lCount; i++) {
      sum += this.lVal[i]
      if (this.lVal[i] > max) max = this.lVal[i]
    }
    // Pan–Tompkins initialisation: signal level from the largest peak, noise from the mean
    this.spk = max * 0.5
    this.npk = this.lCount > 0 ? (sum / this.lCount) * 0.25 : 0
    this.sBuf.fill(this.spk)
    this.nBuf.fill(this.npk)
    this.opk = this.npk
    this.oBuf.fill(this.npk)
    let emitted = 0
    const count = this.lCount
    this.lCount = 0
    for (let i = 0; i < count; i++) emitted += this.classify(this.lVal[i], this.lIdx[i], this.lR[i], this.lSlope[i])
    return emitted
  }

  private peak(val: number, idx: number, r: number, slope: number): number {
    if (this.learning) {
      if (this.lCount < MAX_LEARN_PEAKS) {
        this.lVal[this.lCount] = val
        this.lIdx[this.lCount] = idx
        this.lR[this.lCount] = r
        this.lSlope[this.lCount] = slope
        this.lCount++
      }
      return 0
    }
    return this.classify(val, idx, r, slope)
  }

  private classify(val: number, idx: number, r: number, slope: number): number {
    this.due = 0 // levels, pending beat or search-back candidate may change: recompute the timers
    const fs = this.fs
    const since = this.lastQrs >= 0 ? idx - this.lastQrs : Infinity
    if (since < QRS_TUNING.refractorySeconds * fs) return 0 // refractory
    const thr = this.threshold()
    if (val > thr || (val > QRS_TUNING.steepFraction * thr && slope > QRS_TUNING.tWaveSlope * this.lastSlope)) {
      // A rival arriving early in the rhythm, while a beat is still held back,
      // and shallower than it: keep whichever continues the rhythm better (an
      // artefact just before a beat, a T wave or artefact after it). A steeper
      // rival is a beat in its own right (an early ectopic beat).
      const pendRr = this.pendR - this.lastR
      const run = pendRr > 0 && pendRr < 0.6 * fs && Math.abs(r - this.pendR - pendRr) < QRS_TUNING.runTolerance * pendRr
      if (this.pendIdx >= 0 && this.lastR >= 0 && this.rrMean > 0 && !run && since < QRS_TUNING.competeRr * this.rrMean && since < QRS_TUNING.tWaveSeconds * fs && slope < QRS_TUNING.competeMaxSlope * this.pendSlope) {
        const dNew = Math.abs(r - this.lastR - this.rrMean)
        const dOld = Math.abs(this.pendR - this.lastR - this.rrMean)
        if (dNew < dOld && slope > QRS_TUNING.competeSlope * this.pendSlope) {
          this.pendIdx = idx
          this.pendR = r
          this.pendSlope = slope
          this.lastQrs = idx
          this.lastSlope = slope
        }
        this.npk = this.level(this.nBuf, this.nPos++ % LEVELS, val)
        return 0
      }
      // T wave: soon after a beat and much shallower than it; or, before there is a rhythm to
      // compete on (the learning period's first beats), merely shallower than the held beat: a
      // tall T wave's slope comes close to its QRS's, and the earlier of the two is the QRS
      const early = this.rrMean === 0 && this.pendIdx >= 0 && slope < QRS_TUNING.competeMaxSlope * this.pendSlope
      if (since < QRS_TUNING.tWaveSeconds * fs && (early || slope < QRS_TUNING.tWaveSlope * this.lastSlope)) {
        this.npk = this.level(this.nBuf, this.nPos++ % LEVELS, val)
        return 0
      }
      // A long interval with a QRS-like peak inside that the threshold missed is a small beat
      // between large ones (EC13 3b: narrow 0.25 mV normal beats between 0.6-0.85 mV PVCs): found
      // back on the next beat's arrival, because search-back by time never comes while the large
      // beats are regular themselves.
      let emitted = 0
      const tw = QRS_TUNING.tWaveSeconds * fs
      if (this.sbIdx >= 0 && since > QRS_TUNING.longRrSeconds * fs && this.sbIdx - (idx - since) > tw && idx - this.sbIdx > QRS_TUNING.refractorySeconds * fs &&
        this.sbVal > QRS_TUNING.searchBackLowFraction * thr && this.sbSlope > QRS_TUNING.searchBackSlope * this.lastSlope) {
        this.spk = this.level(this.sBuf, this.sPos++ % LEVELS, this.sbVal)
        emitted += this.accept(this.sbIdx, this.sbR, this.sbSlope)
      }
      this.spk = this.level(this.sBuf, this.sPos++ % LEVELS, val)
      return emitted + this.accept(idx, r, slope)
    }
    this.npk = this.level(this.nBuf, this.nPos++ % LEVELS, val)
    // a peak inside a beat's T-wave window is most likely its T wave, which says nothing of noise
    if (since >= QRS_TUNING.tWaveSeconds * fs) this.opk = this.level(this.oBuf, this.oPos++ % LEVELS, val)
    if (val > this.sbVal && since > QRS_TUNING.tWaveSeconds * fs) {
      this.sbVal = val
      this.sbIdx = idx
      this.sbR = r
      this.sbSlope = slope
    }
    return 0
  }

  /** A beat is held back until no rival can appear within 360 ms of it, then emitted. */
  private accept(idx: number, r: number, slope: number): number {
    const emitted = this.pendIdx >= 0 ? this.flush() : 0
    this.pendIdx = idx
    this.pendR = r
    this.pendSlope = slope
    this.lastQrs = idx
    this.lastSlope = slope
    this.sbVal = 0
    this.sbIdx = -1
    return emitted
  }

  private flush(): number {
    const r = this.pendR
    this.pendIdx = -1
    const rr = this.lastR >= 0 ? r - this.lastR : 0
    if (rr > 0) {
      this.rr[this.rrPos] = rr
      this.rrPos = (this.rrPos + 1) % RR_HISTORY
      if (this.rrCount < RR_HISTORY) this.rrCount++
      let sum = 0
      for (let i = 0; i < this.rrCount; i++) sum += this.rr[i]
      this.rrMean = sum / this.rrCount
    }
    this.lastR = r
    this.lastRr = rr
    this.beats++
    if (this.onBeat) this.onBeat(r, rr)
    return 1
  }
}
