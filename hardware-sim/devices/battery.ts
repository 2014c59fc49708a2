/**
 * LiPo cell on an ADC pin through a resistor divider. State of charge falls
 * linearly with time (constant average load) over `runtimeMs`; the cell
 * voltage follows a typical LiPo open-circuit curve from 4.2 V (full) to
 * 3.3 V (empty). The board reads `voltage()` = cell / divider ratio.
 * Below `brownOutV` the 3.3 V regulator can no longer hold the ESP32 up:
 * the board asks `brownedOut()` and resets; the fault injector causes
 * brown-outs with `sag()` (a load dip) or `setStateOfCharge()`.
 */
import type { AnalogSource } from '../hardware.ts'

export interface BatteryOptions {
  /** Time from full to empty at the average load, ms. */
  runtimeMs: number
  /** State of charge at board time `startMs` (0..1); default 1. */
  startSoc?: number
  startMs?: number
  /** Divider ratio Vcell / Vpin; default 2 (two equal resistors). */
  dividerRatio?: number
  /** Cell voltage under which the board browns out; default 3.3 V. */
  brownOutV?: number
}

/** Typical LiPo open-circuit voltage versus state of charge (0, 5, ..., 100 %). */
export const LIPO_CURVE_V = [3.3, 3.61, 3.69, 3.71, 3.73, 3.75, 3.77, 3.79, 3.8, 3.82, 3.84, 3.85, 3.87, 3.91, 3.95, 3.98, 4.02, 4.08, 4.11, 4.15, 4.2] as const

/** Cell voltage at a state of charge, by linear interpolation of the curve. */
export function lipoVoltage(soc: number): number {
  const s = Math.min(1, Math.max(0, soc)) * (LIPO_CURVE_V.length - 1)
  const i = Math.min(LIPO_CURVE_V.length - 2, Math.floor(s))
  return LIPO_CURVE_V[i] + (LIPO_CURVE_V[i + 1] - LIPO_CURVE_V[i]) * (s - i)
}

interface Sag {
  volts: number
  fromMs: number
  toMs: number
}

export class Battery implements AnalogSource {
  readonly dividerRatio: number
  brownOutV: number
  private readonly runtimeMs: number
  private socAt: number
  private socAtMs: number
  private sags: Sag[] = []

  constructor(opts: BatteryOptions) {
    if (!opts || !(opts.runtimeMs > 0)) throw new RangeError(`runtimeMs: expected > 0, got ${opts?.runtimeMs}`)
    const soc = opts.startSoc ?? 1
    if (!(soc >= 0 && soc <= 1)) throw new RangeError(`startSoc: expected 0..1, got ${soc}`)
    this.dividerRatio = opts.dividerRatio ?? 2
    if (!(this.dividerRatio >= 1)) throw new RangeError(`dividerRatio: expected >= 1, got ${this.dividerRatio}`)
    this.brownOutV = opts.brownOutV ?? 3.3
    this.runtimeMs = opts.runtimeMs
    this.socAt = soc
    this.socAtMs = opts.startMs ?? 0
  }

  stateOfCharge(nowMs: number): number {
    return Math.max(0, this.socAt - (nowMs - this.socAtMs) / this.runtimeMs)
  }

  /** Cell voltage, including any injected sag active at nowMs. */
  cellVoltage(nowMs: number): number {
    let v = lipoVoltage(this.stateOfCharge(nowMs))
    for (const s of this.sags) if (nowMs >= s.fromMs && nowMs < s.toMs) v -= s.volts
    return Math.max(0, v)
  }

  /** Voltage at the ADC pin. */
  voltage(nowMs: number): number {
    return this.cellVoltage(nowMs) / this.dividerRatio
  }

  brownedOut(nowMs: number): boolean {
    return this.cellVoltage(nowMs) < this.brownOutV
  }

  /** Fault injection: the cell voltage drops by `volts` from fromMs until toMs (e.g. a radio burst on a worn cell). */
  sag(volts: number, fromMs: number, toMs: number): void {
    if (!(volts >= 0) || !(toMs > fromMs)) throw new RangeError(`sag: expected volts >= 0 and toMs > fromMs, got ${volts} V, ${fromMs}..${toMs}`)
    this.sags.push({ volts, fromMs, toMs })
  }

  /** Fault injection / charging: the state of charge becomes `soc` at nowMs and keeps discharging from there. */
  setStateOfCharge(soc: number, nowMs: number): void {
    if (!(soc >= 0 && soc <= 1)) throw new RangeError(`soc: expected 0..1, got ${soc}`)
    this.socAt = soc
    this.socAtMs = nowMs
  }
}
