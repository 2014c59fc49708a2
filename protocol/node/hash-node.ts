import { createHash } from 'node:crypto'
import type { HashProvider } from '../portable/hash.ts'

/** The Node hash provider for the portable protocol code. */
export const nodeHash: HashProvider = {
  sha256(data: Uint8Array): Uint8Array {
    return new Uint8Array(createHash('sha256').update(data).digest())
  },
}
