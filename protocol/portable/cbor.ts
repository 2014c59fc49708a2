/**
 * A deterministic CBOR encoder (RFC 8949) small enough for Espruino.
 * Preferred serialisation throughout (§4.1: shortest heads, shortest float
 * that keeps the value), definite lengths only. Integers are exact up to
 * ±2^53 because the board has no BigInt; larger heads are split with
 * arithmetic, never with 32-bit bit operators.
 *
 * The writer reuses one preallocated buffer so a board can encode frame after
 * frame without allocating; it grows only when a value does not fit.
 */
import { utf8Encode } from './bytes.ts'

export const MT_UINT = 0
export const MT_NINT = 1
export const MT_BYTES = 2
export const MT_TEXT = 3
export const MT_ARRAY = 4
export const MT_MAP = 5
export const MT_TAG = 6
export const MT_SIMPLE = 7

const TWO32 = 4294967296

export class CborWriter {
  buf: Uint8Array
  pos: number
  private scratch: DataView

  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity > 16 ? capacity : 16)
    this.pos = 0
    this.scratch = new DataView(new ArrayBuffer(8))
  }

  reset(): CborWriter {
    this.pos = 0
    return this
  }

  /** A view of what has been written; valid until the next reset. */
  result(): Uint8Array {
    return this.buf.subarray(0, this.pos)
  }

  /** A copy of what has been written, safe to keep. */
  copy(): Uint8Array {
    return new Uint8Array(this.result())
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    let cap = this.buf.length * 2
    while (cap < this.pos + n) cap *= 2
    const next = new Uint8Array(cap)
    next.set(this.buf.subarray(0, this.pos), 0)
    this.buf = next
  }

  byte(b: number): void {
    this.ensure(1)
    this.buf[this.pos++] = b
  }

  raw(bytes: Uint8Array): CborWriter {
    this.ensure(bytes.length)
    this.buf.set(bytes, this.pos)
    this.pos += bytes.length
    return this
  }

  /** Initial byte plus argument, in the shortest form (RFC 8949 §3, §4.2.1). */
  head(major: number, n: number): CborWriter {
    if (n < 0 || n !== Math.floor(n) || n > 9007199254740991) throw new Error('CBOR argument must be an integer in 0..2^53-1, got ' + n)
    const mt = major << 5
    if (n < 24) this.byte(mt | n)
    else if (n < 256) {
      this.ensure(2)
      this.buf[this.pos++] = mt | 24
      this.buf[this.pos++] = n
    } else if (n < 65536) {
      this.ensure(3)
      this.buf[this.pos++] = mt | 25
      this.buf[this.pos++] = n >> 8
      this.buf[this.pos++] = n & 255
    } else if (n < TWO32) {
      this.ensure(5)
      this.buf[this.pos++] = mt | 26
      this.be32(n)
    } else {
      this.ensure(9)
      this.buf[this.pos++] = mt | 27
      const hi = Math.floor(n / TWO32)
      this.be32(hi)
      this.be32(n - hi * TWO32)
    }
    return this
  }

  private be32(n: number): void {
    this.buf[this.pos++] = (n >>> 24) & 255
    this.buf[this.pos++] = (n >>> 16) & 255
    this.buf[this.pos++] = (n >>> 8) & 255
    this.buf[this.pos++] = n & 255
  }

  uint(n: number): CborWriter {
    return this.head(MT_UINT, n)
  }

  /** Any integer in ±2^53: major type 0 or 1 (negative n encodes as -1-n). */
  int(n: number): CborWriter {
    return n < 0 ? this.head(MT_NINT, -1 - n) : this.head(MT_UINT, n)
  }

  bytes(b: Uint8Array): CborWriter {
    this.head(MT_BYTES, b.length)
    return this.raw(b)
  }

  /** Text string from already UTF-8-encoded bytes. */
  textBytes(utf8: Uint8Array): CborWriter {
    this.head(MT_TEXT, utf8.length)
    return this.raw(utf8)
  }

  /** ASCII-only text written without an intermediate buffer (IDs, versions). */
  ascii(s: string): CborWriter {
    this.head(MT_TEXT, s.length)
    this.ensure(s.length)
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i)
      if (c > 127) throw new Error('expected ASCII text, got char code ' + c + ' at ' + i)
      this.buf[this.pos++] = c
    }
    return this
  }

  arrayHeader(n: number): CborWriter {
    return this.head(MT_ARRAY, n)
  }

  mapHeader(n: number): CborWriter {
    return this.head(MT_MAP, n)
  }

  tag(n: number): CborWriter {
    return this.head(MT_TAG, n)
  }

  bool(v: boolean): CborWriter {
    this.byte(v ? 0xf5 : 0xf4)
    return this
  }

  nil(): CborWriter {
    this.byte(0xf6)
    return this
  }

  undef(): CborWriter {
    this.byte(0xf7)
    return this
  }

  simple(n: number): CborWriter {
    if (n < 0 || n > 255 || (n >= 24 && n < 32)) throw new Error('CBOR simple value must be 0..23 or 32..255, got ' + n)
    if (n < 24) this.byte(0xe0 | n)
    else {
      this.byte(0xf8)
      this.byte(n)
    }
    return this
  }

  /** Shortest of half/single/double precision that represents x exactly (§4.2.2). */
  float(x: number): CborWriter {
    const half = toHalf(x, this.scratch)
    if (half >= 0) {
      this.ensure(3)
      this.buf[this.pos++] = 0xf9
      this.buf[this.pos++] = half >> 8
      this.buf[this.pos++] = half & 255
      return this
    }
    const dv = this.scratch
    dv.setFloat32(0, x)
    if (dv.getFloat32(0) === x) {
      this.ensure(5)
      this.buf[this.pos++] = 0xfa
      for (let i = 0; i < 4; i++) this.buf[this.pos++] = dv.getUint8(i)
      return this
    }
    dv.setFloat64(0, x)
    this.ensure(9)
    this.buf[this.pos++] = 0xfb
    for (let i = 0; i < 8; i++) this.buf[this.pos++] = dv.getUint8(i)
    return this
  }
}

