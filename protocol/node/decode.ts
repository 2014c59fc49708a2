/**
 * Strict decoding of frames and auth tokens: the well-formedness gate
 * (cbor-strict.ts), then cbor-x, then the COSE profile and the payload schema
 * of the frame's version (1 here; 2, the sensors' FIFO bytes, in decode-v2.ts).
 * Every rejection is a FrameError whose code says which layer refused it and
 * whose message names the field.
 */
import { Decoder, Tag } from 'cbor-x'
import { assertStrictCbor, type FloatSeen } from './cbor-strict.ts'
import { FrameError, type FrameErrorCode } from './errors.ts'
import { ALG_ES256, ALG_HMAC256, HDR_ALG, HDR_KID, TAG_MAC0, TAG_SIGN1, sigStructure, macStructure } from '../portable/cose.ts'
import { K, LIMITS, FLAGS_KNOWN, FRAME_VERSION, FRAME_VERSION_2, samplesAgree, type FramePayload } from '../portable/frame.ts'
import { checkPayloadMapV2 } from './decode-v2.ts'
import { headerFields, isBytes, isUint, refusePayloadFloat, schema, trailerFields, uintField, validDeviceId } from './payload-fields.ts'
import { unpack, PACK_LIMIT } from '../portable/pack.ts'
import { AUTH_MARKER, type AuthClaims } from '../portable/auth-token.ts'

// int64AsNumber: 8-byte heads arrive as numbers; assertStrictCbor has already refused any beyond 2^53.
const decoder = new Decoder({ mapsAsObjects: false, useRecords: false, int64AsNumber: true } as ConstructorParameters<typeof Decoder>[0])
const EMPTY = new Uint8Array(0)

export type CoseKind = 'sign1' | 'mac0'

/** A COSE_Sign1 or COSE_Mac0 of our profile, before any signature check. */
export interface CoseMessage {
  kind: CoseKind
  alg: number
  kid: string
  protectedBytes: Uint8Array
  payloadBytes: Uint8Array
  /** Signature (r‖s, 64 bytes) or MAC tag (32 bytes). */
  tag: Uint8Array
  /** Sig_structure or MAC_structure: what the signature or MAC covers. */
  toBeAuthenticated: Uint8Array
}

export interface DecodedFrame extends CoseMessage {
  payload: FramePayload
}

export interface DecodedAuthToken extends CoseMessage {
  claims: AuthClaims
}

const floatText = (f: FloatSeen) => `the float ${f.value} (${f.bits}-bit, at byte ${f.at})`
const refuseFloat = (code: FrameErrorCode, what: string, why: string) => (f: FloatSeen): never => {
  throw new FrameError(code, `${what}: got ${floatText(f)}; ${why}`)
}
const headerFloat = refuseFloat('header', 'protected header', 'its labels and alg are integers')
const tokenFloat = refuseFloat('schema', 'auth token payload', 'iatMs and counter are integers')

const u8 = (b: Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)

/**
 * The gate, then cbor-x. Nothing in our profile is a float (every number is an
 * integer: labels, alg, payload fields, token claims), so a float the gate
 * found is refused here, by `onFloat`, before cbor-x turns 7.0 into 7. The COSE
 * envelope passes none: it holds no numbers outside its byte strings, so its
 * own checks already refuse a float wherever one stands.
 */
function decodeStrict(bytes: Uint8Array, what: string, onFloat: ((f: FloatSeen) => never) | null): unknown {
  const f = assertStrictCbor(bytes)
  if (f && onFloat) onFloat(f)
  try {
    return decoder.decode(bytes)
  } catch (err) {
    throw new FrameError('cbor', `${what}: ${(err as Error).message}`)
  }
}

