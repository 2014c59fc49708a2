/**
 * Synthetic ECG after McSharry, Clifford, Tarassenko & Smith, "A dynamical
 * model for generating synthetic electrocardiogram signals", IEEE TBME 50(3),
 * 2003 (ECGSYN). A point (x, y, z) moves on the unit limit cycle in (x, y)
 * at angular velocity ω = 2π/RR; z is pushed by five Gaussian "events" P, Q,
 * R, S, T at fixed angles θ_i:
 *
 *   dx/dt = αx − ωy,  dy/dt = αy + ωx,  α = 1 − √(x² + y²)
 *   dz/dt = −Σ a_i Δθ_i exp(−Δθ_i² / 2b_i²) − (z − z0(t))
 *
 * integrated with fixed-step RK4 at 1 kHz. The RR process is a sum of
 * sinusoids whose power follows ECGSYN's bimodal spectrum (Mayer waves LF at
 * 0.1 Hz, respiratory sinus arrhythmia HF at 0.25 Hz, σ 0.01 Hz each, LF/HF
 * 0.5) with random phases from the seed, scaled to the requested HRV
 * standard deviation; RR is drawn once per beat (at the T–P boundary).
 * Options add premature ventricular beats and AF-like irregular rhythm.
 * z is scaled so that the R peak of a normal beat is `amplitudeMv` above the
 * baseline. Deterministic given the seed, whatever the query times.
 */
import type { EcgSource } from './types.ts'
import { createRng, type Rng } from '../../protocol/node/rng.ts'

export interface EcgSynthOptions {
  seed?: number
  /** Mean heart rate, beats/min; default 72. */
  heartRateBpm?: number
  /** Standard deviation of the heart rate, beats/min; default 2. */
  hrvStdBpm?: number
  /** R-peak height above baseline, mV; default 1.0. */
  amplitudeMv?: number
  /** Respiratory baseline wander amplitude, mV (0.25 Hz); default 0. */
  baselineWanderMv?: number
  /** Fraction of beats replaced by premature ventricular contractions (0..1); default 0. */
  pvcRate?: number
  /** Atrial-fibrillation-like rhythm: irregularly irregular RR, no P waves, small f-waves. */
  af?: boolean
  /** Lead-off intervals [fromMs, toMs). */
  leadOff?: Array<[number, number]>
}

interface Wave {
  theta: number
  a: number
  b: number
}

const DEG = Math.PI / 180
/** ECGSYN's normal-beat parameters (angles in degrees, a, b). */
const NORMAL: Array<[number, number, number]> = [
  [-70, 1.2, 0.25], // P
  [-15, -5.0, 0.1], // Q
  [0, 30.0, 0.1], // R
  [15, -7.5, 0.1], // S
  [100, 0.75, 0.4], // T
]
/** A PVC: no P wave, wide and tall QRS, discordant (inverted) T. */
const PVC: Array<[number, number, number]> = [
  [-70, 0, 0.25],
  [-20, -2.0, 0.2],
  [0, 22.0, 0.28],
  [30, -12.0, 0.25],
  [110, -2.0, 0.45],
]

const STEP_S = 0.001
const HISTORY = 4096 // grid points kept for slightly out-of-order reads

export class EcgSynth implements EcgSource {
  readonly heartRateBpm: number
  private readonly rng: Rng
  private readonly rrMean: number
  private readonly rrStd: number
  private readonly wander: number
  private readonly pvcRate: number
  private readonly af: boolean
  private readonly leadOffs: Array<[number, number]>
  private readonly rrComponents: Array<{ f: number; amp: number; phase: number }> = []
  private readonly fWavePhase: number[]
  private scale = 1

  // integrator state
  private x = -1
  private y = 0
  private z = 0
  private stepIndex = 0
  private omega = 0
  private waves: Wave[] = []
  private normalWaves: Wave[] = []
  private pvcWaves: Wave[] = []
  private compensatory = false
  private calibrating = false
  private readonly hist = new Float64Array(HISTORY)
  /** Times (s) at which beats started, for tests and annotations. */
  readonly beatStarts: number[] = []
  readonly beatKinds: Array<'N' | 'V'> = []

