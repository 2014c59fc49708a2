/**
 * Fault scripts for a fleet, as text (the CLI's `--fault`) or objects:
 *
 *   TARGET:KIND[=ARG]@START[+DURATION]
 *
 *   TARGET    devN (board index), devA-B (a range), all, or a device ID
 *   KIND      wifi-drop       WiFi gone for DURATION (default 30s)
 *             gateway-restart every board's MQTT connection reset, new ones refused for
 *                             DURATION (default 5s); TARGET must be all (one proxy for the fleet)
 *             clock-skew=±T   the board's wall clock jumps by T (e.g. clock-skew=+90s)
 *             flash-full      every new Storage file fails, for DURATION (default: to the end)
 *             brown-out[=F]   the next Storage write stops after fraction F (default 0.5) and the board reboots
 *             i2c-gone=DEV    DEV (se | ppg | 0xNN) stops answering for DURATION (default: to the end)
 *             lead-off        ECG electrodes off for DURATION (default 10s)
 *   START, DURATION, T   a number with unit ms, s or m (10s, 1.5m, 250ms); a bare number is seconds
 *
 * e.g. `dev0:wifi-drop@10s+30s`, `all:gateway-restart@20s+5s`, `dev2-4:i2c-gone=ppg@5s+10s`.
 * Times are virtual (board) time since the fleet started.
 */
import { DEFAULTS } from '../../firmware/config.ts'

export const FAULT_KINDS = ['wifi-drop', 'gateway-restart', 'clock-skew', 'flash-full', 'brown-out', 'i2c-gone', 'lead-off'] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

export type FaultTarget = { all: true } | { from: number; to: number } | { id: string }

export interface Fault {
  target: FaultTarget
  kind: FaultKind
  /** Virtual ms since the fleet started. */
  atMs: number
  /** Virtual ms; undefined = the kind's default. */
  durationMs?: number
  /** clock-skew: ms; brown-out: fraction; i2c-gone: I2C address. */
  arg?: number
}

export class FaultSpecError extends Error {
  override name = 'FaultSpecError'
}

/** The I2C parts of the reference wiring, by name (i2c-gone=DEV). */
const I2C_NAMES: Record<string, number> = { se: DEFAULTS.seAddress, atecc608: DEFAULTS.seAddress, ppg: DEFAULTS.ppgAddress, max30102: DEFAULTS.ppgAddress }

/** "10s" / "250ms" / "1.5m" / "+90s" / "-2m" / "12" (seconds) → ms. */
export function parseDuration(text: string, what: string): number {
  const m = /^([+-]?\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim())
  if (!m) throw new FaultSpecError(`${what}: expected a time like 10s, 250ms or 1.5m, got ${JSON.stringify(text)}`)
  const n = Number(m[1])
  return Math.round(m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000)
}

/** Parses one fault spec; throws FaultSpecError with the reason. */
export function parseFault(spec: string): Fault {
  const m = /^([^:]+):([a-z0-9-]+)(?:=([^@]+))?@([^+]+)(?:\+(.+))?$/.exec(spec.trim())
  if (!m) throw new FaultSpecError(`fault ${JSON.stringify(spec)}: expected TARGET:KIND[=ARG]@START[+DURATION], e.g. dev0:wifi-drop@10s+30s`)
  const [, targetText, kindText, argText, startText, durText] = m
  if (!(FAULT_KINDS as readonly string[]).includes(kindText!)) throw new FaultSpecError(`fault ${JSON.stringify(spec)}: unknown kind '${kindText}' (expected one of ${FAULT_KINDS.join(', ')})`)
  const kind = kindText as FaultKind
  let target: FaultTarget
  const range = /^dev(\d+)(?:-(\d+))?$/.exec(targetText!)
  if (targetText === 'all') target = { all: true }
  else if (range) {
    const from = Number(range[1])
    const to = range[2] === undefined ? from : Number(range[2])
    if (to < from) throw new FaultSpecError(`fault ${JSON.stringify(spec)}: range dev${from}-${to} is empty`)
    target = { from, to }
  } else if (/^[A-Za-z0-9]{17}$/.test(targetText!)) target = { id: targetText! }
  else throw new FaultSpecError(`fault ${JSON.stringify(spec)}: target must be devN, devA-B, all or a device ID, got '${targetText}'`)
  if (kind === 'gateway-restart' && !('all' in target)) throw new FaultSpecError(`fault ${JSON.stringify(spec)}: gateway-restart affects every board; use target all`)
  const atMs = parseDuration(startText!, `fault ${JSON.stringify(spec)} start`)
  if (atMs < 0) throw new FaultSpecError(`fault ${JSON.stringify(spec)}: start must be >= 0`)
  const durationMs = durText === undefined ? undefined : parseDuration(durText, `fault ${JSON.stringify(spec)} duration`)
  if (durationMs !== undefined && durationMs <= 0) throw new FaultSpecError(`fault ${JSON.stringify(spec)}: duration must be > 0`)
  let arg: number | undefined
  if (kind === 'clock-skew') {
    if (argText === undefined) throw new FaultSpecError(`fault ${JSON.stringify(spec)}: clock-skew needs =±T, e.g. clock-skew=+90s`)
    arg = parseDuration(argText, `fault ${JSON.stringify(spec)} skew`)
  } else if (kind === 'brown-out') {
    arg = argText === undefined ? 0.5 : Number(argText)
    if (!(arg >= 0 && arg < 1)) throw new FaultSpecError(`fault ${JSON.stringify(spec)}: brown-out fraction must be in 0..1 (exclusive), got ${argText}`)
  } else if (kind === 'i2c-gone') {
    if (argText === undefined) throw new FaultSpecError(`fault ${JSON.stringify(spec)}: i2c-gone needs =se, =ppg or =0xNN`)
    arg = I2C_NAMES[argText.toLowerCase()] ?? (/^0x[0-9a-f]{1,2}$/i.test(argText) ? parseInt(argText, 16) : NaN)
    if (!Number.isFinite(arg)) throw new FaultSpecError(`fault ${JSON.stringify(spec)}: unknown I2C device '${argText}' (se, ppg or 0xNN)`)
  } else if (argText !== undefined) throw new FaultSpecError(`fault ${JSON.stringify(spec)}: ${kind} takes no =ARG`)
  return { target, kind, atMs, durationMs, arg }
}

/** Does this fault apply to board `index` with device ID `id`? */
export function faultTargets(f: Fault, index: number, id: string): boolean {
  const t = f.target
  if ('all' in t) return true
  if ('id' in t) return t.id === id
  return index >= t.from && index <= t.to
}

/** What a fault does to one board (or the fleet), scheduled by the fleet at fault times. */
export interface FaultAction {
  atMs: number
  fault: Fault
  /** 'start' applies the fault, 'end' undoes it (faults with a duration that need undoing). */
  phase: 'start' | 'end'
}

/** Start (and end, where the fault needs undoing) events in time order. */
export function faultTimeline(faults: Fault[]): FaultAction[] {
  const out: FaultAction[] = []
  for (const f of faults) {
    out.push({ atMs: f.atMs, fault: f, phase: 'start' })
    if ((f.kind === 'flash-full' || f.kind === 'i2c-gone') && f.durationMs !== undefined) out.push({ atMs: f.atMs + f.durationMs, fault: f, phase: 'end' })
  }
  return out.sort((a, b) => a.atMs - b.atMs)
}

export const DEFAULT_DURATION: Partial<Record<FaultKind, number>> = { 'wifi-drop': 30_000, 'gateway-restart': 5_000, 'lead-off': 10_000 }
