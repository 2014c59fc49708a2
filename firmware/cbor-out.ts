/**
 * The CBOR the firmware writes, and no more (RFC 8949 §3: heads in the shortest form, as
 * deterministic encoding asks; definite lengths). protocol/portable/cbor.ts is the general
 * encoder; the bundle uses this one because it needs only heads, byte and ASCII strings, and
 * its size is what the 48 KB bundle budget can afford. test/firmware/cbor-out.test.ts checks
 * the bytes against the general encoder, and the gateway verifies every frame and token.
 */
export class CborOut {
  b: Uint8Array
  p: number

  constructor(capacity: number) {
    this.b = new Uint8Array(capacity)
    this.p = 0
  }

  /** Initial byte and argument, shortest form; n an integer in 0..2^53-1. */
  h(major: number, n: number): CborOut {
    const b = this.b
    let p = this.p
    const mt = major << 5
    if (n < 24) b[p++] = mt | n
    else if (n < 256) {
      b[p++] = mt | 24
      b[p++] = n
    } else if (n < 65536) {
      b[p++] = mt | 25
      b[p++] = n >> 8
      b[p++] = n & 255
    } else {
      // 4- or 8-byte argument (t0 is above 2^32): split with arithmetic, not 32-bit operators.
      const hi = Math.floor(n / 4294967296)
      const lo = n - hi * 4294967296
      if (hi > 0) {
        b[p++] = mt | 27
        b[p++] = (hi >>> 24) & 255
        b[p++] = (hi >>> 16) & 255
        b[p++] = (hi >>> 8) & 255
        b[p++] = hi & 255
      } else b[p++] = mt | 26
      b[p++] = (lo >>> 24) & 255
      b[p++] = (lo >>> 16) & 255
      b[p++] = (lo >>> 8) & 255
      b[p++] = lo & 255
    }
    this.p = p
    return this
  }

  /** Any integer in ±2^53: major type 0, or 1 for a negative n (encoded as -1-n). */
  int(n: number): CborOut {
    return n < 0 ? this.h(1, -1 - n) : this.h(0, n)
  }

  /** Bytes as they are (no head). */
  put(bytes: Uint8Array): CborOut {
    this.b.set(bytes, this.p)
    this.p += bytes.length
    return this
  }

  /** A byte string: head and bytes. */
  bytes(bytes: Uint8Array): CborOut {
    return this.h(2, bytes.length).put(bytes)
  }

  /**
   * A string of ASCII characters as a text string (major 3) or as its bytes (major 2: the kid):
   * IDs, versions, markers; constants and tokens, never per frame.
   */
  str(major: number, s: string): CborOut {
    this.h(major, s.length)
    for (let i = 0; i < s.length; i++) this.b[this.p++] = s.charCodeAt(i)
    return this
  }

  /** A copy of what was written. */
  copy(): Uint8Array {
    return new Uint8Array(this.b.subarray(0, this.p))
  }
}

/** A small constant: written once into a fresh writer, returned as a copy. */
export function cbor(build: (w: CborOut) => void): Uint8Array {
  const w = new CborOut(96)
  build(w)
  return w.copy()
}
