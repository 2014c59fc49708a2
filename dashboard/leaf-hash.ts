import { createHash } from 'node:crypto'

/** RFC 6962 leaf hash, the ledger's identity for a frame: SHA-256(0x00 || frame bytes), hex. */
export function leafHashOf(bytes: Uint8Array): string {
  return createHash('sha256').update(Uint8Array.of(0)).update(bytes).digest('hex')
}
