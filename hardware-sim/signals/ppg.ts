/**
 * A simulated finger on a reflective pulse oximeter (MAX30102: red 660 nm,
 * IR 880 nm), as a `PpgSource`. Deterministic given a seed.
 *
 * Physics (modified Beer–Lambert law): the light reaching the photodiode at
 * wavelength λ is I = I_DC · exp(-ΔA(λ, t)), where the pulsatile absorbance
 * of arterial blood is ΔA(λ, t) = ε_eff(λ) · c · Δd(t) · DPF(λ), with
 *   ε_eff(λ) = S·ε_HbO2(λ) + (1 − S)·ε_Hb(λ)     (S = arterial SpO2)
 * and DPF the differential path-length factor (photons at 660 nm and 880 nm
 * travel different mean paths through scattering tissue). For small ΔA,
 * AC/DC(λ) ≈ ΔA(λ), so the ratio of ratios a sensor sees is
 *   R = (AC/DC)_red / (AC/DC)_ir = (DPF_red/DPF_ir) · ε_eff(660) / ε_eff(880).
 * The IR perfusion index PI = (AC/DC)_ir fixes c·Δd·DPF_ir, and the red
 * modulation follows from R: no calibration curve is used here; the
 * processing library's default curve was fitted to this model's R(S)
 * (see `modelRatio`).
 *
 * Extinction coefficients (cm⁻¹/M) are the tabulated values for hemoglobin
 * compiled by S. Prahl (OMLC) at 660 and 880 nm.
 *
 * On top: a pulse shape with systolic peak and dicrotic notch, pulse rate with
 * heart-rate variability (random plus respiratory sinus arrhythmia),
 * respiration baseline wander (multiplicative, both wavelengths), motion
 * artefacts (venous blood sloshing: modulates both wavelengths with the
 * venous ratio, plus a common path-length term), ambient light with mains
 * flicker, and finger-off intervals.
 */
import type { PpgSource } from './types.ts'
import { createRng, type Rng } from '../../protocol/node/rng.ts'

/** Molar extinction coefficients, cm⁻¹/M (Prahl). */
export const EXTINCTION = {
  red: { hbo2: 319.6, hb: 3226.56 }, // 660 nm
  ir: { hbo2: 1154, hb: 726.44 }, // 880 nm
}

/** Ratio of differential path-length factors, red over IR (red scatters more; chosen so R(97%) ≈ 0.5 as on common sensors). */
export const DPF_RATIO = 1.4

/** The ratio of ratios a sensor sees for arterial saturation `s` (0..1), from the model's physics. */
export function modelRatio(s: number): number {
  const er = s * EXTINCTION.red.hbo2 + (1 - s) * EXTINCTION.red.hb
  const ei = s * EXTINCTION.ir.hbo2 + (1 - s) * EXTINCTION.ir.hb
  return (DPF_RATIO * er) / ei
}

export interface MotionOptions {
  /** Motion amplitude as a fraction of DC (e.g. 0.02 = 2 %, comparable to the pulse). */
  amplitude: number
  /** Band of the motion, Hz (default 0.5–4: walking, tapping, shaking). */
  lowHz?: number
  highHz?: number
  /** Venous saturation of the moved blood (default 0.7): sets the motion's red/IR ratio. */
  venousSpo2?: number
  /** Motion is present only inside these [startMs, endMs) intervals (default: always). */
  intervals?: Array<[number, number]>
}

export interface PpgModelOptions {
  seed: number
  /** Arterial SpO2 in percent (constant or a function of time). */
  spo2: number | ((tMs: number) => number)
  /** Mean pulse rate in beats per minute (constant or a function of time). */
  bpm: number | ((tMs: number) => number)
  /** IR perfusion index AC/DC (default 0.02 = 2 %). */
  perfusionIndex?: number
  /** DC fraction of emitted light reaching the photodiode (defaults red 0.30, IR 0.45). */
  dcRed?: number
  dcIr?: number
  /** Beat-to-beat RR variability as a fraction of RR (SD, default 0.03) plus respiratory sinus arrhythmia (default 0.03). */
  hrv?: number
  rsa?: number
  /** Breaths per minute (default 15) and baseline wander depth as a fraction of DC (default 0.005). */
  respRate?: number
  respDepth?: number
  /** Dicrotic wave height relative to the systolic peak (default 0.35). */
  dicrotic?: number
  motion?: MotionOptions
  /** Ambient light as a fraction of full scale (default 0.01) and its mains flicker frequency (default 100 Hz). */
  ambient?: number
  mainsHz?: number
  /** Finger off the sensor during these [startMs, endMs) intervals. */
  fingerOff?: Array<[number, number]>
}