  constructor(opts: EcgSynthOptions = {}) {
    const hr = opts.heartRateBpm ?? 72
    const hrStd = opts.hrvStdBpm ?? 2
    const amp = opts.amplitudeMv ?? 1
    if (!(hr >= 20 && hr <= 250)) throw new RangeError(`heartRateBpm: expected 20..250, got ${hr}`)
    if (!(hrStd >= 0 && hrStd < hr / 3)) throw new RangeError(`hrvStdBpm: expected 0..${(hr / 3).toFixed(1)}, got ${hrStd}`)
    if (!(amp > 0)) throw new RangeError(`amplitudeMv: expected > 0, got ${amp}`)
    const pvc = opts.pvcRate ?? 0
    if (!(pvc >= 0 && pvc <= 0.5)) throw new RangeError(`pvcRate: expected 0..0.5, got ${pvc}`)
    this.heartRateBpm = hr
    this.rng = createRng(opts.seed ?? 1)
    this.rrMean = 60 / hr
    this.rrStd = (60 * hrStd) / (hr * hr) // ECGSYN: rrstd = 60·hrstd/hrmean²
    this.wander = opts.baselineWanderMv ?? 0
    this.pvcRate = pvc
    this.af = opts.af ?? false
    this.leadOffs = (opts.leadOff ?? []).map(([a, b]) => {
      if (!(b > a)) throw new RangeError(`leadOff: expected [fromMs, toMs) with toMs > fromMs, got [${a}, ${b}]`)
      return [a, b] as [number, number]
    })

    // ECGSYN's heart-rate scaling of the wave widths and positions.
    const hrfact = Math.sqrt(hr / 60)
    const hrfact2 = Math.sqrt(hrfact)
    const posScale = [hrfact2, hrfact, 1, hrfact, hrfact2]
    const mk = (table: Array<[number, number, number]>) =>
      table.map(([deg, a, b], i) => ({ theta: deg * DEG * posScale[i], a, b: b * hrfact }))
    this.normalWaves = mk(NORMAL)
    this.pvcWaves = mk(PVC)
    if (this.af) this.normalWaves[0] = { ...this.normalWaves[0], a: 0 }

    // RR spectrum: Gaussians at 0.1 Hz (LF) and 0.25 Hz (HF), c = 0.01 Hz, LF/HF = 0.5.
    const df = 0.002
    let power = 0
    for (let f = df; f < 0.5; f += df) {
      const s = 0.5 * Math.exp(-((f - 0.1) ** 2) / (2 * 0.01 ** 2)) + Math.exp(-((f - 0.25) ** 2) / (2 * 0.01 ** 2))
      if (s < 1e-6) continue
      const amp2 = s * df
      power += amp2 / 2
      this.rrComponents.push({ f, amp: Math.sqrt(amp2), phase: 2 * Math.PI * this.rng.next() })
    }
    const norm = power > 0 ? this.rrStd / Math.sqrt(power) : 0
    for (const c of this.rrComponents) c.amp *= norm
    this.fWavePhase = [2 * Math.PI * this.rng.next(), 2 * Math.PI * this.rng.next()]

    this.calibrate(amp)
  }

  /** Runs a few normal beats to find the R height in model units, then restarts from the initial state. */
  private calibrate(amplitudeMv: number): void {
    let peak = 0
    this.calibrating = true
    this.restart()
    for (let i = 0; i < 4000; i++) {
      this.rk4(i * STEP_S)
      if (this.z > peak) peak = this.z
    }
    this.calibrating = false
    this.scale = peak > 0 ? amplitudeMv / peak : 1
    this.restart()
  }

  /**
   * Initial state: on the limit cycle at θ = π (between T and P). The first
   * integration step crosses ±π, which starts beat 1 and draws its RR.
   */
  private restart(): void {
    this.x = -1
    this.y = 0
    this.z = 0
    this.stepIndex = 0
    this.hist[0] = 0
    this.beatStarts.length = 0
    this.beatKinds.length = 0
    this.compensatory = false
    this.omega = (2 * Math.PI) / this.rrMean
    this.waves = this.normalWaves
  }

  /** RR interval (s) for a beat starting at time t. */
  private rrAt(t: number): number {
    if (this.calibrating) return this.rrMean // calibrate the R height at the mean rate
    if (this.af) {
      // Irregularly irregular: independent log-normal intervals around the mean.
      return Math.min(2.0, Math.max(0.3, this.rrMean * Math.exp(0.18 * this.rng.gaussian())))
    }
    let rr = this.rrMean
    for (const c of this.rrComponents) rr += c.amp * Math.cos(2 * Math.PI * c.f * t + c.phase)
    return Math.max(0.25, rr)
  }

