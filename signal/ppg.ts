/**
 * Pulse oximetry from red and IR photoplethysmograms (MAX30102 or any
 * two-wavelength sensor), portable to Espruino: one `push(red, ir)` per
 * sample, fixed memory, no allocation per sample, results once per second
 * over a sliding window (default 8 s).
 *
 * - AC: each channel band-passed 0.5–5 Hz (two 2nd-order Butterworth high-pass
 *   biquads, so 0.25 Hz respiration is ~24 dB down, then a low-pass biquad;
 *   coefficients from fs); DC: the window mean.
 * - Ratio of ratios R = (AC_red/DC_red)/(AC_ir/DC_ir) with AC as RMS over the
 *   window; the red/IR correlation of the normalised AC signals is the main
 *   quality measure (motion and noise lower it; a clean pulse gives ~1).
 * - SpO2 = a + b·R + c·R² (the calibration curve, configurable per sensor;
 *   `DEFAULT_CALIBRATION` was fitted to the simulator's Beer–Lambert model
 *   and is NOT a calibration of any real sensor).
 * - Pulse rate from the IR pulse peaks (hysteresis peak detector on the
 *   inverted band-passed IR, immune to the dicrotic wave), median interval
 *   over the window.
 * - Perfusion index = 100 · (peak-to-peak AC_ir)/DC_ir in percent.
 * When quality is too low there is no number: the fields are left out of the
 * reading (undefined), never a sentinel like -999.
 *
 * The window is kept as per-second block sums (not sample rings), so memory
 * does not grow with the sample rate.
 */
import { sortFirst } from './sort.ts'

/** SpO2 (%) = a + b·R + c·R². */
export interface SpO2Calibration {
  a: number
  b: number
  c: number
}

/** Least-squares fit to the simulator's physics (hardware-sim/signals/ppg.ts, modelRatio) over 60–100 %; max error 0.05 % over 70–100 %. */
export const DEFAULT_CALIBRATION: SpO2Calibration = { a: 110.7, b: -28.55, c: 2.16 }

export interface PpgOptions {
  /** Sample rate of each channel, Hz (25..1000). */
  fs: number
  /** Sliding window in seconds (4..30, default 8). */
  windowSeconds?: number
  calibration?: SpO2Calibration
  /** Minimum IR DC (same units as the samples) to consider a finger present (default 1). */
  minDc?: number
  /** Perfusion index bounds in percent (default 0.05..20). */
  minPerfusion?: number
  maxPerfusion?: number
  /** Minimum red/IR correlation of the AC signals to report SpO2 (default 0.99) and pulse rate (default 0.9). */
  minCorrelation?: number
  minCorrelationPulse?: number
  /** Largest relative spread of per-beat ratios in a window to report SpO2 (default 0.08). */
  maxBeatSpread?: number
  /** Largest relative spread of per-beat IR pulse heights in a window to report SpO2 (default 0.2; pulse rate tolerates twice that). */
  maxAmplitudeSpread?: number
  /** Largest relative disagreement of the per-beat median ratio and the RMS ratio (default 0.1). */
  maxDisagreement?: number
  /** Called once per second with the latest reading. */
  onReading?: (r: PpgReading) => void
}

export interface PpgReading {
  /** Samples since the monitor (re)started: end of the window. */
  at: number
  fingerOn: boolean
  /** Overall quality 0..100. */
  quality: number
  /** Present only when trustworthy. */
  spo2?: number
  pulseRate?: number
  perfusionIndex?: number
  ratio?: number
  /** Red/IR correlation over the window (diagnostic). */
  correlation?: number
  /** Relative spread of the per-beat ratios in the window (diagnostic). */
  beatSpread?: number
  /** Relative spread of the per-beat IR pulse heights (diagnostic). */
  ampSpread?: number
}

// block sum layout
const B_N = 0
const B_RED = 1
const B_IR = 2
const B_RR = 3
const B_II = 4
const B_RI = 5
const B_FIELDS = 6
const MAX_PEAKS = 64