/** Parses the COSE envelope and checks the protected header against our profile. */
export function decodeCose(bytes: Uint8Array, maxBytes = LIMITS.maxFrameBytes): CoseMessage {
  if (!(bytes instanceof Uint8Array)) throw new FrameError('size', `expected bytes, got ${typeof bytes}`)
  if (bytes.length === 0) throw new FrameError('size', 'empty message')
  if (bytes.length > maxBytes) throw new FrameError('size', `message of ${bytes.length} bytes exceeds the ${maxBytes}-byte cap`)
  const top = decodeStrict(bytes, 'COSE message', null)
  if (!(top instanceof Tag)) throw new FrameError('cose', 'expected a tagged COSE_Sign1 (18) or COSE_Mac0 (17)')
  if (top.tag !== TAG_SIGN1 && top.tag !== TAG_MAC0) throw new FrameError('cose', `expected CBOR tag 18 (COSE_Sign1) or 17 (COSE_Mac0), got ${top.tag}`)
  const kind: CoseKind = top.tag === TAG_SIGN1 ? 'sign1' : 'mac0'
  const arr = top.value
  if (!Array.isArray(arr) || arr.length !== 4) throw new FrameError('cose', `expected a 4-element COSE array, got ${Array.isArray(arr) ? arr.length + ' elements' : typeof arr}`)
  const [prot, unprot, payload, tag] = arr
  if (!isBytes(prot)) throw new FrameError('cose', 'protected header must be a byte string')
  if (!(unprot instanceof Map)) throw new FrameError('cose', 'unprotected header must be a map')
  if (!isBytes(payload)) throw new FrameError('cose', 'payload must be an attached byte string (detached payloads are not accepted)')
  if (!isBytes(tag)) throw new FrameError('cose', `${kind === 'sign1' ? 'signature' : 'MAC tag'} must be a byte string`)
  if (unprot.size !== 0) throw new FrameError('header', `unprotected header must be empty, has label(s) ${[...unprot.keys()].join(', ')}`)
  if (prot.length === 0) throw new FrameError('header', 'protected header is empty; alg and kid must be protected')
  const hdr = decodeStrict(u8(prot), 'protected header', headerFloat)
  if (!(hdr instanceof Map)) throw new FrameError('header', 'protected header must encode a map')
  for (const label of hdr.keys()) {
    // RFC 9052 §3.1: a recipient must reject labels it does not understand if critical;
    // our profile has no optional headers at all, so any other label is refused.
    if (label !== HDR_ALG && label !== HDR_KID) throw new FrameError('header', `unknown protected header label ${label}`)
  }
  const alg = hdr.get(HDR_ALG)
  const expectedAlg = kind === 'sign1' ? ALG_ES256 : ALG_HMAC256
  if (alg !== expectedAlg) throw new FrameError('header', `alg must be ${expectedAlg} for ${kind === 'sign1' ? 'COSE_Sign1 (ES256)' : 'COSE_Mac0 (HMAC 256/256)'}, got ${alg}`)
  const kidBytes = hdr.get(HDR_KID)
  if (!isBytes(kidBytes)) throw new FrameError('header', 'kid (label 4) must be a byte string in the protected header')
  const kid = Buffer.from(kidBytes).toString('latin1')
  if (!validDeviceId(kid)) throw new FrameError('header', `kid '${kid.slice(0, 40)}' is not a valid device ID`)
  const wantLen = kind === 'sign1' ? 64 : 32
  if (tag.length !== wantLen) throw new FrameError('cose', `${kind === 'sign1' ? 'ES256 signature' : 'HMAC tag'} must be ${wantLen} bytes, got ${tag.length}`)
  const protectedBytes = u8(prot)
  const payloadBytes = u8(payload)
  const toBeAuthenticated = kind === 'sign1' ? sigStructure(protectedBytes, payloadBytes, EMPTY) : macStructure(protectedBytes, payloadBytes, EMPTY)
  return { kind, alg, kid, protectedBytes, payloadBytes, tag: u8(tag), toBeAuthenticated }
}

/**
 * What unpack() would throw for `bytes` (same checks, same order, same messages),
 * else the number of samples and the index and value of the first one outside
 * 0..max (-1 if none) — without building the sample array. The gateway's hot
 * path only needs the verdict; test/protocol/scan.test.ts holds both paths equal.
 */
