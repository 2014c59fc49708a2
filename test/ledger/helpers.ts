import { randomBytes } from 'node:crypto'
import { ed25519Generate } from '../../ledger/crypto.ts'
import { tempDir } from '../helpers/tmp.ts'

export const tmp = (): string => tempDir('mh-ledger-')
export const producerKey = ed25519Generate()

/** A stand-in for a COSE frame: random bytes of a realistic size, tagged with device and seq. */
export function fakeFrame(deviceId: string, seq: number, size = 300): Uint8Array {
  const b = randomBytes(size)
  b.write(`${deviceId}:${seq}:`, 0)
  return new Uint8Array(b)
}
export const quiet = { log: (_m: string) => {} }