function biquad(kind: number, f0: number, fs: number): Float64Array {
  // RBJ cookbook, Q = 1/sqrt(2) (Butterworth); kind 0 = low-pass, 1 = high-pass
  const w0 = (2 * Math.PI * f0) / fs
  const cs = Math.cos(w0)
  const alpha = Math.sin(w0) / (2 * 0.7071067811865476)
  const a0 = 1 + alpha
  const c = new Float64Array(5)
  if (kind === 0) {
    c[0] = (1 - cs) / 2 / a0
    c[1] = (1 - cs) / a0
  } else {
    c[0] = (1 + cs) / 2 / a0
    c[1] = -(1 + cs) / a0
  }
  c[2] = c[0]
  c[3] = (-2 * cs) / a0
  c[4] = (1 - alpha) / a0
  return c
}

export class PpgMonitor {
  readonly fs: number
  /** Samples pushed since the last reset. */
  n = 0
  /** Automatic restarts after a jump in the IR level (finger on/off). */
  restarts = 0
  private dcSlow = 0
  private dcAlpha: number
  private win: number
  private cal: SpO2Calibration
  private minDc: number
  private minPi: number
  private maxPi: number
  private minCorr: number
  private minCorrPulse: number
  private maxSpread: number
  private maxAmpSpread: number
  private maxDisagree: number
  private onReading: ((r: PpgReading) => void) | undefined
  // filters: coefficients and per-channel state (direct form II transposed: 2 per biquad)
  private hp: Float64Array
  private lp: Float64Array
  private st: Float64Array // [redHp1a, redHp1b, redLp a, b, irHp1 a, b, irLp a, b, redHp2 a, b, irHp2 a, b]
  private blocks: Float64Array
  private blockLen: number
  private blockPos = 0
  private blockFill = 0
  private settle: number
  // pulse peak detector on -AC_ir
  private up = true
  private ext = 0
  private extIdx = 0
  private lastValley = 0
  private extRed = 0
  private lastValleyRed = 0
  /** Per-beat red/IR AC amplitude ratio (before DC normalisation). */
  private peakRatio: Float64Array
  private ratioBuf: Float64Array
  /** Per-beat IR AC amplitude, and a scratch buffer to sort it. */
  private peakAmp: Float64Array
  private ampBuf: Float64Array
  private amp = 0
  private lastPeak = -1
  private peaks: Int32Array
  private peakIv: Int32Array
  private peakPos = 0
  private peakCount = 0
  private sortBuf: Int32Array
  private last: PpgReading