/**
 * Pulse waveform over one cardiac cycle, phase 0..1 → 0..1: a systolic
 * upstroke and peak, a notch, a dicrotic wave, then diastolic decay.
 */
export function pulseShape(phase: number, dicrotic: number): number {
  const g = (x: number, mu: number, sd: number): number => Math.exp(-((x - mu) * (x - mu)) / (2 * sd * sd))
  const sys = g(phase, 0.2, 0.075)
  const dic = dicrotic * g(phase, 0.45, 0.07)
  // a slow diastolic run-off joins the end of one beat to the foot of the next
  const runoff = 0.12 * (1 - phase) * (phase > 0.2 ? 1 : phase / 0.2)
  return (sys + dic + runoff) / (1 + 0.12 * 0.8)
}

const BEAT_LOG = 512

interface Resonator {
  y1: number
  y2: number
}

export class PpgModel implements PpgSource {
  private rng: Rng
  private motionRng: Rng
  private opts: PpgModelOptions
  private beatStart = 0
  private beatLen: number
  private beatIndex = 0
  private lastT = -Infinity
  private beatLog = new Float64Array(BEAT_LOG)
  // motion: white noise through a band-pass resonator, stepped at 1 kHz model time
  private motionT = 0
  private motionState: Resonator = { y1: 0, y2: 0 }
  private motionScale = 1
  private motionValue = 0
  private mb0 = 0
  private ma1 = 0
  private ma2 = 0

  constructor(opts: PpgModelOptions) {
    if (!opts || typeof opts.seed !== 'number') throw new Error(`PpgModel: expected options with a numeric seed, got ${opts && opts.seed}`)
    this.opts = opts
    this.rng = createRng(opts.seed)
    this.motionRng = createRng((opts.seed ^ 0x5bd1e995) >>> 0)
    this.beatLen = this.nextRr(0)
    if (opts.motion) {
      const lo = opts.motion.lowHz ?? 0.5
      const hi = opts.motion.highHz ?? 4
      const f0 = Math.sqrt(lo * hi)
      const bw = hi - lo
      const fs = 1000
      const r = Math.exp((-Math.PI * bw) / fs)
      this.ma1 = 2 * r * Math.cos((2 * Math.PI * f0) / fs)
      this.ma2 = -r * r
      this.mb0 = 1 - r
      // calibrate the resonator's output RMS to 1 with a deterministic run-in
      const cal = createRng(12345)
      const st: Resonator = { y1: 0, y2: 0 }
      let ss = 0
      const N = 200000
      for (let i = 0; i < N; i++) {
        const y = this.mb0 * cal.gaussian() + this.ma1 * st.y1 + this.ma2 * st.y2
        st.y2 = st.y1
        st.y1 = y
        if (i >= 20000) ss += y * y
      }
      this.motionScale = 1 / Math.sqrt(ss / (N - 20000))
    }
  }

  /** SpO2 (%) the model is producing at time t. */
  spo2At(tMs: number): number {
    const s = this.opts.spo2
    return typeof s === 'function' ? s(tMs) : s
  }

  /** Mean pulse rate (bpm) the model is producing at time t. */
  bpmAt(tMs: number): number {
    const b = this.opts.bpm
    return typeof b === 'function' ? b(tMs) : b
  }

  private nextRr(tMs: number): number {
    const mean = 60000 / this.bpmAt(tMs)
    const hrv = this.opts.hrv ?? 0.03
    const rsa = this.opts.rsa ?? 0.03
    const resp = this.opts.respRate ?? 15
    const rr = mean * (1 + hrv * this.rng.gaussian() + rsa * Math.sin((2 * Math.PI * resp * tMs) / 60000))
    return Math.max(rr, 250)
  }

  private advanceBeats(tMs: number): void {
    while (tMs >= this.beatStart + this.beatLen) {
      this.beatLog[this.beatIndex % BEAT_LOG] = this.beatStart
      this.beatStart += this.beatLen
      this.beatIndex++
      this.beatLen = this.nextRr(this.beatStart)
    }
  }

  /**
   * The true mean pulse rate (bpm) over beats that started in [t0Ms, t1Ms), as
   * (beats - 1) / (last start - first start): what a perfect detector would
   * report for that window. Undefined with fewer than two beats or when the
   * window is older than the last 512 beats.
   */
  trueRate(t0Ms: number, t1Ms: number): number | undefined {
    let first = Infinity
    let last = -Infinity
    let count = 0
    const lo = Math.max(0, this.beatIndex - BEAT_LOG)
    for (let k = lo; k <= this.beatIndex; k++) {
      const s = k === this.beatIndex ? this.beatStart : this.beatLog[k % BEAT_LOG]
      if (s >= t0Ms && s < t1Ms) {
        count++
        if (s < first) first = s
        if (s > last) last = s
      }
    }
    return count >= 2 ? (60000 * (count - 1)) / (last - first) : undefined
  }

