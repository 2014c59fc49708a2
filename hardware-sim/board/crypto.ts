/**
 * `require("crypto")`: SHA1/224/256/384/512 returning ArrayBuffers, and
 * PBKDF2 with Espruino's options ({keySize in 32-bit words, default 4;
 * iterations, default 1; hasher, default 'SHA1'}). AES is not implemented.
 * When the board charges time, each call costs what the model gives for its
 * message length (hardware-sim/cost/model.ts: hashUs, pbkdf2Us).
 */
import { createHash, pbkdf2Sync } from 'node:crypto'
import { toBytes } from './format.ts'
import type { Sandbox } from './sandbox.ts'
import type { BoardCost } from '../cost/board-cost.ts'
import type { HashName } from '../cost/model.ts'

const HASHERS = ['sha1', 'sha224', 'sha256', 'sha384', 'sha512']

export function cryptoModule(sb: Sandbox, cost: BoardCost | null = null): unknown {
  const m = new sb.C.Object() as Record<string, unknown>
  const hash = (name: HashName) => (msg: unknown) => {
    const bytes = Uint8Array.from(toBytes(msg))
    cost?.hash(name, bytes.length)
    return sb.arrayBuffer(createHash(name.toLowerCase()).update(bytes).digest())
  }
  m.SHA1 = hash('SHA1')
  m.SHA224 = hash('SHA224')
  m.SHA256 = hash('SHA256')
  m.SHA384 = hash('SHA384')
  m.SHA512 = hash('SHA512')
  m.PBKDF2 = (pass: unknown, salt: unknown, options?: { keySize?: unknown; iterations?: unknown; hasher?: unknown }) => {
    // keySize counts 32-bit words (default 4 = 128 bits); iterations default 1; hasher default SHA1.
    const words = options?.keySize === undefined ? 4 : Number(options.keySize)
    const iterations = options?.iterations === undefined ? 1 : Number(options.iterations)
    const hasher = String(options?.hasher ?? 'SHA1').toLowerCase()
    if (!HASHERS.includes(hasher)) throw sb.error(`Unknown hasher ${String(options?.hasher)}`)
    if (!Number.isInteger(words) || words <= 0 || !Number.isInteger(iterations) || iterations <= 0) throw sb.error('Invalid keySize or iterations')
    const p = Uint8Array.from(toBytes(pass))
    const s = Uint8Array.from(toBytes(salt))
    cost?.pbkdf2(p.length, s.length, { iterations, outBytes: words * 4, hasher: hasher.toUpperCase() as HashName })
    return sb.arrayBuffer(pbkdf2Sync(p, s, iterations, words * 4, hasher))
  }
  return m
}
