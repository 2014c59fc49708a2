/**
 * The alarm conditions the gateway watches, with their priority, delay, hysteresis and
 * latching, and the per-patient limits with their adult defaults. docs/alarms.md gives each
 * row's reason and the standard clause behind it; the values here are the ones it explains.
 *
 * Priorities follow IEC 60601-1-8 §6.1.2 (high: immediate response, medium: prompt, low:
 * awareness) as IEC 60601-2-27 and ISO 80601-2-61 assign them: asystole, VF and VT high
 * (60601-2-27 201.6.1.2), limit alarms medium, technical alarms (INOP) low or medium.
 */
import type { AlarmKind, AlarmPriority } from '../ledger/alarm-record.ts'

export type { AlarmKind, AlarmPriority }

export const PHYSIOLOGICAL = ['hr-low', 'hr-high', 'spo2-low', 'asystole', 'vf', 'vt', 'af', 'brady', 'tachy'] as const
export const TECHNICAL = ['lead-off', 'probe-off', 'device-offline', 'signal-noise', 'battery-low', 'clock-bad', 'frames-rejected', 'storage'] as const
export type Condition = (typeof PHYSIOLOGICAL)[number] | (typeof TECHNICAL)[number]

export interface ConditionSpec {
  kind: AlarmKind
  /** Priority at start (spo2-low escalates to high below the critical limit). */
  priority: AlarmPriority
  /**
   * Alarm-condition delay (IEC 60601-1-8 §6.5.4): how long the condition must hold, on the
   * gateway's clock, before the alarm starts. Added to any delay inside the detector (the
   * rhythm calls of signal/rhythm.ts already wait 4-5 s, see docs/alarms.md).
   */
  delayMs: number
  /** Latching (§6.10): stays until acknowledged even after the condition ends. High-priority physiological ones only. */
  latching: boolean
}

const phys = (priority: AlarmPriority, delayMs: number): ConditionSpec => ({ kind: 'physiological', priority, delayMs, latching: priority === 'high' })
const tech = (priority: AlarmPriority, delayMs: number): ConditionSpec => ({ kind: 'technical', priority, delayMs, latching: false })

export const CONDITIONS: Record<Condition, ConditionSpec> = {
  'hr-low': phys('medium', 10_000),
  'hr-high': phys('medium', 10_000),
  'spo2-low': phys('medium', 10_000),
  asystole: phys('high', 0),
  vf: phys('high', 0),
  vt: phys('high', 2_000),
  af: phys('low', 30_000),
  brady: phys('medium', 0),
  tachy: phys('medium', 0),
  'lead-off': tech('medium', 5_000),
  'probe-off': tech('low', 10_000),
  'device-offline': tech('medium', 0),
  'signal-noise': tech('low', 10_000),
  'battery-low': tech('low', 30_000),
  'clock-bad': tech('low', 30_000),
  'frames-rejected': tech('medium', 0),
  storage: tech('medium', 0),
}

/** Per-patient limits (adult defaults in DEFAULT_LIMITS). */
export interface AlarmLimits {
  /** SpO2 below this (%) is spo2-low, medium priority. */
  spo2Low: number
  /** SpO2 below this (%) escalates spo2-low to high priority. */
  spo2Critical: number
  /** HR below this (bpm) is hr-low. */
  hrLow: number
  /** HR above this (bpm) is hr-high. */
  hrHigh: number
}

export const DEFAULT_LIMITS: AlarmLimits = { spo2Low: 90, spo2Critical: 85, hrLow: 50, hrHigh: 120 }

/** Engine settings that are not per patient (all times ms). */
export interface EngineSettings {
  /** HR hysteresis (bpm): hr-low ends at hrLow + this, hr-high at hrHigh - this. */
  hrHysteresis: number
  /** SpO2 hysteresis (%): spo2-low ends at spo2Low + this; high goes back to medium at spo2Critical + this. */
  spo2Hysteresis: number
  /** A value with a lower quality (0-100) is not trusted: it neither starts nor ends an alarm. */
  minQuality: number
  /** device-offline when no frame came for this long. */
  offlineMs: number
  /** battery-low below this (mV; a LiPo cell near 10 % charge). */
  batteryLowMv: number
  /** battery-low ends above batteryLowMv + this. */
  batteryHysteresisMv: number
  /** frames-rejected when at least `rejectCount` frames were rejected within `rejectWindowMs`; ends after a window without one. */
  rejectCount: number
  rejectWindowMs: number
  /** af alarms only on new onset: no AF call of the device started within this long before. */
  afQuietMs: number
  /** Condition delays other than CONDITIONS' (ms), e.g. to measure their effect (scripts/alarm-false-rates.ts). */
  delayMs?: Partial<Record<Condition, number>>
}

export const DEFAULT_SETTINGS: EngineSettings = {
  hrHysteresis: 5,
  spo2Hysteresis: 2,
  minQuality: 50,
  offlineMs: 15_000,
  batteryLowMv: 3500,
  batteryHysteresisMv: 100,
  rejectCount: 3,
  rejectWindowMs: 60_000,
  afQuietMs: 3600_000,
}

/** Checks limits from a client (fields left out keep their value in `base`): names them and says what was expected. */
export function checkLimits(x: unknown, base: AlarmLimits = DEFAULT_LIMITS): AlarmLimits {
  if (!x || typeof x !== 'object' || Array.isArray(x)) throw new TypeError(`limits: expected an object, got ${Array.isArray(x) ? 'an array' : typeof x}`)
  const o = x as Record<string, unknown>
  const out = { ...base }
  const ranges: Record<keyof AlarmLimits, [number, number]> = { spo2Low: [50, 100], spo2Critical: [50, 100], hrLow: [15, 300], hrHigh: [15, 300] }
  for (const k of Object.keys(o)) if (!(k in ranges)) throw new TypeError(`limits: unknown field '${k.slice(0, 40)}' (expected ${Object.keys(ranges).join(', ')})`)
  for (const [k, [lo, hi]] of Object.entries(ranges) as [keyof AlarmLimits, [number, number]][]) {
    if (o[k] === undefined) continue
    const v = o[k]
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) throw new TypeError(`limits.${k}: expected a number in ${lo}..${hi}, got ${JSON.stringify(v)}`)
    out[k] = Math.round(v * 10) / 10
  }
  if (out.spo2Critical > out.spo2Low) throw new TypeError(`limits: spo2Critical (${out.spo2Critical}) must not be above spo2Low (${out.spo2Low})`)
  if (out.hrLow >= out.hrHigh) throw new TypeError(`limits: hrLow (${out.hrLow}) must be below hrHigh (${out.hrHigh})`)
  return out
}