  constructor(opts: PpgOptions) {
    if (!opts || typeof opts.fs !== 'number' || !(opts.fs >= 25 && opts.fs <= 1000)) {
      throw new Error('PpgMonitor: expected fs between 25 and 1000 Hz, got ' + (opts ? opts.fs : opts))
    }
    const w = opts.windowSeconds === undefined ? 8 : opts.windowSeconds
    if (!(w >= 4 && w <= 30)) throw new Error('PpgMonitor: expected windowSeconds between 4 and 30, got ' + w)
    const cal = opts.calibration === undefined ? DEFAULT_CALIBRATION : opts.calibration
    if (!cal || typeof cal.a !== 'number' || typeof cal.b !== 'number' || typeof cal.c !== 'number' || !isFinite(cal.a + cal.b + cal.c)) {
      throw new Error('PpgMonitor: expected calibration {a, b, c} of finite numbers')
    }
    this.fs = opts.fs
    this.win = Math.round(w)
    this.cal = cal
    this.minDc = opts.minDc === undefined ? 1 : opts.minDc
    this.minPi = opts.minPerfusion === undefined ? 0.05 : opts.minPerfusion
    this.maxPi = opts.maxPerfusion === undefined ? 20 : opts.maxPerfusion
    this.minCorr = opts.minCorrelation === undefined ? 0.99 : opts.minCorrelation
    this.minCorrPulse = opts.minCorrelationPulse === undefined ? 0.9 : opts.minCorrelationPulse
    this.maxSpread = opts.maxBeatSpread === undefined ? 0.08 : opts.maxBeatSpread
    this.maxAmpSpread = opts.maxAmplitudeSpread === undefined ? 0.2 : opts.maxAmplitudeSpread
    this.maxDisagree = opts.maxDisagreement === undefined ? 0.1 : opts.maxDisagreement
    this.onReading = opts.onReading
    this.hp = biquad(1, 0.5, this.fs)
    this.lp = biquad(0, 5, this.fs)
    this.st = new Float64Array(12)
    this.blockLen = Math.round(this.fs)
    this.dcAlpha = 1 / this.fs
    this.blocks = new Float64Array(this.win * B_FIELDS)
    this.settle = Math.round(this.fs * 2)
    this.peaks = new Int32Array(MAX_PEAKS)
    this.peakIv = new Int32Array(MAX_PEAKS)
    this.sortBuf = new Int32Array(MAX_PEAKS)
    this.peakRatio = new Float64Array(MAX_PEAKS)
    this.ratioBuf = new Float64Array(MAX_PEAKS)
    this.peakAmp = new Float64Array(MAX_PEAKS)
    this.ampBuf = new Float64Array(MAX_PEAKS)
    this.last = { at: 0, fingerOn: false, quality: 0 }
  }

  /** Forget everything (finger removed and replaced, sensor reconfigured). */
  reset(): void {
    this.n = 0
    this.st.fill(0)
    this.blocks.fill(0)
    this.blockPos = this.blockFill = 0
    this.up = true
    this.ext = this.extIdx = this.lastValley = this.amp = this.extRed = this.lastValleyRed = 0
    this.lastPeak = -1
    this.peakPos = this.peakCount = 0
    this.last = { at: 0, fingerOn: false, quality: 0 }
  }

  /** The latest reading (updated once per second). */
  reading(): PpgReading {
    return this.last
  }

  /** One sample of each channel (ambient-corrected ADC counts). */
  push(red: number, ir: number): void {
    if (!(red >= 0 && ir >= 0 && red < Infinity && ir < Infinity)) {
      // NaN, negative or infinite counts are not light: drop the window rather than poison the filters
      this.restarts++
      this.reset()
      return
    }
    // A jump of the IR level by half (finger placed, removed, sensor moved on
    // the skin) leaves nothing of the old window worth keeping: start over.
    if (this.n > 0) {
      const d = ir - this.dcSlow
      if (d > 0.5 * this.dcSlow || d < -0.5 * this.dcSlow) {
        this.restarts++
        this.reset()
      }
    }
    this.dcSlow = this.n === 0 ? ir : this.dcSlow + (ir - this.dcSlow) * this.dcAlpha
    const n = this.n
    const st = this.st
    const hp = this.hp
    const lp = this.lp
    if (n === 0) {
      // start the high-pass as if the DC had always been there (no step transient)
      this.primeHp(0, red)
      this.primeHp(4, ir)
    }
    // red: high-pass then low-pass (DF2T)
    let y = hp[0] * red + st[0]
    st[0] = hp[1] * red - hp[3] * y + st[1]
    st[1] = hp[2] * red - hp[4] * y
    let x = y
    y = hp[0] * x + st[8]
    st[8] = hp[1] * x - hp[3] * y + st[9]
    st[9] = hp[2] * x - hp[4] * y
    let acR = lp[0] * y + st[2]
    st[2] = lp[1] * y - lp[3] * acR + st[3]
    st[3] = lp[2] * y - lp[4] * acR
    // IR
    y = hp[0] * ir + st[4]
    st[4] = hp[1] * ir - hp[3] * y + st[5]
    st[5] = hp[2] * ir - hp[4] * y
    x = y
    y = hp[0] * x + st[10]
    st[10] = hp[1] * x - hp[3] * y + st[11]
    st[11] = hp[2] * x - hp[4] * y
    let acI = lp[0] * y + st[6]
    st[6] = lp[1] * y - lp[3] * acI + st[7]
    st[7] = lp[2] * y - lp[4] * acI
    this.n = n + 1
    if (n < this.settle) {
      acR = 0
      acI = 0
    } else {
      this.pulse(-acI, -acR, n)
    }
    const b = this.blockPos * B_FIELDS
    const bl = this.blocks
    bl[b + B_N] += 1
    bl[b + B_RED] += red
    bl[b + B_IR] += ir
    bl[b + B_RR] += acR * acR
    bl[b + B_II] += acI * acI
    bl[b + B_RI] += acR * acI
    if (bl[b + B_N] >= this.blockLen) {
      if (this.blockFill < this.win) this.blockFill++
      this.evaluate()
      this.blockPos = (this.blockPos + 1) % this.win
      const nb = this.blockPos * B_FIELDS
      for (let k = 0; k < B_FIELDS; k++) bl[nb + k] = 0
    }
  }

