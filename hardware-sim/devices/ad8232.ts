/**
 * AD8232 single-lead ECG front end (Analog Devices datasheet, "cardiac
 * monitor" configuration as on the common breakout boards):
 *
 * - OUTPUT = REFOUT (mid-rail, 1.65 V at 3.3 V supply) + gain × lead
 *   potential, gain 1100 V/V (instrumentation amp 100 × op amp 11), through
 *   the 0.5–40 Hz passband, clipped to the rails 0..3.3 V (the ESP32 ADC
 *   saturates there too). The passband is a first-order high-pass plus a
 *   first-order low-pass integrated at 1 kHz; pass `highPassHz: 0,
 *   lowPassHz: Infinity` for a flat gain.
 * - LO+ / LO−: DC lead-off comparators, high while an electrode is off. The
 *   source reports one lead-off state, so both pins follow it; the
 *   instrumentation amp then saturates and OUTPUT sits at the positive rail.
 * - SDN (active low): low = shutdown. The real OUTPUT then floats; the
 *   model returns mid-rail and holds LO± low (comparators off).
 *
 * Passive like every device here: the filters catch up to the time of each
 * read of OUTPUT.
 */
import type { AnalogSource, DigitalSink, DigitalSource } from '../hardware.ts'
import type { EcgSource } from '../signals/types.ts'

export interface Ad8232Options {
  source: EcgSource
  /** Overall gain in V/V; default 1100. */
  gain?: number
  /** Supply voltage (rails); default 3.3 V. REFOUT is half of it. */
  supplyV?: number
  /** High-pass corner in Hz (0 = DC coupled); default 0.5. */
  highPassHz?: number
  /** Low-pass corner in Hz (Infinity = none); default 40. */
  lowPassHz?: number
}

/** Internal integration step of the passband filters. */
const STEP_MS = 1
/** After a gap longer than this the filters restart from the last second (older history has decayed). */
const MAX_CATCHUP_MS = 10_000

export class Ad8232 {
  readonly output: AnalogSource
  readonly loPlus: DigitalSource
  readonly loMinus: DigitalSource
  /** Shutdown input, active low: set(false) shuts the part down. */
  readonly sdn: DigitalSink
  readonly gain: number
  readonly supplyV: number
  private readonly source: EcgSource
  private readonly hpA: number // y[n] = a (y[n−1] + x[n] − x[n−1])
  private readonly lpB: number // y += b (x − y)
  private running = true
  private tMs = NaN
  private xPrev = 0
  private hp = 0
  private lp = 0

  constructor(opts: Ad8232Options) {
    if (!opts || typeof opts.source?.mv !== 'function') throw new TypeError('source: expected an EcgSource with mv(tMs)')
    this.source = opts.source
    this.gain = opts.gain ?? 1100
    this.supplyV = opts.supplyV ?? 3.3
    const hpHz = opts.highPassHz ?? 0.5
    const lpHz = opts.lowPassHz ?? 40
    if (!(this.gain > 0)) throw new RangeError(`gain: expected > 0, got ${this.gain}`)
    if (!(this.supplyV > 0)) throw new RangeError(`supplyV: expected > 0, got ${this.supplyV}`)
    if (!(hpHz >= 0) || !(lpHz > hpHz)) throw new RangeError(`passband: expected 0 <= highPassHz < lowPassHz, got ${hpHz}..${lpHz}`)
    const dt = STEP_MS / 1000
    this.hpA = hpHz === 0 ? 1 : 1 / (1 + 2 * Math.PI * hpHz * dt)
    this.lpB = lpHz === Infinity ? 1 : (2 * Math.PI * lpHz * dt) / (1 + 2 * Math.PI * lpHz * dt)
    this.output = { voltage: (nowMs) => this.outputVoltage(nowMs) }
    this.loPlus = { level: (nowMs) => this.running && this.source.leadOff(nowMs) }
    this.loMinus = { level: (nowMs) => this.running && this.source.leadOff(nowMs) }
    this.sdn = {
      set: (level) => {
        // Leaving shutdown restarts the filters (the coupling capacitors recharge).
        if (level && !this.running) this.tMs = NaN
        this.running = level
      },
    }
  }

  /** Expected steady-state gain magnitude at `hz` (for tests and documentation of the passband). */
  gainAt(hz: number): number {
    const w = 2 * Math.PI * hz * (STEP_MS / 1000)
    // Exact frequency response of the two discrete one-pole sections.
    const z = { re: Math.cos(w), im: -Math.sin(w) } // z^-1
    const div = (a: { re: number; im: number }, b: { re: number; im: number }) => {
      const d = b.re * b.re + b.im * b.im
      return { re: (a.re * b.re + a.im * b.im) / d, im: (a.im * b.re - a.re * b.im) / d }
    }
    const hp = div({ re: this.hpA * (1 - z.re), im: -this.hpA * z.im }, { re: 1 - this.hpA * z.re, im: -this.hpA * z.im })
    const lp = div({ re: this.lpB, im: 0 }, { re: 1 - (1 - this.lpB) * z.re, im: -(1 - this.lpB) * z.im })
    return this.gain * Math.hypot(hp.re, hp.im) * Math.hypot(lp.re, lp.im)
  }

  private outputVoltage(nowMs: number): number {
    if (!Number.isFinite(nowMs)) throw new RangeError(`nowMs: expected a finite time, got ${nowMs}`)
    const mid = this.supplyV / 2
    if (!this.running) return mid
    if (this.source.leadOff(nowMs)) {
      this.tMs = NaN // the filters restart when the electrode is back
      return this.supplyV
    }
    if (Number.isNaN(this.tMs) || nowMs - this.tMs > MAX_CATCHUP_MS) {
      // Start settled on the current input: no step transient from an arbitrary initial state.
      this.tMs = Math.max(Number.isNaN(this.tMs) ? nowMs : this.tMs, nowMs - 1000)
      this.xPrev = this.source.mv(this.tMs)
      this.hp = this.hpA === 1 ? this.xPrev : 0
      this.lp = this.hp
    }
    if (nowMs < this.tMs) throw new RangeError(`nowMs: time went backwards (${nowMs} < ${this.tMs})`)
    while (this.tMs + STEP_MS <= nowMs) {
      this.tMs += STEP_MS
      this.stepTo(this.tMs)
    }
    // Between 1 ms steps the output holds its last value (the board's ADC runs well below 1 kHz).
    const v = mid + (this.gain * this.lp) / 1000
    return Math.min(this.supplyV, Math.max(0, v))
  }

  private stepTo(tMs: number): void {
    const x = this.source.mv(tMs)
    this.hp = this.hpA * (this.hp + x - this.xPrev)
    this.xPrev = x
    this.lp += this.lpB * (this.hp - this.lp)
  }
}
