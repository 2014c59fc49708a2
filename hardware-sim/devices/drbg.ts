/**
 * A small HMAC-SHA256 DRBG (NIST SP 800-90A HMAC_DRBG update/generate, no
 * reseed counter) so a secure-element model can be made deterministic for
 * tests: the same seed gives the same serial number, keys and random output.
 * Without a seed the device model uses node:crypto instead.
 */
import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'

export interface ByteSource {
  bytes(n: number): Uint8Array
}

export class HmacDrbg implements ByteSource {
  private k = new Uint8Array(32)
  private v = new Uint8Array(32).fill(1)

  constructor(seed: Uint8Array) {
    if (!(seed instanceof Uint8Array) || seed.length === 0) throw new TypeError(`seed: expected non-empty bytes, got ${seed === null ? 'null' : typeof seed}`)
    this.update(seed)
  }

  // SP 800-90A 10.1.2.2 HMAC_DRBG_Update
  private update(data: Uint8Array | null): void {
    const cat = (v: Uint8Array, b: number, d: Uint8Array | null): Uint8Array => {
      const out = new Uint8Array(v.length + 1 + (d ? d.length : 0))
      out.set(v)
      out[v.length] = b
      if (d) out.set(d, v.length + 1)
      return out
    }
    this.k = hmac(sha256, this.k, cat(this.v, 0x00, data))
    this.v = hmac(sha256, this.k, this.v)
    if (data && data.length > 0) {
      this.k = hmac(sha256, this.k, cat(this.v, 0x01, data))
      this.v = hmac(sha256, this.k, this.v)
    }
  }

  // SP 800-90A 10.1.2.5 HMAC_DRBG_Generate
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n)
    let off = 0
    while (off < n) {
      this.v = hmac(sha256, this.k, this.v)
      const take = Math.min(32, n - off)
      out.set(this.v.subarray(0, take), off)
      off += take
    }
    this.update(null)
    return out
  }
}

/** Seed from a number (e.g. a fleet's child seed) or raw bytes. */
export function seedBytes(seed: number | Uint8Array): Uint8Array {
  if (typeof seed === 'number') {
    if (!Number.isFinite(seed)) throw new TypeError(`seed: expected a finite number, got ${seed}`)
    const b = new Uint8Array(8)
    new DataView(b.buffer).setFloat64(0, seed)
    return b
  }
  return seed
}