  private primeHp(o: number, x: number): void {
    // steady state of the DF2T high-pass for a constant input x (output 0)
    // y = b0 x + s0 = 0 and s1 = b2 x - a2 y = b2 x; s0 = b1 x + s1 = -b0 x since b0 + b1 + b2 = 0
    const hp = this.hp
    this.st[o] = -hp[0] * x
    this.st[o + 1] = hp[2] * x
  }

  /** Hysteresis peak/valley detector: a peak counts once the signal has fallen 40 % of the pulse amplitude below it. */
  private pulse(v: number, vr: number, n: number): void {
    const fs = this.fs
    if (this.amp === 0) {
      // bootstrap the amplitude from the first second after settling
      if (n - this.settle < fs) {
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
      this.peakAmp[this.peakPos] = amplitude
      this.peakPos = (this.peakPos + 1) % MAX_PEAKS
      if (this.peakCount < MAX_PEAKS) this.peakCount++
    }
  }

  private evaluate(): void {
    const bl = this.blocks
    let nS = 0, sR = 0, sI = 0, sRR = 0, sII = 0, sRI = 0
    for (let k = 0; k < this.blockFill; k++) {
      const b = k * B_FIELDS
      nS += bl[b + B_N]
      sR += bl[b + B_RED]
      sI += bl[b + B_IR]
      sRR += bl[b + B_RR]
      sII += bl[b + B_II]
      sRI += bl[b + B_RI]
    }
    const at = this.n
    const out: PpgReading = { at: at, fingerOn: false, quality: 0 }
    this.last = out
    const full = this.blockFill >= this.win && at >= this.settle + this.win * this.blockLen
    const dcR = sR / nS
    const dcI = sI / nS
    out.fingerOn = dcI >= this.minDc && dcR >= this.minDc * 0.1
    if (!full || !out.fingerOn || !(sII > 0) || !(sRR > 0)) {
      if (this.onReading) this.onReading(out)
      return
    }
    const rmsR = Math.sqrt(sRR / nS) / dcR
    const rmsI = Math.sqrt(sII / nS) / dcI
    const corr = sRI / Math.sqrt(sRR * sII)
    out.correlation = Math.round(corr * 1000) / 1000
    const pi = (100 * this.amp) / dcI
    // pulse intervals whose peak lies in the window
    const from = at - this.win * this.blockLen
    let m = 0
    for (let k = 0; k < this.peakCount; k++) {
      const j = (this.peakPos + MAX_PEAKS - 1 - k) % MAX_PEAKS
      if (this.peaks[j] < from) break
      this.ratioBuf[m] = this.peakRatio[j]
      this.ampBuf[m] = this.peakAmp[j]
      this.sortBuf[m++] = this.peakIv[j]
    }
    let regular = 0
    let medIv = 0
    let meanIv = 0
    if (m >= 3) {
      // m <= 64, once per second
      sortFirst(this.sortBuf, m, this.sortBuf)
      medIv = m % 2 === 1 ? this.sortBuf[m >> 1] : (this.sortBuf[m / 2 - 1] + this.sortBuf[m / 2]) / 2
      let ok = 0
      let sum = 0
      let okSum = 0
      for (let i = 0; i < m; i++) {
        const d = this.sortBuf[i] - medIv
        if (d < 0.2 * medIv && d > -0.2 * medIv) {
          ok++
          okSum += this.sortBuf[i]
        }
        sum += this.sortBuf[i]
      }
      regular = ok / m
      // the mean of the regular intervals: averages out the one-sample quantisation a median keeps
      meanIv = okSum / ok
      // intervals should tile the window: many short ones mean double counting, few mean misses
      const cover = sum / (this.win * this.blockLen)
      if (cover < 0.6 || cover > 1.1) regular = regular * 0.5
    }
    const piOk = pi >= this.minPi && pi <= this.maxPi
    let q = corr > 0 ? corr : 0
    q = q * q * q * q // 0.95 → 81, 0.9 → 66
    q = q * (regular > 0.8 ? 1 : regular) * (piOk ? 1 : 0)
    out.quality = Math.round(100 * q)
    if (!piOk) {
      if (this.onReading) this.onReading(out)
      return
    }
    out.perfusionIndex = Math.round(pi * 100) / 100
    // Per-beat ratios must agree with each other and with the window's RMS
    // ratio: motion adds venous-blood swings of a different red/IR ratio at
    // random, which scatters the per-beat ratios even when the two channels
    // stay correlated.
    const rmsRatio = rmsR / rmsI
    let beatSpread = Infinity
    let ampSpread = Infinity
    let beatR = 0
    if (m >= 3) {
      const rb = this.ratioBuf
      sortFirst(rb, m, rb)
      const k = dcI / dcR
      beatR = (m % 2 === 1 ? rb[m >> 1] : (rb[m / 2 - 1] + rb[m / 2]) / 2) * k
      // spread of the middle two thirds (robust to one bad beat)
      const lo = Math.floor(m / 6)
      const hi = m - 1 - lo
      beatSpread = ((rb[hi] - rb[lo]) * k) / beatR
      // pulse amplitude steadiness: motion makes the beat heights jump
      const ab = this.ampBuf
      sortFirst(ab, m, ab)
      const med = m % 2 === 1 ? ab[m >> 1] : (ab[m / 2 - 1] + ab[m / 2]) / 2
      ampSpread = med > 0 ? (ab[hi] - ab[lo]) / med : Infinity
    }
    out.ampSpread = Math.round(ampSpread * 1000) / 1000
    out.beatSpread = Math.round(beatSpread * 1000) / 1000
    const consistent = beatSpread <= this.maxSpread && ampSpread <= this.maxAmpSpread && Math.abs(beatR - rmsRatio) <= this.maxDisagree * beatR
    // the per-beat (peak-to-trough) ratio is the estimate: slow baseline wander left after the band-pass biases the RMS ratio, not it
    const R = beatR
    if (!consistent) out.quality = Math.round(out.quality * 0.5)
    if (regular >= 0.8 && corr >= this.minCorrPulse && ampSpread <= 2 * this.maxAmpSpread && out.quality >= 50) out.pulseRate = Math.round((600 * this.fs) / meanIv) / 10
    if (corr >= this.minCorr && regular >= 0.8 && consistent) {
      const c = this.cal
      const s = c.a + c.b * R + c.c * R * R
      out.ratio = Math.round(R * 10000) / 10000
      // outside the curve's physiological range: the number would be meaningless
      if (s >= 50 && s <= 104) out.spo2 = s > 100 ? 100 : Math.round(s * 10) / 10
    }
    if (this.onReading) this.onReading(out)
  }
}
