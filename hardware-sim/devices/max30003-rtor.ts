/**
 * The MAX30003's digital post-processing that the model reproduces in
 * simplified form: the 0.5 Hz digital high-pass (DHPF) and the R-to-R
 * detector that drives RRINT and the RTOR register.
 *
 * The datasheet describes the R-to-R block only through its parameters
 * (CNFG_RTOR1/2): an averaging window WNDW, a peak average weighted by PAVG,
 * a threshold PTSF/16 of that average, and a hold-off of
 * max(HOFF × tRTOR, RHSF/8 × interval average weighted by RAVG). The
 * detector below is a small Pan-Tompkins-style stand-in built on exactly
 * those parameters, not Maxim's algorithm: squared first difference →
 * moving average over the window → a peak is the maximum of each excursion
 * above the threshold, accepted outside the hold-off. The automatic gain
 * (RTOR GAIN) only serves fixed-point range on the chip and is not modelled.
 * For its first second after (re)start it only learns the peak level; after
 * 2 s without a beat it halves the peak average so it recovers from artefacts.
 */

/** First-order IIR high-pass, y[n] = a·(y[n−1] + x[n] − x[n−1]); starts settled on its first input (SYNCH resets it to midscale). */
export class HighPass {
  private a = 0
  private prevX = NaN
  private prevY = 0

  reset(): void {
    this.prevX = NaN
    this.prevY = 0
  }

  step(x: number, cutoffHz: number, sps: number): number {
    const rc = 1 / (2 * Math.PI * cutoffHz)
    this.a = rc / (rc + 1 / sps)
    if (Number.isNaN(this.prevX)) this.prevX = x
    this.prevY = this.a * (this.prevY + x - this.prevX)
    this.prevX = x
    return this.prevY
  }
}

export interface RtorSettings {
  periodMs: number
  tRtorMs: number
  /** CNFG_RTOR1 and CNFG_RTOR2 raw values. */
  rtor1: number
  rtor2: number
}

const LEARN_MS = 1000
const DECAY_MS = 2000

export class RtoRDetector {
  private win: number[] = []
  private winSum = 0
  private prevX = NaN
  private startMs = 0
  private learnMax = 0
  private peakAvg = 0
  private intervalAvg = 0
  private lastBeatMs = 0
  private lastDecayMs = 0
  private inPeak = false
  private peakVal = 0
  private peakMs = 0

  reset(nowMs: number): void {
    this.win = []
    this.winSum = 0
    this.prevX = NaN
    this.startMs = this.lastBeatMs = this.lastDecayMs = nowMs
    this.learnMax = this.peakAvg = this.intervalAvg = 0
    this.inPeak = false
  }

  /** Feeds one output sample (ADC counts) taken at tMs; returns the R-to-R interval in ms when this sample completes a beat, else NaN. */
  step(x: number, tMs: number, s: RtorSettings): number {
    const d = Number.isNaN(this.prevX) ? 0 : x - this.prevX
    this.prevX = x
    const widthMs = (6 + 2 * Math.min(11, (s.rtor1 >>> 20) & 0xf)) * s.tRtorMs // WNDW code 0..11 → 6..28 tRTOR
    const n = Math.max(1, Math.round(widthMs / s.periodMs))
    this.win.push(d * d)
    this.winSum += d * d
    while (this.win.length > n) this.winSum -= this.win.shift() as number
    const m = this.winSum / this.win.length
    if (tMs - this.startMs < LEARN_MS || this.peakAvg === 0) {
      this.learnMax = Math.max(this.learnMax, m)
      if (tMs - this.startMs >= LEARN_MS) this.peakAvg = this.learnMax
      return NaN
    }
    if (tMs - Math.max(this.lastBeatMs, this.lastDecayMs) > DECAY_MS) {
      this.peakAvg /= 2
      this.lastDecayMs = tMs
    }
    const threshold = (this.peakAvg * (((s.rtor1 >>> 8) & 0xf) + 1)) / 16
    if (m > threshold) {
      if (!this.inPeak || m > this.peakVal) {
        this.peakVal = m
        this.peakMs = tMs
      }
      this.inPeak = true
      return NaN
    }
    if (!this.inPeak) return NaN
    this.inPeak = false
    const holdOffMs = Math.max(((s.rtor2 >>> 16) & 0x3f) * s.tRtorMs, (((s.rtor2 >>> 8) & 7) / 8) * this.intervalAvg)
    const interval = this.peakMs - this.lastBeatMs
    if (interval < holdOffMs) return NaN
    const pavg = 2 << ((s.rtor1 >>> 12) & 3) // 2, 4, 8, 16
    const ravg = 2 << ((s.rtor2 >>> 12) & 3)
    this.peakAvg = (this.peakVal + (pavg - 1) * this.peakAvg) / pavg
    this.intervalAvg = this.intervalAvg === 0 ? interval : (interval + (ravg - 1) * this.intervalAvg) / ravg
    this.lastBeatMs = this.peakMs
    return interval
  }
}