/** The IEEE 754 half-precision bits of x, or -1 when x is not exactly representable. */
function toHalf(x: number, dv: DataView): number {
  if (x !== x) return 0x7e00 // canonical quiet NaN
  if (x === Infinity) return 0x7c00
  if (x === -Infinity) return 0xfc00
  if (x === 0) return 1 / x < 0 ? 0x8000 : 0
  dv.setFloat32(0, x)
  if (dv.getFloat32(0) !== x) return -1
  const bits = dv.getUint32(0)
  const sign = (bits >>> 16) & 0x8000
  const exp = ((bits >>> 23) & 0xff) - 127
  const mant = bits & 0x7fffff
  if (exp >= -14 && exp <= 15) {
    if ((mant & 0x1fff) !== 0) return -1 // more than 10 mantissa bits
    return sign | ((exp + 15) << 10) | (mant >> 13)
  }
  if (exp >= -24 && exp < -14) {
    // subnormal half: value = m * 2^-24 with m < 1024
    const shift = -14 - exp // 1..10
    const full = mant | 0x800000
    const dropped = 13 + shift
    if ((full & ((1 << dropped) - 1)) !== 0) return -1
    return sign | (full >> dropped)
  }
  return -1
}

/** A CBOR tag around a value, for `encodeValue`. */
export interface CborTagged {
  cborTag: number
  value: unknown
}

/** Ordered map entries, for maps whose keys are not strings (integer-keyed maps). */
export interface CborPairs {
  cborPairs: Array<[unknown, unknown]>
}

/**
 * Generic encoder for plain JS values: numbers (integers as int, others as
 * float), strings, booleans, null, undefined, Uint8Array, arrays, objects
 * (string keys in insertion order), CborTagged and CborPairs.
 */
export function encodeValue(w: CborWriter, v: unknown): CborWriter {
  if (typeof v === 'number') {
    if (v === Math.floor(v) && v >= -9007199254740992 && v <= 9007199254740991 && !(v === 0 && 1 / v < 0)) return w.int(v)
    return w.float(v)
  }
  if (typeof v === 'string') {
    let ascii = true
    for (let i = 0; i < v.length; i++) if (v.charCodeAt(i) > 127) ascii = false
    return ascii ? w.ascii(v) : w.textBytes(utf8Encode(v))
  }
  if (typeof v === 'boolean') return w.bool(v)
  if (v === null) return w.nil()
  if (v === undefined) return w.undef()
  if (v instanceof Uint8Array) return w.bytes(v)
  if (Array.isArray(v)) {
    w.arrayHeader(v.length)
    for (let i = 0; i < v.length; i++) encodeValue(w, v[i])
    return w
  }
  const o = v as Record<string, unknown>
  if (typeof o.cborTag === 'number') {
    w.tag(o.cborTag)
    return encodeValue(w, o.value)
  }
  if (Array.isArray(o.cborPairs)) {
    const pairs = o.cborPairs as Array<[unknown, unknown]>
    w.mapHeader(pairs.length)
    for (let i = 0; i < pairs.length; i++) {
      encodeValue(w, pairs[i][0])
      encodeValue(w, pairs[i][1])
    }
    return w
  }
  const keys = Object.keys(o)
  w.mapHeader(keys.length)
  for (let i = 0; i < keys.length; i++) {
    encodeValue(w, keys[i])
    encodeValue(w, o[keys[i]])
  }
  return w
}


/** One-shot convenience: encode a value into a fresh buffer. */
export function encode(v: unknown): Uint8Array {
  return encodeValue(new CborWriter(64), v).copy()
}