  private startBeat(t: number): void {
    let rr = this.rrAt(t)
    let kind: 'N' | 'V' = 'N'
    if (this.compensatory) {
      rr *= 1.4 // compensatory pause after a PVC
      this.compensatory = false
    } else if (!this.calibrating && this.pvcRate > 0 && this.rng.next() < this.pvcRate) {
      kind = 'V'
      rr *= 0.65 // premature
      this.compensatory = true
    }
    this.omega = (2 * Math.PI) / rr
    this.waves = kind === 'V' ? this.pvcWaves : this.normalWaves
    this.beatStarts.push(t)
    this.beatKinds.push(kind)
  }

  private deriv(t: number, x: number, y: number, z: number, out: number[]): void {
    const alpha = 1 - Math.sqrt(x * x + y * y)
    const theta = Math.atan2(y, x)
    let dz = 0
    for (const w of this.waves) {
      let d = theta - w.theta
      d -= 2 * Math.PI * Math.round(d / (2 * Math.PI)) // wrap to [−π, π]
      dz -= w.a * d * Math.exp(-(d * d) / (2 * w.b * w.b))
    }
    const z0 = this.wander === 0 ? 0 : (this.wander / this.scale) * Math.sin(2 * Math.PI * 0.25 * t)
    out[0] = alpha * x - this.omega * y
    out[1] = alpha * y + this.omega * x
    out[2] = dz - (z - z0)
  }

  private readonly k = [[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]

  /** One RK4 step from time t; starts a new beat when θ wraps through ±π. */
  private rk4(t: number): void {
    const h = STEP_S
    const [k1, k2, k3, k4] = this.k
    const { x, y, z } = this
    this.deriv(t, x, y, z, k1)
    this.deriv(t + h / 2, x + (h / 2) * k1[0], y + (h / 2) * k1[1], z + (h / 2) * k1[2], k2)
    this.deriv(t + h / 2, x + (h / 2) * k2[0], y + (h / 2) * k2[1], z + (h / 2) * k2[2], k3)
    this.deriv(t + h, x + h * k3[0], y + h * k3[1], z + h * k3[2], k4)
    const thetaBefore = Math.atan2(y, x)
    this.x = x + (h / 6) * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
    this.y = y + (h / 6) * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
    this.z = z + (h / 6) * (k1[2] + 2 * k2[2] + 2 * k3[2] + k4[2])
    const thetaAfter = Math.atan2(this.y, this.x)
    if (thetaBefore > Math.PI / 2 && thetaAfter < -Math.PI / 2) this.startBeat(t + h)
  }

  private fWaves(t: number): number {
    if (!this.af) return 0
    return 0.04 * Math.sin(2 * Math.PI * 5.7 * t + this.fWavePhase[0]) + 0.03 * Math.sin(2 * Math.PI * 6.6 * t + this.fWavePhase[1])
  }

  /** Lead potential in mV at tMs (linear between the 1 kHz integration points). */
  mv(tMs: number): number {
    if (!Number.isFinite(tMs) || tMs < 0) throw new RangeError(`tMs: expected a finite time >= 0, got ${tMs}`)
    const pos = tMs / (STEP_S * 1000)
    const i0 = Math.floor(pos)
    if (i0 < this.stepIndex - HISTORY + 2) throw new RangeError(`tMs: ${tMs} is more than ${HISTORY - 2} ms behind the latest sample; sample in increasing time order`)
    while (this.stepIndex < i0 + 1) {
      this.rk4(this.stepIndex * STEP_S)
      this.stepIndex++
      this.hist[this.stepIndex % HISTORY] = this.z
    }
    const frac = pos - i0
    const z = this.hist[i0 % HISTORY] * (1 - frac) + this.hist[(i0 + 1) % HISTORY] * frac
    return z * this.scale + this.fWaves(tMs / 1000)
  }

  leadOff(tMs: number): boolean {
    for (const [a, b] of this.leadOffs) if (tMs >= a && tMs < b) return true
    return false
  }
}
