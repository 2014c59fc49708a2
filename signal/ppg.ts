/**
 * Pulse oximetry from red and IR photoplethysmograms (MAX30102 or any
 * two-wavelength sensor), portable (no allocation per sample, fixed memory):
 * one `push(red, ir)` per sample, a reading once per second over a window
 * that grows from `minSeconds` (a spot check) to `windowSeconds` (continuous
 * monitoring), and `flush()` for the last part-second of a spot check.
 *
 * - AC: each channel band-passed 0.5–5 Hz (two 2nd-order Butterworth high-pass
 *   biquads, so 0.25 Hz respiration is ~24 dB down, then a low-pass biquad;
 *   coefficients from fs), primed with the first sample; DC: the window mean.
 * - Ratio of ratios R = (AC_red/DC_red)/(AC_ir/DC_ir), with AC_red/AC_ir the
 *   least-squares slope of red AC on IR AC over the window. Both channels see
 *   the same arterial pulse through the same linear filter, so the slope is
 *   exact from the first sample (filter transients scale both alike) and needs
 *   no whole beats: this is what makes a 2–3 s spot check possible. Noise in
 *   red alone does not bias a slope, as it biases an RMS ratio.
 * - SpO2 = a + b·R + c·R² (the calibration, per sensor model or device:
 *   signal/ppg-calibration.ts; `DEFAULT_CALIBRATION` was fitted to the
 *   simulator's Beer–Lambert model and is NOT a calibration of any real sensor).
 * - Quality 0..100 is the product of four factors, each 1 on good signal:
 *   red/IR correlation of the AC (motion, ambient light and quantisation lower
 *   it), the agreement of the per-second slopes (motion adds venous-blood
 *   swings of another red/IR ratio, which scatter them even while the channels
 *   stay correlated), the regularity of the IR pulse intervals, and perfusion
 *   inside its bounds. A clipped ADC, or a DC below `minDc`, is quality 0.
 *   SpO2 is withheld below `minQuality` (default 50), pulse rate likewise on
 *   its own factors (correlation, regularity, perfusion).
 * - Pulse rate from the IR pulse peaks (hysteresis peak detector on the
 *   inverted band-passed IR, immune to the dicrotic wave): mean of the regular
 *   intervals in the window.
 * - Perfusion index = 100 · (peak-to-peak AC_ir)/DC_ir in percent.
 * When there is no number the field is left out (undefined), never a sentinel.
 *
 * The gates were set on the realistic finger model (hardware-sim/signals/
 * ppg-realistic.ts: motion, ambient light, low perfusion, quantisation) and
 * BIDMC pleth, not on any one recording; docs/signal.md gives the accuracy.
 * The window is kept as per-second block sums (not sample rings), so memory
 * does not grow with the sample rate.
 */
import { sortFirst } from './sort.ts'
import { PulsePeaks } from './ppg-pulse.ts'

/** SpO2 (%) = a + b·R + c·R². */
export interface SpO2Calibration {
  a: number
  b: number
  c: number
}

/** Least-squares fit to the simulator's physics (hardware-sim/signals/ppg.ts, modelRatio) over 60–100 %; max error 0.05 % over 70–100 %. */
export const DEFAULT_CALIBRATION: SpO2Calibration = { a: 110.7, b: -28.55, c: 2.16 }

/** The 18-bit ADC of the MAX30102 (and MAX30101). */
export const MAX30102_FULL_SCALE = 262143

