import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ed25519Generate } from '../../ledger/crypto.ts'
import { toHex } from '../../ledger/merkle.ts'
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

/** How fixtures/writer.ts appends: to which devices, in batches of how many, with which ledger settings. */
export interface WriterOptions {
  devices: string[]
  batch: number
  /** Frames are this many random bytes plus seq % 50. */
  frameBytes: number
  blockMaxLeaves: number
  blockIntervalMs: number
  indexCommitMs?: number
}

/**
 * Runs fixtures/writer.ts on `dir` in a child process, records each acknowledged frame in
 * `acked` ("<device> <seq>" → leaf hash hex) and SIGKILLs the child once `acked` holds
 * `target` entries. Resolves with the signal the child ended with (SIGKILL unless it died
 * first) and its stderr.
 */
export async function killWriterAt(dir: string, o: WriterOptions, acked: Map<string, string>, target: number): Promise<{ signal: NodeJS.Signals | null; stderr: string }> {
  const writer = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'writer.ts')
  const child = spawn(process.execPath, ['--import', 'tsx', writer, dir, toHex(producerKey.privateKey), toHex(producerKey.publicKey), JSON.stringify(o)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let buf = ''
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  child.stdout.on('data', (d) => {
    buf += d
    const lines = buf.split('\n')
    buf = lines.pop()!
    for (const line of lines) {
      const m = /^ack (\S+) (\d+) ([0-9a-f]{64})$/.exec(line)
      if (m) acked.set(`${m[1]} ${m[2]}`, m[3])
    }
    if (acked.size >= target && child.exitCode === null && !child.killed) child.kill('SIGKILL')
  })
  await new Promise((r) => child.once('close', r))
  return { signal: child.signalCode, stderr }
}
