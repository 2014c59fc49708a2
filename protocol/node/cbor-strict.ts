/**
 * A well-formedness gate run before cbor-x sees any bytes. cbor-x is a fast,
 * lenient decoder: it lets duplicate map keys overwrite each other, accepts
 * indefinite lengths and non-shortest heads, and would let a frame carry
 * trailing bytes. Frames are signed bytes that end up as ledger leaves, so
 * we accept only one encoding of each value (RFC 8949 §4.2.1 preferred
 * heads, §4.1 shortest floats, §3.4.3 bignums only beyond 64 bits, definite
 * lengths), no duplicate map keys, nothing after the item.
 *
 * Duplicate keys are found by value, not by bytes: cbor-x hands the integer 2
 * and the floats 2.0 (half, single or double) to us as the same number, so a
 * map holding both would silently keep the later one. Keys are therefore
 * limited to what can be compared by value (integers, floats, text, bytes;
 * COSE labels are integers or text, RFC 9052 §1.4), and numeric keys are
 * compared as numbers (so 0 and -0.0 collide, as do two NaNs).
 *
 * Floats are well-formed CBOR, so the gate lets them through, but it reports
 * the first one: our schemas have integers only, and once cbor-x has turned a
 * half-float 7.0 into the number 7 nothing downstream can tell it was a float.
 */
import { FrameError } from './errors.ts'

export interface StrictLimits {
  maxDepth: number
  /** Cap on items in any one array or map, before any allocation. */
  maxItems: number
}

/** The first float in an item, for a schema that has no floats to refuse it by name. */
export interface FloatSeen {
  /** Byte offset of the float's head. */
  at: number
  value: number
  /** 16, 32 or 64. */
  bits: number
  /** The integer key of the entry of the outermost map that holds it; null if none (not a map, or a non-integer key). */
  key: number | null
  /** The float is itself a key of the outermost map. */
  isKey: boolean
}

const DEFAULT_LIMITS: StrictLimits = { maxDepth: 16, maxItems: 4096 }
const TWO53 = 9007199254740992
const utf8 = new TextDecoder('utf-8', { fatal: true })

function fail(msg: string, at: number): never {
  throw new FrameError('cbor', `${msg} at byte ${at}`)
}

// Per-call state, reset by assertStrictCbor: the gate is synchronous and not
// reentrant, and module variables spare an allocation per item on the hot path.
let headArg = 0
let headNext = 0
let floatSeen: FloatSeen | null = null
let topKey: number | null = null

/**
 * Throws FrameError('cbor') unless `bytes` is exactly one item in the strict
 * subset; returns the first float it holds, or null.
 */
export function assertStrictCbor(bytes: Uint8Array, limits: StrictLimits = DEFAULT_LIMITS): FloatSeen | null {
  floatSeen = null
  topKey = null
  const end = item(bytes, 0, 0, limits)
  if (end !== bytes.length) fail(`${bytes.length - end} trailing byte(s) after the CBOR item`, end)
  const f = floatSeen
  floatSeen = null
  return f
}

/** Reads the head at p into headArg/headNext; returns the initial byte. */
function readHead(b: Uint8Array, p: number): number {
  if (p >= b.length) fail('unexpected end of input', p)
  const ib = b[p]!
  const major = ib >> 5
  const info = ib & 31
  let arg: number
  let next = p + 1
  if (info < 24) arg = info
  else if (info <= 27) {
    const n = 1 << (info - 24)
    if (next + n > b.length) fail('unexpected end of input in a head', p)
    arg = 0
    for (let i = 0; i < n; i++) arg = arg * 256 + b[next + i]!
    next += n
    if (major !== 7) {
      if (arg >= TWO53) fail('integer argument beyond 2^53', p)
      // preferred serialisation: the shortest head that holds the argument
      const min = arg < 24 ? 0 : arg < 256 ? 24 : arg < 65536 ? 25 : arg < 4294967296 ? 26 : 27
      if (info !== min) fail('non-shortest head', p)
    }
  } else if (info === 31) fail(major === 7 ? 'unexpected break' : 'indefinite length', p)
  else fail(`reserved additional information ${info}`, p)
  headArg = arg
  headNext = next
  return ib
}

/** End of the string whose head is at p (major 2 or 3), text checked as UTF-8. */
function stringEnd(b: Uint8Array, p: number, text: boolean): number {
  const end = headNext + headArg
  if (end > b.length) fail(`string of ${headArg} bytes runs past the end`, p)
  if (text) {
    try {
      utf8.decode(b.subarray(headNext, end))
    } catch {
      fail('text string is not valid UTF-8', p)
    }
  }
  return end
}

/** IEEE 754 half precision (RFC 8949 Appendix D). */
function halfValue(h: number): number {
  const exp = (h >> 10) & 31
  const mant = h & 1023
  const mag = exp === 0 ? mant * 2 ** -24 : exp === 31 ? (mant === 0 ? Infinity : NaN) : (mant + 1024) * 2 ** (exp - 25)
  return h & 0x8000 ? -mag : mag
}