export function scanPacked(bytes: Uint8Array, maxCount: number, max: number): { count: number; badIndex: number; badValue: number } {
  let count = 0
  let prev = 0
  let p = 0
  let badIndex = -1
  let badValue = 0
  const len = bytes.length
  while (p < len) {
    if (count >= maxCount) throw new Error('more than ' + maxCount + ' samples')
    // p < len here, so the first byte is there; one-byte varints (most ECG deltas) skip the loop
    let b = bytes[p++]!
    let z = b
    if (b >= 128) {
      z = b & 127
      let mul = 128
      let n = 1
      for (;;) {
        if (p >= len) throw new Error('truncated varint at byte ' + p)
        b = bytes[p++]!
        n++
        if (n > 5) throw new Error('varint longer than 5 bytes at byte ' + (p - n))
        z += (b & 127) * mul
        mul *= 128
        if (b < 128) {
          if (b === 0) throw new Error('non-minimal varint at byte ' + (p - n))
          break
        }
      }
    }
    prev += z % 2 === 0 ? z / 2 : -(z + 1) / 2
    if (prev < -PACK_LIMIT || prev > PACK_LIMIT) throw new Error('sample out of range at byte ' + p)
    if (badIndex < 0 && (prev < 0 || prev > max)) {
      badIndex = count
      badValue = prev
    }
    count++
  }
  return { count, badIndex, badValue }
}

/** Validates a packed sample field; returns the samples, or only their count when `materialize` is false. */
function samplesField(m: Map<unknown, unknown>, key: number, name: string, hz: number, max: number, materialize: true): number[]
function samplesField(m: Map<unknown, unknown>, key: number, name: string, hz: number, max: number, materialize: false): number
function samplesField(m: Map<unknown, unknown>, key: number, name: string, hz: number, max: number, materialize: boolean): number[] | number {
  const v = m.get(key)
  if (!isBytes(v)) schema(`${name} (key ${key}) must be a byte string of packed samples`)
  const maxCount = hz * LIMITS.maxWindowS
  if (!materialize) {
    let r: ReturnType<typeof scanPacked>
    try {
      r = scanPacked(v, maxCount, max)
    } catch (err) {
      schema(`${name} (key ${key}): ${(err as Error).message}`)
    }
    if (r.count === 0) schema(`${name} (key ${key}) has no samples`)
    if (r.badIndex >= 0) schema(`${name} sample ${r.badIndex} is ${r.badValue}, outside 0..${max}`)
    return r.count
  }
  let s: number[]
  try {
    s = unpack(u8(v), maxCount)
  } catch (err) {
    schema(`${name} (key ${key}): ${(err as Error).message}`)
  }
  if (s.length === 0) schema(`${name} (key ${key}) has no samples`)
  for (let i = 0; i < s.length; i++) if (s[i] < 0 || s[i] > max) schema(`${name} sample ${i} is ${s[i]}, outside 0..${max}`)
  return s
}

import type { LeanPayload } from './payload-fields.ts'
export type { LeanPayload }

/** Checks a decoded payload map against the frame schema of its version and converts it. */
export function payloadFromMap(m: unknown): FramePayload {
  return checkPayloadMap(m, true)
}

