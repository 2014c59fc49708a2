/**
 * The pulse peaks of a PPG (signal/ppg.ts), portable: a hysteresis peak/valley
 * detector on the inverted band-passed IR (a peak counts once the signal has
 * fallen 40 % of the pulse amplitude below it, which the dicrotic wave does
 * not), the red AC at the same instants (a per-beat red/IR ratio), and the
 * intervals, regularity and ratios of the peaks inside a window. Fixed memory:
 * the last 64 peaks.
 */
import { sortFirst } from './sort.ts'

const MAX_PEAKS = 64

export interface PulseStats {
  /** Pulse intervals in the window. */
  n: number
  /** Share of the intervals within 20 % of their median (halved when they do not tile the window). */
  regular: number
  /** Mean of those intervals, samples. */
  meanIv: number
  /** Median per-beat red/IR amplitude ratio (before DC normalisation), and the relative spread of those ratios. */
  beatRatio: number
  beatSpread: number
}

export class PulsePeaks {
  /** The pulse amplitude (peak to valley of -AC_ir) the hysteresis follows; 0 until bootstrapped. */
  amp = 0
  private up = true
  private ext = 0
  private extIdx = 0
  private lastValley = 0
  private extRed = 0
  private lastValleyRed = 0
  private lastPeak = -1
  private peaks: Int32Array
  private peakIv: Int32Array
  private sortBuf: Int32Array
  /** Per-beat red/IR AC amplitude ratio (before DC normalisation), and a buffer to sort it. */
  private peakRatio: Float64Array
  private ratioBuf: Float64Array
  private peakPos = 0
  private peakCount = 0

  /** `settle`: the sample the detector starts at (the filters' transient before it). */
  constructor(
    readonly fs: number,
    readonly settle: number,
  ) {
    this.peaks = new Int32Array(MAX_PEAKS)
    this.peakIv = new Int32Array(MAX_PEAKS)
    this.sortBuf = new Int32Array(MAX_PEAKS)
    this.peakRatio = new Float64Array(MAX_PEAKS)
    this.ratioBuf = new Float64Array(MAX_PEAKS)
  }

  reset(): void {
    this.up = true
    this.ext = this.extIdx = this.lastValley = this.amp = this.extRed = this.lastValleyRed = 0
    this.lastPeak = -1
    this.peakPos = this.peakCount = 0
  }

  /** One sample of -AC_ir (v) and -AC_red (vr), sample index n (from settle on). */
  push(v: number, vr: number, n: number): void {
    const fs = this.fs
    if (this.amp === 0) {
      // bootstrap the amplitude from the half second after settling
      if (n - this.settle < fs / 2) {
        if (v > this.ext) this.ext = v
        if (-v > this.lastValley) this.lastValley = -v
        return
      }
      this.amp = this.ext + this.lastValley
      this.ext = v
      this.extRed = vr
      this.extIdx = n
      this.up = true
      this.lastValley = v
      this.lastValleyRed = vr
      if (!(this.amp > 0)) this.amp = 1e-9
    }
    const h = 0.4 * this.amp
    if (this.up) {
      if (v > this.ext) {
        this.ext = v
        this.extRed = vr
        this.extIdx = n
      } else if (v < this.ext - h) {
        this.peak(this.extIdx, this.ext - this.lastValley, this.extRed - this.lastValleyRed)
        this.up = false
        this.ext = v
        this.extRed = vr
        this.extIdx = n
      }
    } else {
      if (v < this.ext) {
        this.ext = v
        this.extRed = vr
        this.extIdx = n
      } else if (v > this.ext + h) {
        this.lastValley = this.ext
        this.lastValleyRed = this.extRed
        this.up = true
        this.ext = v
        this.extRed = vr
        this.extIdx = n
      }
    }
    // no pulse for 3 s: the amplitude estimate is stale (smaller pulse, or none)
    if (this.lastPeak >= 0 && n - this.lastPeak > 3 * fs && n - this.extIdx > fs) {
      this.amp *= 0.5
      this.lastPeak = n - 2 * fs
    }
  }

  private peak(idx: number, amplitude: number, redAmplitude: number): void {
    const fs = this.fs
    if (this.lastPeak >= 0 && idx - this.lastPeak < 0.27 * fs) return // faster than 220 bpm: not a new pulse
    // the amplitude estimate follows the pulse, limited per beat so one artefact cannot hijack it
    let a = amplitude
    if (a > 2 * this.amp) a = 2 * this.amp
    if (a < 0.5 * this.amp) a = 0.5 * this.amp
    this.amp = 0.75 * this.amp + 0.25 * a
    const iv = this.lastPeak >= 0 ? idx - this.lastPeak : 0
    this.lastPeak = idx
    if (iv > 0 && iv <= 2.5 * fs) {
      this.peaks[this.peakPos] = idx
      this.peakIv[this.peakPos] = iv
      this.peakRatio[this.peakPos] = amplitude > 0 ? redAmplitude / amplitude : 0
      this.peakPos = (this.peakPos + 1) % MAX_PEAKS
      if (this.peakCount < MAX_PEAKS) this.peakCount++
    }
  }

  /**
   * The pulse intervals whose peak lies in the window: how many, the share
   * within 20 % of their median (halved when they do not tile the window: many
   * short ones mean double counting, few mean misses), and the mean of those.
   */
  stats(n: number, nS: number): PulseStats {
    const from = n - nS
    let m = 0
    for (let k = 0; k < this.peakCount; k++) {
      const j = (this.peakPos + MAX_PEAKS - 1 - k) % MAX_PEAKS
      if (this.peaks[j] < from) break
      this.ratioBuf[m] = this.peakRatio[j]
      this.sortBuf[m++] = this.peakIv[j]
    }
    if (m === 0) return { n: 0, regular: 0, meanIv: 0, beatRatio: 0, beatSpread: Infinity }
    const rb = this.ratioBuf
    sortFirst(rb, m, rb)
    const beatRatio = m % 2 === 1 ? rb[m >> 1] : (rb[m / 2 - 1] + rb[m / 2]) / 2
    // the middle two thirds from six beats on: one bad beat must not decide
    const lo = Math.floor(m / 6)
    const beatSpread = m >= 2 && beatRatio > 0 ? (rb[m - 1 - lo] - rb[lo]) / beatRatio : m === 1 ? 0 : Infinity
    sortFirst(this.sortBuf, m, this.sortBuf)
    const med = m % 2 === 1 ? this.sortBuf[m >> 1] : (this.sortBuf[m / 2 - 1] + this.sortBuf[m / 2]) / 2
    let ok = 0, sum = 0, okSum = 0
    for (let i = 0; i < m; i++) {
      const d = this.sortBuf[i] - med
      if (d < 0.2 * med && d > -0.2 * med) {
        ok++
        okSum += this.sortBuf[i]
      }
      sum += this.sortBuf[i]
    }
    let regular = ok / m
    // Intervals should tile the part of the window the detector saw (it starts after settling).
    const seen = Math.min(nS, n - this.settle - this.fs / 2)
    const cover = sum / seen
    // One interval alone tiles nothing in a short window: it must only be plausible.
    if (m >= 2 && (cover < 0.6 || cover > 1.1)) regular = regular * 0.5
    if (m === 1 && sum > seen) regular = 0
    return { n: m, regular: regular, meanIv: okSum / ok, beatRatio: beatRatio, beatSpread: beatSpread }
  }
}
