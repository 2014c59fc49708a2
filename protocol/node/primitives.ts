/**
 * The signature and MAC primitives, each in two implementations: node:crypto
 * (OpenSSL) and @noble/curves / @noble/hashes (pure JS, the same code the
 * browser and the simulated secure element use). Both must agree on every
 * published vector; the gateway uses whichever the benchmark shows faster.
 */
import { createHmac, createPublicKey, createPrivateKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto'
import { p256 } from '@noble/curves/nist.js'
import { ed25519 } from '@noble/curves/ed25519.js'
import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { constantTimeEqual } from '../portable/bytes.ts'

export type Impl = 'node' | 'noble'

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url')

// KeyObject creation costs more than a verify; devices reuse their key for every frame.
const keyCache = new Map<string, KeyObject>()
const KEY_CACHE_MAX = 10_000

function cached(kind: string, raw: Uint8Array, make: () => KeyObject): KeyObject {
  const id = kind + Buffer.from(raw).toString('hex')
  let k = keyCache.get(id)
  if (!k) {
    k = make()
    if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value as string)
    keyCache.set(id, k)
  }
  return k
}

/** P-256 public key (65-byte uncompressed) as a node KeyObject. */
export function p256PublicKeyObject(pub65: Uint8Array): KeyObject {
  if (pub65.length !== 65 || pub65[0] !== 4) throw new Error(`expected a 65-byte uncompressed P-256 public key, got ${pub65.length} bytes`)
  return cached('p256', pub65, () => createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64u(pub65.subarray(1, 33)), y: b64u(pub65.subarray(33)) }, format: 'jwk' }))
}

export function ed25519PublicKeyObject(pub32: Uint8Array): KeyObject {
  if (pub32.length !== 32) throw new Error(`expected a 32-byte Ed25519 public key, got ${pub32.length} bytes`)
  return cached('ed25519', pub32, () => createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(pub32) }, format: 'jwk' }))
}

/** ECDSA P-256 with SHA-256 over `msg`, signature r‖s (IEEE P1363, as COSE ES256). High-S accepted, as ECDSA allows. */
export function es256Verify(impl: Impl, pub65: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  if (sig.length !== 64) return false
  if (impl === 'node') {
    try {
      return nodeVerify('sha256', msg, { key: p256PublicKeyObject(pub65), dsaEncoding: 'ieee-p1363' }, sig)
    } catch {
      return false
    }
  }
  try {
    return p256.verify(sig, msg, pub65, { lowS: false, prehash: true })
  } catch {
    return false
  }
}

/** Ed25519 (RFC 8032, strict: no ZIP-215 leniency). */
export function ed25519Verify(impl: Impl, pub32: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  if (sig.length !== 64 || pub32.length !== 32) return false
  if (impl === 'node') {
    try {
      return nodeVerify(null, msg, ed25519PublicKeyObject(pub32), sig)
    } catch {
      return false
    }
  }
  try {
    return ed25519.verify(sig, msg, pub32, { zip215: false })
  } catch {
    return false
  }
}

export function hmacSha256Compute(impl: Impl, key: Uint8Array, msg: Uint8Array): Uint8Array {
  if (impl === 'node') return new Uint8Array(createHmac('sha256', key).update(msg).digest())
  return hmac(sha256, key, msg)
}

/** HMAC-SHA256 check of a tag, possibly truncated (leftmost bytes, RFC 2104 §5), in constant time. */
export function hmacSha256Verify(impl: Impl, key: Uint8Array, msg: Uint8Array, tag: Uint8Array): boolean {
  if (tag.length === 0 || tag.length > 32) return false
  return constantTimeEqual(hmacSha256Compute(impl, key, msg).subarray(0, tag.length), tag)
}

/** ES256 signing for hosts (tests, tools); boards sign in their secure element. */
export function es256Sign(impl: Impl, priv32: Uint8Array, pub65: Uint8Array, msg: Uint8Array): Uint8Array {
  if (impl === 'noble') return p256.sign(msg, priv32, { prehash: true, lowS: false })
  const key = createPrivateKey({
    key: { kty: 'EC', crv: 'P-256', d: b64u(priv32), x: b64u(pub65.subarray(1, 33)), y: b64u(pub65.subarray(33)) },
    format: 'jwk',
  })
  return new Uint8Array(nodeSign('sha256', msg, { key, dsaEncoding: 'ieee-p1363' }))
}

export function ed25519Sign(priv32: Uint8Array, pub32: Uint8Array, msg: Uint8Array): Uint8Array {
  const key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64u(priv32), x: b64u(pub32) }, format: 'jwk' })
  return new Uint8Array(nodeSign(null, msg, key))
}
