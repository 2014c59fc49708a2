import { concatBytes } from './bytes.ts'

/**
 * Hashing is injected: on the board it is Espruino's native
 * `require("crypto").SHA256`, on Node it is node:crypto. The protocol code
 * never imports a hash implementation itself.
 */
export interface HashProvider {
  sha256(data: Uint8Array): Uint8Array
}

const BLOCK = 64

/**
 * HMAC-SHA256 (RFC 2104) over the provider's SHA-256. Espruino exposes no
 * HMAC call (its PBKDF2 trick only covers messages ending in 00 00 00 01), so
 * the board runs the two-hash construction over native SHA-256.
 */
export function hmacSha256(h: HashProvider, key: Uint8Array, msg: Uint8Array): Uint8Array {
  let k = key
  if (k.length > BLOCK) k = h.sha256(k) // RFC 2104 §2: long keys are hashed first
  const ipad = new Uint8Array(BLOCK)
  const opad = new Uint8Array(BLOCK)
  for (let i = 0; i < BLOCK; i++) {
    const kb = i < k.length ? k[i] : 0
    ipad[i] = kb ^ 0x36
    opad[i] = kb ^ 0x5c
  }
  const inner = h.sha256(concatBytes([ipad, msg]))
  return h.sha256(concatBytes([opad, inner]))
}
