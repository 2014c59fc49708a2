/**
 * `require("crypto")`: SHA1/224/256/384/512 returning ArrayBuffers, and
 * PBKDF2 with Espruino's options ({keySize in 32-bit words, default 4;
 * iterations, default 1; hasher, default 'SHA1'}). AES is not implemented.
 */
import { createHash, pbkdf2Sync } from 'node:crypto'
import { toBytes } from './format.ts'
import type { Sandbox } from './sandbox.ts'

const HASHERS = ['sha1', 'sha224', 'sha256', 'sha384', 'sha512']

export function cryptoModule(sb: Sandbox): unknown {
  const m = new sb.C.Object() as Record<string, unknown>
  const hash = (alg: string) => (msg: unknown) => sb.arrayBuffer(createHash(alg).update(Uint8Array.from(toBytes(msg))).digest())
  m.SHA1 = hash('sha1')
  m.SHA224 = hash('sha224')
  m.SHA256 = hash('sha256')
  m.SHA384 = hash('sha384')
  m.SHA512 = hash('sha512')
  m.PBKDF2 = (pass: unknown, salt: unknown, options?: { keySize?: unknown; iterations?: unknown; hasher?: unknown }) => {
    // keySize counts 32-bit words (default 4 = 128 bits); iterations default 1; hasher default SHA1.
    const words = options?.keySize === undefined ? 4 : Number(options.keySize)
    const iterations = options?.iterations === undefined ? 1 : Number(options.iterations)
    const hasher = String(options?.hasher ?? 'SHA1').toLowerCase()
    if (!HASHERS.includes(hasher)) throw sb.error(`Unknown hasher ${String(options?.hasher)}`)
    if (!Number.isInteger(words) || words <= 0 || !Number.isInteger(iterations) || iterations <= 0) throw sb.error('Invalid keySize or iterations')
    return sb.arrayBuffer(pbkdf2Sync(Uint8Array.from(toBytes(pass)), Uint8Array.from(toBytes(salt)), iterations, words * 4, hasher))
  }
  return m
}