export interface PpgOptions {
  /** Sample rate of each channel, Hz (25..3200). */
  fs: number
  /** Longest window in seconds (4..30, default 8): continuous monitoring. */
  windowSeconds?: number
  /** Shortest window that gives a reading, seconds (2..windowSeconds, default 3): a spot check. */
  minSeconds?: number
  calibration?: SpO2Calibration
  /** Minimum IR DC (same units as the samples) to consider a finger present (default 0.5 % of fullScale). */
  minDc?: number
  /** ADC full scale: a window with a sample at or above 99.5 % of it is clipped, quality 0 (default MAX30102_FULL_SCALE). */
  fullScale?: number
  /** Perfusion index bounds in percent (default 0.1..20). */
  minPerfusion?: number
  maxPerfusion?: number
  /** Red/IR AC correlation at which the correlation factor is 0 and 1 (default 0.6 and 0.9). */
  correlationFloor?: number
  correlationGood?: number
  /** Relative spread of the per-second slopes at which their factor starts to fall, and is 0 (default 0.05 and 0.2). */
  slopeSpreadGood?: number
  slopeSpreadMax?: number
  /** Relative spread of the per-beat ratios at which their factor starts to fall, and is 0 (default 0.25 and 0.6). */
  beatSpreadGood?: number
  beatSpreadMax?: number
  /** Relative distance of the per-beat median ratio from the slope at which their factor starts to fall, and is 0 (default 0.1 and 0.3). */
  disagreementGood?: number
  disagreementMax?: number
  /** Largest/smallest per-second IR AC power at which its factor starts to fall, and is 0 (default 4 and 10). */
  powerSpreadGood?: number
  powerSpreadMax?: number
  /** Quality below which SpO2 (and, on its own factors, pulse rate) is withheld (default 50). */
  minQuality?: number
  /** Called once per second with the latest reading. */
  onReading?: (r: PpgReading) => void
}

export interface PpgReading {
  /** Samples since the monitor (re)started: end of the window. */
  at: number
  fingerOn: boolean
  /** Overall quality 0..100 (the SpO2's). */
  quality: number
  /** Present only when trustworthy. */
  spo2?: number
  pulseRate?: number
  perfusionIndex?: number
  /** Ratio of ratios, present whenever the signal was good enough for SpO2 (also outside the curve's range). */
  ratio?: number
  /** Red/IR correlation over the window (diagnostic). */
  correlation?: number
  /** Relative spread of the per-second red/IR slopes (diagnostic). */
  slopeSpread?: number
  /** Relative spread of the per-beat red/IR ratios, and their median's relative distance from R (diagnostics). */
  beatSpread?: number
  disagreement?: number
  /** Largest over smallest per-second IR AC power in the window (diagnostic): motion bursts make it jump. */
  powerSpread?: number
  /** Share of pulse intervals within 20 % of their median (diagnostic). */
  regularity?: number
  /** Seconds of signal behind the reading. */
  windowS?: number
  /** The ADC clipped in the window. */
  clipped?: boolean
}


// block sum layout
const B_N = 0
const B_RED = 1
const B_IR = 2
const B_RR = 3
const B_II = 4
const B_RI = 5
const B_MAX = 6
const B_FIELDS = 7

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

function ramp(x: number, zeroAt: number, oneAt: number): number {
  const v = (x - zeroAt) / (oneAt - zeroAt)
  return v <= 0 ? 0 : v >= 1 ? 1 : v
}

