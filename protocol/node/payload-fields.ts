/**
 * Field checks shared by the payload schemas of every frame version
 * (decode.ts for version 1, decode-v2.ts for version 2): each refuses with a
 * FrameError('schema') whose message names the field and its key.
 */
import { FrameError } from './errors.ts'
import { nodeHash } from './hash-node.ts'
import { isValidDeviceId } from '../portable/device-id.ts'
import { LIMITS, K, K2, type Derived, type FramePayload } from '../portable/frame.ts'
import type { FloatSeen } from './cbor-strict.ts'

export type PayloadMap = Map<unknown, unknown>

export const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array
export const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

export function schema(msg: string): never {
  throw new FrameError('schema', msg)
}

/** How a refused value is named in a message: the number itself, else its kind. */
export function shown(v: unknown): string {
  if (typeof v === 'number') return String(v)
  if (v instanceof Uint8Array) return `a byte string`
  if (Array.isArray(v)) return 'an array'
  if (v instanceof Map) return 'a map'
  return typeof v
}

/**
 * isValidDeviceId hashes the ID for its check character; every frame carries its ID
 * twice (kid, payload deviceId) and a device sends thousands of frames. Validity is a
 * pure function of the string, so IDs that passed are remembered (bounded; failures
 * are never cached and always re-checked).
 */
const validIds = new Set<string>()
export function validDeviceId(id: string): boolean {
  if (validIds.has(id)) return true
  if (!isValidDeviceId(nodeHash, id)) return false
  if (validIds.size >= 10_000) validIds.clear()
  validIds.add(id)
  return true
}

/** Largest seq and t0: the ledger stores both in 48 bits (ledger/records.ts), so a larger one is the frame's fault, refused here rather than failing at persist. */
const U48_MAX = 2 ** 48 - 1

const FIELD_NAMES: Record<number, string> = Object.fromEntries([...Object.entries(K), ...Object.entries(K2)].map(([name, key]) => [key, name]))

/**
 * Refuses the first float the strict gate found in a payload, naming the field
 * that holds it: every payload field of every version is an integer or made of
 * integers (text and byte strings aside), so a float is never what the schema wants.
 */
export function refusePayloadFloat(f: FloatSeen): never {
  if (f.isKey) schema(`payload key ${f.value} is a ${f.bits}-bit float (at byte ${f.at}); payload keys are integers`)
  const field = f.key === null ? 'payload' : FIELD_NAMES[f.key] !== undefined ? `${FIELD_NAMES[f.key]} (key ${f.key})` : `key ${f.key}`
  schema(`${field}: got the float ${f.value} (${f.bits}-bit, at byte ${f.at}); the frame schema has integers, never floats`)
}

export function uintField(m: PayloadMap, key: number, name: string, required: boolean, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = m.get(key)
  if (v === undefined) {
    if (required) schema(`missing ${name} (key ${key})`)
    return undefined
  }
  if (!isUint(v)) schema(`${name} (key ${key}) must be an unsigned integer, got ${typeof v === 'number' ? v : typeof v}`)
  if (v > max) schema(`${name} (key ${key}) must be at most ${max}, got ${v}`)
  return v
}

export function derivedField(m: PayloadMap, key: number, name: string, max: number): Derived | undefined {
  const v = m.get(key)
  if (v === undefined) return undefined
  if (!Array.isArray(v) || v.length !== 2 || !isUint(v[0]) || !isUint(v[1])) schema(`${name} (key ${key}) must be [value×10, quality]`)
  if (v[0] > max * 10) schema(`${name} (key ${key}) value ${v[0] / 10} exceeds ${max}`)
  if (v[1] > 100) schema(`${name} (key ${key}) quality must be 0..100, got ${v[1]}`)
  return { value: v[0] / 10, quality: v[1] }
}

/** deviceId, fw, seq, boot, t0, flags and dropped, checked in that order (the same in every version). */
export function headerFields(m: PayloadMap, v: number): FramePayload {
  const deviceId = m.get(K.deviceId)
  if (typeof deviceId !== 'string' || !validDeviceId(deviceId)) schema('deviceId (key 1) must be a valid device ID')
  const fw = m.get(K.fw)
  if (typeof fw !== 'string' || fw.length === 0 || fw.length > LIMITS.fwMaxLen) schema(`fw (key ${K.fw}) must be a text string of 1..${LIMITS.fwMaxLen} characters`)
  return {
    v,
    deviceId,
    seq: uintField(m, K.seq, 'seq', true, U48_MAX)!,
    boot: uintField(m, K.boot, 'boot', true)!,
    t0: uintField(m, K.t0, 't0', true, U48_MAX)!,
    flags: uintField(m, K.flags, 'flags', true)!,
    dropped: uintField(m, K.dropped, 'dropped', true)!,
    fw,
  }
}

/** hr, pr, spo2, batteryMv and tempC, in that order, onto `p`. */
export function trailerFields(m: PayloadMap, p: FramePayload): void {
  const hr = derivedField(m, K.hr, 'hr', 400)
  const pr = derivedField(m, K.pr, 'pr', 400)
  const spo2 = derivedField(m, K.spo2, 'spo2', 100)
  if (hr) p.hr = hr
  if (pr) p.pr = pr
  if (spo2) p.spo2 = spo2
  const batteryMv = uintField(m, K.batteryMv, 'batteryMv', false, 10000)
  if (batteryMv !== undefined) p.batteryMv = batteryMv
  const t = m.get(K.tempC)
  if (t !== undefined) {
    if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < -5000 || t > 15000) schema(`tempC (key ${K.tempC}) must be an integer in hundredths of °C, got ${String(t)}`)
    p.tempC = t
  }
}

/** A payload checked exactly like FramePayload but whose samples were only counted. */
export type LeanPayload = Omit<FramePayload, 'ecg' | 'red' | 'ir' | 'ecgFast'>