function checkPayloadMap(m: unknown, materialize: true): FramePayload
function checkPayloadMap(m: unknown, materialize: false): LeanPayload
function checkPayloadMap(m: unknown, materialize: boolean): FramePayload | LeanPayload {
  if (!(m instanceof Map)) schema('payload must be a CBOR map')
  if (m.get(K.v) === FRAME_VERSION_2) return materialize ? checkPayloadMapV2(m, true) : checkPayloadMapV2(m, false)
  const known = new Set(Object.values(K))
  for (const key of m.keys()) if (typeof key !== 'number' || !known.has(key)) schema(`unknown payload key ${typeof key === 'string' ? JSON.stringify(key) : String(key)}`)
  const v = uintField(m, K.v, 'version', true)!
  if (v !== FRAME_VERSION) schema(`unsupported frame version ${v}, expected ${FRAME_VERSION} or ${FRAME_VERSION_2}`)
  const p = headerFields(m, v)
  if (p.flags & ~FLAGS_KNOWN) schema(`flags ${p.flags} sets unknown bits`)
  const hasEcg = m.has(K.ecg) || m.has(K.ecgHz)
  const hasPpg = m.has(K.red) || m.has(K.ir) || m.has(K.ppgHz)
  if (!hasEcg && !hasPpg) schema('frame carries neither ECG nor PPG samples')
  let ecgDur = 0
  let ppgDur = 0
  if (hasEcg) {
    const hz = uintField(m, K.ecgHz, 'ecgHz', true)!
    if (hz < LIMITS.ecgHzMin || hz > LIMITS.ecgHzMax) schema(`ecgHz must be ${LIMITS.ecgHzMin}..${LIMITS.ecgHzMax}, got ${hz}`)
    p.ecgHz = hz
    let n: number
    if (materialize) n = (p.ecg = samplesField(m, K.ecg, 'ecg', hz, LIMITS.ecgMax, true)).length
    else n = samplesField(m, K.ecg, 'ecg', hz, LIMITS.ecgMax, false)
    ecgDur = n / hz
  }
  if (hasPpg) {
    const hz = uintField(m, K.ppgHz, 'ppgHz', true)!
    if (hz < LIMITS.ppgHzMin || hz > LIMITS.ppgHzMax) schema(`ppgHz must be ${LIMITS.ppgHzMin}..${LIMITS.ppgHzMax}, got ${hz}`)
    p.ppgHz = hz
    let nRed: number
    let nIr: number
    if (materialize) {
      nRed = (p.red = samplesField(m, K.red, 'red', hz, LIMITS.ppgMax, true)).length
      nIr = (p.ir = samplesField(m, K.ir, 'ir', hz, LIMITS.ppgMax, true)).length
    } else {
      nRed = samplesField(m, K.red, 'red', hz, LIMITS.ppgMax, false)
      nIr = samplesField(m, K.ir, 'ir', hz, LIMITS.ppgMax, false)
    }
    if (nRed !== nIr) schema(`red has ${nRed} samples but ir has ${nIr}`)
    ppgDur = nRed / hz
  }
  if (hasEcg && hasPpg && !samplesAgree(ecgDur, ppgDur)) {
    schema(`ECG covers ${ecgDur.toFixed(2)} s but PPG covers ${ppgDur.toFixed(2)} s`)
  }
  trailerFields(m, p)
  return p
}

/** Strict decode of a frame: envelope, header profile and payload schema. No signature check. */
export function decodeFrame(bytes: Uint8Array): DecodedFrame {
  const msg = decodeCose(bytes)
  const payload = checkPayloadMap(decodeStrict(msg.payloadBytes, 'payload', refusePayloadFloat), true)
  if (payload.deviceId !== msg.kid) throw new FrameError('header', `kid '${msg.kid}' differs from the payload's device ID '${payload.deviceId}'`)
  return { ...msg, payload }
}

/**
 * The same checks as decodeFrame, in the same order with the same errors, but the
 * sample strings are validated in place instead of unpacked into number arrays
 * (the gateway stores the signed bytes; it never needs the samples themselves).
 */
export function decodeFrameLean(bytes: Uint8Array): CoseMessage & { payload: LeanPayload } {
  const msg = decodeCose(bytes)
  const payload = checkPayloadMap(decodeStrict(msg.payloadBytes, 'payload', refusePayloadFloat), false)
  if (payload.deviceId !== msg.kid) throw new FrameError('header', `kid '${msg.kid}' differs from the payload's device ID '${payload.deviceId}'`)
  return { ...msg, payload }
}

/** Strict decode of a CONNECT password (auth token). No signature check. */
export function decodeAuthToken(bytes: Uint8Array): DecodedAuthToken {
  const msg = decodeCose(bytes, 512)
  const a = decodeStrict(msg.payloadBytes, 'auth token payload', tokenFloat)
  if (!Array.isArray(a) || a.length !== 4 || a[0] !== AUTH_MARKER) throw new FrameError('schema', `auth token payload must be ["${AUTH_MARKER}", deviceId, iatMs, counter]`)
  const [, deviceId, iatMs, counter] = a
  if (deviceId !== msg.kid) throw new FrameError('header', `kid '${msg.kid}' differs from the token's device ID`)
  if (!isUint(iatMs) || !isUint(counter)) throw new FrameError('schema', 'iatMs and counter must be unsigned integers')
  return { ...msg, claims: { deviceId, iatMs, counter } }
}