function opt(v: number | undefined, d: number): number {
  return v === undefined ? d : v
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
  private minBlocks: number
  private cal: SpO2Calibration
  private minDc: number
  private clipAt: number
  private minPi: number
  private maxPi: number
  private corrFloor: number
  private corrGood: number
  private spreadGood: number
  private spreadMax: number
  private beatSpreadGood: number
  private beatSpreadMax: number
  private disagreeGood: number
  private disagreeMax: number
  private powerSpreadGood: number
  private powerSpreadMax: number
  private minQ: number
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
  private slopes: Float64Array
  private slopeAt: Float64Array
  private resid: Float64Array
  /** Pulse peaks on -AC_ir (and the red AC at the same instants). */
  private pulses: PulsePeaks
  private last: PpgReading

  constructor(opts: PpgOptions) {
    if (!opts || typeof opts.fs !== 'number' || !(opts.fs >= 25 && opts.fs <= 3200)) {
      throw new Error('PpgMonitor: expected fs between 25 and 3200 Hz, got ' + (opts ? opts.fs : opts))
    }
    const w = opts.windowSeconds === undefined ? 8 : opts.windowSeconds
    if (!(w >= 4 && w <= 30)) throw new Error('PpgMonitor: expected windowSeconds between 4 and 30, got ' + w)
    const minS = opts.minSeconds === undefined ? 3 : opts.minSeconds
    if (!(minS >= 2 && minS <= w)) throw new Error('PpgMonitor: expected minSeconds between 2 and ' + w + ', got ' + minS)
    const cal = opts.calibration === undefined ? DEFAULT_CALIBRATION : opts.calibration
    if (!cal || typeof cal.a !== 'number' || typeof cal.b !== 'number' || typeof cal.c !== 'number' || !isFinite(cal.a + cal.b + cal.c)) {
      throw new Error('PpgMonitor: expected calibration {a, b, c} of finite numbers')
    }
    this.fs = opts.fs
    this.win = Math.round(w)
    this.minBlocks = Math.round(minS)
    this.cal = cal
    const full = opt(opts.fullScale, MAX30102_FULL_SCALE)
    // A finger reflects tens of % of full scale; with none the photodiode sees stray LED light
    // and the ambient residual, well under 1 % (MAX30102 with the firmware's LED current).
    this.minDc = opt(opts.minDc, 0.005 * full)
    this.clipAt = 0.995 * full
    this.minPi = opt(opts.minPerfusion, 0.1)
    this.maxPi = opt(opts.maxPerfusion, 20)
    this.corrFloor = opt(opts.correlationFloor, 0.6)
    this.corrGood = opt(opts.correlationGood, 0.9)
    this.spreadGood = opt(opts.slopeSpreadGood, 0.05)
    this.spreadMax = opt(opts.slopeSpreadMax, 0.2)
    this.beatSpreadGood = opt(opts.beatSpreadGood, 0.12)
    this.beatSpreadMax = opt(opts.beatSpreadMax, 0.4)
    this.disagreeGood = opt(opts.disagreementGood, 0.1)
    this.disagreeMax = opt(opts.disagreementMax, 0.3)
    this.powerSpreadGood = opt(opts.powerSpreadGood, 4)
    this.powerSpreadMax = opt(opts.powerSpreadMax, 10)
    this.minQ = opt(opts.minQuality, 50)
    this.onReading = opts.onReading
    this.hp = biquad(1, 0.5, this.fs)
    this.lp = biquad(0, 5, this.fs)
    this.st = new Float64Array(12)
    this.blockLen = Math.round(this.fs)
    this.dcAlpha = 1 / this.fs
    this.blocks = new Float64Array(this.win * B_FIELDS)
    this.slopes = new Float64Array(this.win)
    this.slopeAt = new Float64Array(this.win)
    this.resid = new Float64Array(this.win)
    // The slope needs no settling (see above); the peak detector waits out the filters' first half second.
    this.settle = Math.round(this.fs * 0.5)
    this.pulses = new PulsePeaks(this.fs, this.settle)
    this.last = { at: 0, fingerOn: false, quality: 0 }
  }

  /** Forget everything (finger removed and replaced, sensor reconfigured). */
  reset(): void {
    this.n = 0
    this.st.fill(0)
    this.blocks.fill(0)
    this.blockPos = this.blockFill = 0
    this.pulses.reset()
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
    const acR = lp[0] * y + st[2]
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
    const acI = lp[0] * y + st[6]
    st[6] = lp[1] * y - lp[3] * acI + st[7]
    st[7] = lp[2] * y - lp[4] * acI
    this.n = n + 1
    if (n >= this.settle) this.pulses.push(-acI, -acR, n)
    const b = this.blockPos * B_FIELDS
    const bl = this.blocks
    bl[b + B_N] += 1
    bl[b + B_RED] += red
    bl[b + B_IR] += ir
    bl[b + B_RR] += acR * acR
    bl[b + B_II] += acI * acI
    bl[b + B_RI] += acR * acI
    const hi = red > ir ? red : ir
    if (hi > bl[b + B_MAX]) bl[b + B_MAX] = hi
    if (bl[b + B_N] >= this.blockLen) this.closeBlock()
  }

  /**
   * The end of a spot check: a reading from everything pushed, including a last
   * part-second of at least half a second (it is otherwise dropped). Returns it.
   */
  flush(): PpgReading {
    const bl = this.blocks
    const b = this.blockPos * B_FIELDS
    if (bl[b + B_N] >= this.blockLen / 2) this.closeBlock()
    return this.last
  }

  private closeBlock(): void {
    if (this.blockFill < this.win) this.blockFill++
    this.evaluate()
    this.blockPos = (this.blockPos + 1) % this.win
    const nb = this.blockPos * B_FIELDS
    for (let k = 0; k < B_FIELDS; k++) this.blocks[nb + k] = 0
  }

  private primeHp(o: number, x: number): void {
    // steady state of the DF2T high-pass for a constant input x (output 0)
    // y = b0 x + s0 = 0 and s1 = b2 x - a2 y = b2 x; s0 = b1 x + s1 = -b0 x since b0 + b1 + b2 = 0
    const hp = this.hp
    this.st[o] = -hp[0] * x
    this.st[o + 1] = hp[2] * x
  }

  private evaluate(): void {
    const bl = this.blocks
    let nS = 0, sR = 0, sI = 0, sRR = 0, sII = 0, sRI = 0, hi = 0
    for (let k = 0; k < this.blockFill; k++) {
      const b = k * B_FIELDS
      nS += bl[b + B_N]
      sR += bl[b + B_RED]
      sI += bl[b + B_IR]
      sRR += bl[b + B_RR]
      sII += bl[b + B_II]
      sRI += bl[b + B_RI]
      if (bl[b + B_MAX] > hi) hi = bl[b + B_MAX]
    }
    const at = this.n
    const out: PpgReading = { at: at, fingerOn: false, quality: 0 }
    this.last = out
    const dcR = sR / nS
    const dcI = sI / nS
    out.fingerOn = dcI >= this.minDc && dcR >= this.minDc * 0.1
    out.windowS = Math.round((10 * nS) / this.fs) / 10
    if (hi >= this.clipAt) out.clipped = true
    if (this.blockFill < this.minBlocks || !out.fingerOn || out.clipped || !(sII > 0) || !(sRR > 0)) return this.emit(out)
    const corr = sRI / Math.sqrt(sRR * sII)
    out.correlation = Math.round(corr * 1000) / 1000
    // Ratio of ratios from the window's least-squares slope of red AC on IR AC.
    const R = ((sRI / sII) * dcI) / dcR
    const spread = this.slopeSpread(sII / nS)
    out.slopeSpread = Math.round(spread * 1000) / 1000
    const power = this.powerSpread()
    out.powerSpread = Math.round(power * 100) / 100
    const pulse = this.pulses.stats(this.n, nS)
    out.regularity = Math.round(pulse.regular * 100) / 100
    const pi = (100 * this.pulses.amp) / dcI
    const piOk = pi >= this.minPi && pi <= this.maxPi
    if (this.pulses.amp > 0) out.perfusionIndex = Math.round(pi * 100) / 100
    const qCorr = ramp(corr, this.corrFloor, this.corrGood)
    const qSpread = spread <= this.spreadGood ? 1 : ramp(-spread, -this.spreadMax, -this.spreadGood)
    const qPulse = pulse.regular < 0.5 ? 0 : pulse.regular >= 0.8 ? 1 : ramp(pulse.regular, 0.5, 0.8)
    const qPi = piOk ? 1 : 0
    // Motion swings blood of another red/IR ratio, not in time with the pulse: per-beat
    // ratios scatter, and their median leaves the window's slope.
    const beatR = (pulse.beatRatio * dcI) / dcR
    const disagree = pulse.n > 0 && R > 0 ? Math.abs(beatR - R) / R : Infinity
    out.beatSpread = Math.round(pulse.beatSpread * 1000) / 1000
    out.disagreement = Math.round(disagree * 1000) / 1000
    const qBeat = ramp(-pulse.beatSpread, -this.beatSpreadMax, -this.beatSpreadGood) * ramp(-disagree, -this.disagreeMax, -this.disagreeGood)
    // Motion moves far more blood than a pulse (5-10x): the seconds' AC power jumps, while
    // breathing and beat-to-beat variation change it by less than 3x on real fingers.
    const qPower = ramp(-power, -this.powerSpreadMax, -this.powerSpreadGood)
    const q = 100 * qCorr * qSpread * qBeat * qPower * qPulse * qPi
    out.quality = Math.round(q)
    if (!piOk) delete out.perfusionIndex
    // Pulse rate needs regular intervals (at least two) and no sign of motion, but less
    // agreement of the two channels than SpO2 does: half its quality.
    if (pulse.n >= 2 && pulse.regular >= 0.8 && q >= this.minQ / 2) {
      out.pulseRate = Math.round((600 * this.fs) / pulse.meanIv) / 10
    }
    if (q >= this.minQ && R > 0) {
      out.ratio = Math.round(R * 10000) / 10000
      const c = this.cal
      const s = c.a + c.b * R + c.c * R * R
      // outside the curve's physiological range: the number would be meaningless
      if (s >= 50 && s <= 104) out.spo2 = s > 100 ? 100 : Math.round(s * 10) / 10
    }
    this.emit(out)
  }

  private emit(out: PpgReading): void {
    if (this.onReading) this.onReading(out)
  }

  /**
   * Relative spread of the per-second slopes (red AC on IR AC) over the
   * window: seconds with less than a quarter of the mean IR AC power carry no
   * pulse worth a slope and are left out. From four seconds on, the spread is
   * of what a straight line through the slopes in time order leaves: a
   * saturation that is falling (a desaturation, the reading that matters
   * most) moves R steadily, motion scatters it. With six or more, the
   * farthest one on each side is left out too (one bad second must not decide).
   */
  private slopeSpread(meanII: number): number {
    const bl = this.blocks
    const ys = this.slopes
    const xs = this.slopeAt
    const first = (this.blockPos - (this.blockFill - 1) + this.win) % this.win
    let m = 0
    for (let j = 0; j < this.blockFill; j++) {
      const b = ((first + j) % this.win) * B_FIELDS
      const ii = bl[b + B_II]
      if (bl[b + B_N] > 0 && ii > 0.25 * meanII * bl[b + B_N]) {
        xs[m] = j
        ys[m++] = bl[b + B_RI] / ii
      }
    }
    if (m < 2) return Infinity
    const r = this.resid
    let sx = 0, sy = 0, sxx = 0, sxy = 0
    for (let i = 0; i < m; i++) {
      sx += xs[i]
      sy += ys[i]
      sxx += xs[i] * xs[i]
      sxy += xs[i] * ys[i]
    }
    const den = m * sxx - sx * sx
    const slope = m >= 4 && den > 0 ? (m * sxy - sx * sy) / den : 0
    const icpt = (sy - slope * sx) / m
    for (let i = 0; i < m; i++) r[i] = ys[i] - (icpt + slope * xs[i])
    sortFirst(ys, m, ys)
    sortFirst(r, m, r)
    const cut = m >= 6 ? 1 : 0
    const med = m % 2 === 1 ? ys[m >> 1] : (ys[m / 2 - 1] + ys[m / 2]) / 2
    if (!(med > 0)) return Infinity
    return (r[m - 1 - cut] - r[cut]) / med
  }

  /** Largest over smallest IR AC power per sample of the window's whole seconds (1 with fewer than two). */
  private powerSpread(): number {
    const bl = this.blocks
    let lo = Infinity
    let hi = 0
    for (let k = 0; k < this.blockFill; k++) {
      const b = k * B_FIELDS
      if (bl[b + B_N] < this.blockLen) continue
      const p = bl[b + B_II] / bl[b + B_N]
      if (p < lo) lo = p
      if (p > hi) hi = p
    }
    return hi > 0 && lo < Infinity ? (lo > 0 ? hi / lo : Infinity) : 1
  }
}