/** Whether a single-precision value (its bits) could have been written as a half. */
function fitsHalf(bits: number): boolean {
  const exp = ((bits >>> 23) & 255) - 127
  const mant = bits & 0x7fffff
  if (exp === 128) return true // Infinity or NaN: both exist in half precision
  if (exp === -127) return mant === 0 // ±0; single subnormals are below half's range
  if (exp >= -14 && exp <= 15) return (mant & 0x1fff) === 0
  if (exp >= -24 && exp < -14) return ((mant | 0x800000) & ((1 << (-1 - exp)) - 1)) === 0
  return false
}

/**
 * The float whose head (initial byte ib) is at p; refuses any that a shorter
 * float holds exactly (§4.1) and any NaN but the half 0x7e00 (one encoding each).
 */
function floatAt(b: Uint8Array, p: number, ib: number): number {
  if (ib === 0xf9) {
    const v = halfValue(headArg)
    if (v !== v && headArg !== 0x7e00) fail('NaN other than 0xf97e00', p)
    return v
  }
  if (ib === 0xfa) {
    if (fitsHalf(headArg)) fail('float not in its shortest form', p)
    return new DataView(b.buffer, b.byteOffset + p + 1, 4).getFloat32(0)
  }
  const v = new DataView(b.buffer, b.byteOffset + p + 1, 8).getFloat64(0)
  if (v !== v || Math.fround(v) === v) fail('float not in its shortest form', p)
  return v
}

function noteFloat(p: number, ib: number, value: number, isKey: boolean): void {
  if (floatSeen === null) floatSeen = { at: p, value, bits: ib === 0xf9 ? 16 : ib === 0xfa ? 32 : 64, key: isKey ? null : topKey, isKey }
}

function item(b: Uint8Array, p: number, depth: number, limits: StrictLimits): number {
  if (depth > limits.maxDepth) fail(`nesting deeper than ${limits.maxDepth}`, p)
  const ib = readHead(b, p)
  switch (ib >> 5) {
    case 0:
    case 1:
      return headNext
    case 2:
      return stringEnd(b, p, false)
    case 3:
      return stringEnd(b, p, true)
    case 4: {
      const n = headArg
      if (n > limits.maxItems) fail(`array of ${n} items exceeds ${limits.maxItems}`, p)
      let q = headNext
      for (let i = 0; i < n; i++) q = item(b, q, depth + 1, limits)
      return q
    }
    case 5:
      return map(b, p, depth, limits)
    case 6: {
      const tag = headArg
      const q = headNext
      if (tag === 2 || tag === 3) bignum(b, q)
      return item(b, q, depth + 1, limits)
    }
    default: {
      // major 7: simple values and floats
      const info = ib & 31
      if (info === 24 && headArg < 32) fail('simple value in two-byte form', p)
      if (info >= 25) noteFloat(p, ib, floatAt(b, p, ib), false)
      return headNext
    }
  }
}

/** §3.4.3: a bignum is a byte string with no leading zero, too large for major type 0/1. */
function bignum(b: Uint8Array, p: number): void {
  const ib = readHead(b, p)
  if (ib >> 5 !== 2) fail('bignum (tag 2/3) content is not a byte string', p)
  if (headArg <= 8 || b[headNext] === 0) fail('bignum that is not in its shortest form (fits 64 bits or has a leading zero)', p)
}

/** A map's entries, keys compared by value (see the module comment). */
function map(b: Uint8Array, p: number, depth: number, limits: StrictLimits): number {
  const n = headArg
  if (n > limits.maxItems) fail(`map of ${n} entries exceeds ${limits.maxItems}`, p)
  const seen = n > 1 ? new Set<number | string>() : null
  let q = headNext
  for (let i = 0; i < n; i++) {
    const k0 = q
    if (depth + 1 > limits.maxDepth) fail(`nesting deeper than ${limits.maxDepth}`, k0)
    const ib = readHead(b, k0)
    let key: number | string
    switch (ib >> 5) {
      case 0:
        key = headArg
        q = headNext
        break
      case 1:
        key = -1 - headArg
        q = headNext
        break
      case 2:
      case 3:
        q = stringEnd(b, k0, ib >> 5 === 3)
        // one prefix per type: the text "a" and the bytes h'61' are distinct keys
        key = (ib >> 5 === 3 ? 't' : 'b') + Buffer.from(b.buffer, b.byteOffset + headNext, q - headNext).toString('latin1')
        break
      default:
        if (ib >> 5 !== 7 || (ib & 31) < 25) fail('map key must be an integer, float, text or byte string', k0)
        key = floatAt(b, k0, ib)
        q = headNext
        noteFloat(k0, ib, key, depth === 0)
    }
    // a Set compares numbers by SameValueZero: 2 and 2.0 are one key, 0 and -0.0 too, NaN equals NaN
    if (seen) {
      if (seen.has(key)) fail(`duplicate map key ${typeof key === 'number' ? key : JSON.stringify(key.slice(1))}`, k0)
      seen.add(key)
    }
    if (depth === 0) topKey = ib >> 5 < 2 ? (key as number) : null
    q = item(b, q, depth + 1, limits)
  }
  if (depth === 0) topKey = null
  return q
}
