/**
 * Alarm-log records: one ledger leaf per alarm event (an alarm's start, escalation, the end of
 * its condition, an acknowledgement, a silence, a change of a patient's alarm limits), written
 * by the gateway that raised it, so who did what to which alarm, and when, is provable like a
 * frame (docs/alarms.md, docs/ledger.md "Alarm events").
 *
 * The leaf is the RFC 6962 hash of the event's deterministic CBOR (RFC 8949 §4.2.1): a map
 * with text keys, integers for times. No signature of its own: the gateway's signed block
 * over the leaf is what makes it the gateway's word.
 */
import { decodeCbor, encodeCbor, type CborValue } from './cbor.ts'
import { RecordError } from './records.ts'

export const ALARM_EVENT_TYPES = ['start', 'escalate', 'end', 'ack', 'silence', 'limits'] as const
export type AlarmEventType = (typeof ALARM_EVENT_TYPES)[number]
export type AlarmPriority = 'high' | 'medium' | 'low'
export type AlarmKind = 'physiological' | 'technical'

/** A patient's alarm limits (a 'limits' event carries the whole set in force from then on). */
export interface AlarmLimitsRecord {
  [name: string]: number
}

export interface AlarmEvent {
  /** Format version: 1. */
  v: 1
  e: AlarmEventType
  /** Gateway time of the event, ms since epoch. */
  t: number
  /** The alarm's ID (absent on 'limits'). */
  id?: string
  deviceId?: string
  patientId?: string
  condition?: string
  /** At 'start' and 'escalate': the priority from then on. */
  priority?: AlarmPriority
  kind?: AlarmKind
  /** Who acknowledged, silenced or changed limits (user ID, or 'admin-token'). */
  by?: string
  /** 'silence': for how long, seconds. */
  seconds?: number
  /** 'end': the alarm stays until acknowledged (a latching alarm not yet acknowledged). */
  latched?: boolean
  /** 'start' / 'escalate': the value that crossed the limit, if any. */
  value?: number
  /** 'limits': the new limits. */
  limits?: AlarmLimitsRecord
}

const MAX_BYTES = 4096
const STR_FIELDS = ['id', 'deviceId', 'patientId', 'condition', 'by'] as const

/** The event's deterministic CBOR bytes. Throws RecordError on a malformed event. */
export function encodeAlarmEvent(ev: AlarmEvent): Uint8Array {
  const m = new Map<string, CborValue>()
  m.set('v', 1)
  m.set('e', ev.e)
  m.set('t', ev.t)
  for (const k of STR_FIELDS) if (ev[k] !== undefined) m.set(k, ev[k]!)
  if (ev.priority !== undefined) m.set('priority', ev.priority)
  if (ev.kind !== undefined) m.set('kind', ev.kind)
  if (ev.seconds !== undefined) m.set('seconds', ev.seconds)
  if (ev.latched !== undefined) m.set('latched', ev.latched)
  // CBOR here has no floats: a measured value is kept in tenths.
  if (ev.value !== undefined) m.set('value10', Math.round(ev.value * 10))
  if (ev.limits !== undefined) m.set('limits', new Map(Object.entries(ev.limits).map(([k, x]) => [k, Math.round(x * 10)])))
  const bytes = encodeCbor(m)
  check(parseAlarmEvent(bytes))
  return bytes
}

function check(ev: AlarmEvent): void {
  if (ev.e !== 'limits' && (!ev.id || !ev.deviceId || !ev.condition)) throw new RecordError(`alarm event '${ev.e}': expected id, deviceId and condition`)
  if (ev.e === 'limits' && (!ev.patientId || !ev.limits)) throw new RecordError("alarm event 'limits': expected patientId and limits")
  if ((ev.e === 'start' || ev.e === 'escalate') && !ev.priority) throw new RecordError(`alarm event '${ev.e}': expected a priority`)
  if (ev.e === 'silence' && !(ev.seconds! > 0)) throw new RecordError("alarm event 'silence': expected seconds > 0")
}

const int = (v: CborValue | undefined, name: string): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new RecordError(`alarm event ${name}: expected a non-negative integer, got ${String(v)}`)
  return v
}
const str = (v: CborValue | undefined, name: string): string => {
  if (typeof v !== 'string' || v.length === 0 || v.length > 255) throw new RecordError(`alarm event ${name}: expected a string of 1..255 characters, got ${typeof v}`)
  return v
}
function oneOf<T extends string>(v: CborValue | undefined, name: string, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !allowed.includes(v as T)) throw new RecordError(`alarm event ${name}: expected one of ${allowed.join(', ')}, got ${String(v)}`)
  return v as T
}

/** Parses and checks an alarm event's CBOR bytes; throws RecordError if malformed. */
export function parseAlarmEvent(bytes: Uint8Array): AlarmEvent {
  if (bytes.length > MAX_BYTES) throw new RecordError(`alarm event: ${bytes.length} bytes, at most ${MAX_BYTES}`)
  let m: CborValue
  try {
    m = decodeCbor(bytes)
  } catch (e) {
    throw new RecordError(`alarm event: ${(e as Error).message}`)
  }
  if (!(m instanceof Map)) throw new RecordError('alarm event: expected a CBOR map')
  if (m.get('v') !== 1) throw new RecordError(`alarm event: version ${String(m.get('v'))}, expected 1`)
  const ev: AlarmEvent = { v: 1, e: oneOf(m.get('e'), 'e', ALARM_EVENT_TYPES), t: int(m.get('t'), 't') }
  for (const k of STR_FIELDS) if (m.has(k)) ev[k] = str(m.get(k), k)
  if (m.has('priority')) ev.priority = oneOf(m.get('priority'), 'priority', ['high', 'medium', 'low'] as const)
  if (m.has('kind')) ev.kind = oneOf(m.get('kind'), 'kind', ['physiological', 'technical'] as const)
  if (m.has('seconds')) ev.seconds = int(m.get('seconds'), 'seconds')
  if (m.has('latched')) {
    const l = m.get('latched')
    if (typeof l !== 'boolean') throw new RecordError('alarm event latched: expected a boolean')
    ev.latched = l
  }
  if (m.has('value10')) {
    const x = m.get('value10')
    if (typeof x !== 'number' || !Number.isSafeInteger(x)) throw new RecordError('alarm event value10: expected an integer')
    ev.value = x / 10
  }
  if (m.has('limits')) {
    const l = m.get('limits')
    if (!(l instanceof Map)) throw new RecordError('alarm event limits: expected a map')
    const out: AlarmLimitsRecord = {}
    for (const [k, x] of l) out[str(typeof k === 'string' ? k : undefined, 'limits key')] = int(x, `limits.${String(k)}`) / 10
    ev.limits = out
  }
  check(ev)
  return ev
}