  /** Start times (ms) of beats are exposed for tests: the current beat's start and length. */
  currentBeat(): { start: number; length: number; index: number } {
    return { start: this.beatStart, length: this.beatLen, index: this.beatIndex }
  }

  private motion(tMs: number): number {
    const m = this.opts.motion
    if (!m) return 0
    while (this.motionT < tMs) {
      const y = this.mb0 * this.motionRng.gaussian() + this.ma1 * this.motionState.y1 + this.ma2 * this.motionState.y2
      this.motionState.y2 = this.motionState.y1
      this.motionState.y1 = y
      this.motionT += 1
      this.motionValue = y * this.motionScale
    }
    if (m.intervals && !m.intervals.some((iv) => tMs >= iv[0] && tMs < iv[1])) return 0
    return this.motionValue * m.amplitude
  }

  fingerOn(tMs: number): boolean {
    const off = this.opts.fingerOff
    return !(off && off.some((iv) => tMs >= iv[0] && tMs < iv[1]))
  }

  light(tMs: number): { red: number; ir: number; ambient: number } {
    if (!(tMs >= this.lastT)) throw new Error(`PpgModel.light: expected non-decreasing time, got ${tMs} after ${this.lastT}`)
    this.lastT = tMs
    this.advanceBeats(tMs)
    const o = this.opts
    const amb0 = o.ambient ?? 0.01
    const ambient = amb0 * (1 + 0.2 * Math.sin((2 * Math.PI * (o.mainsHz ?? 100) * tMs) / 1000))
    const mv = this.motion(tMs)
    if (!this.fingerOn(tMs)) {
      // nothing to reflect from: the photodiode sees only stray LED light
      return { red: 0.002, ir: 0.002, ambient: ambient * 3 }
    }
    const s = Math.min(1, Math.max(0, this.spo2At(tMs) / 100))
    const pi = o.perfusionIndex ?? 0.02
    const R = modelRatio(s)
    // absorbance swings: IR swing = PI, red swing = R * PI (small-signal Beer–Lambert)
    const p = pulseShape((tMs - this.beatStart) / this.beatLen, o.dicrotic ?? 0.35)
    const aIr = pi * p
    const aRed = R * pi * p
    // respiration: tissue blood volume and path length change, same factor at both wavelengths
    const resp = (o.respDepth ?? 0.005) * Math.sin((2 * Math.PI * (o.respRate ?? 15) * tMs) / 60000)
    // motion: venous blood moves (absorbance at the venous ratio) and the optical path changes (common factor)
    const vR = modelRatio(o.motion ? (o.motion.venousSpo2 ?? 0.7) : 0.7)
    const mIr = mv
    const mRed = mv * vR
    const common = 0.5 * mv
    const dcRed = o.dcRed ?? 0.3
    const dcIr = o.dcIr ?? 0.45
    const red = dcRed * Math.exp(-aRed - mRed) * (1 + resp + common)
    const ir = dcIr * Math.exp(-aIr - mIr) * (1 + resp + common)
    return { red, ir, ambient }
  }
}

export interface RenderOptions {
  fs: number
  seconds: number
  /** ADC counts at full light (default 2^18 - 1, the MAX30102's 18-bit range). */
  fullScale?: number
  /** Gaussian ADC noise, counts RMS (default 3). */
  noiseCounts?: number
  /** Seed for the ADC noise (default 1). */
  noiseSeed?: number
}

/**
 * Samples a model through an idealised ADC (ambient already cancelled, as the
 * MAX30102 does): for tests and benches of the processing. The device model
 * with LED currents, pulse widths and FIFO lives with the MAX30102 simulator.
 */
export function renderPpg(model: PpgSource, opts: RenderOptions): { red: Float64Array; ir: Float64Array; fingerOn: Uint8Array } {
  const n = Math.round(opts.fs * opts.seconds)
  const fsc = opts.fullScale ?? 262143
  const sd = opts.noiseCounts ?? 3
  const rng = createRng(opts.noiseSeed ?? 1)
  const red = new Float64Array(n)
  const ir = new Float64Array(n)
  const on = new Uint8Array(n)
  for (let i = 0; i < n; i++) {
    const t = (i * 1000) / opts.fs
    const l = model.light(t)
    red[i] = Math.max(0, Math.min(fsc, Math.round(l.red * fsc + sd * rng.gaussian())))
    ir[i] = Math.max(0, Math.min(fsc, Math.round(l.ir * fsc + sd * rng.gaussian())))
    on[i] = model.fingerOn(t) ? 1 : 0
  }
  return { red, ir, fingerOn: on }
}
