/**
 * A gzipped POSIX ustar archive of regular files, written and read whole in memory (a
 * clinic gateway's backup: a registry and ledger segments, not a disk image). Enough of
 * ustar for `tar -xzf` to read it, and a reader strict enough to refuse a damaged one:
 * gzip's CRC, every header checksum, sizes within the data and the end-of-archive marker.
 */
import { gzipSync, gunzipSync } from 'node:zlib'

export interface TarEntry {
  /** Relative path with '/' separators, under 100 bytes. */
  name: string
  data: Buffer
  /** Permission bits (default 0o600). */
  mode?: number
  mtimeMs?: number
}

export class ArchiveError extends Error {
  override name = 'ArchiveError'
}

const BLOCK = 512

function octal(buf: Buffer, at: number, width: number, v: number): void {
  buf.write(v.toString(8).padStart(width - 1, '0') + '\0', at, width, 'ascii')
}

function header(e: TarEntry): Buffer {
  const h = Buffer.alloc(BLOCK)
  const name = Buffer.from(e.name, 'utf8')
  if (name.length === 0 || name.length > 99) throw new ArchiveError(`tar: entry name must be 1..99 bytes, got ${name.length} (${e.name})`)
  name.copy(h, 0)
  octal(h, 100, 8, e.mode ?? 0o600)
  octal(h, 108, 8, 0)
  octal(h, 116, 8, 0)
  octal(h, 124, 12, e.data.length)
  octal(h, 136, 12, Math.floor((e.mtimeMs ?? Date.now()) / 1000))
  h.fill(0x20, 148, 156) // checksum field counts as spaces while summing
  h[156] = 0x30 // '0': regular file
  h.write('ustar\u000000', 257, 8, 'binary')
  let sum = 0
  for (const b of h) sum += b
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii')
  return h
}

export function writeTarGz(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = []
  for (const e of entries) {
    parts.push(header(e), e.data)
    const pad = (BLOCK - (e.data.length % BLOCK)) % BLOCK
    if (pad) parts.push(Buffer.alloc(pad))
  }
  parts.push(Buffer.alloc(2 * BLOCK))
  return gzipSync(Buffer.concat(parts))
}

/** Reads every regular file; throws ArchiveError naming what is wrong. */
export function readTarGz(gz: Buffer): TarEntry[] {
  let tar: Buffer
  try {
    tar = gunzipSync(gz)
  } catch (e) {
    throw new ArchiveError(`not a whole gzip stream (${(e as Error).message})`)
  }
  const out: TarEntry[] = []
  let p = 0
  for (;;) {
    if (p + BLOCK > tar.length) throw new ArchiveError('tar: ends without its end-of-archive marker (truncated)')
    const h = tar.subarray(p, p + BLOCK)
    if (h.every((b) => b === 0)) return out
    let sum = 0
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]
    const stored = parseInt(h.toString('ascii', 148, 156).replace(/[\0 ]+$/, ''), 8)
    if (stored !== sum) throw new ArchiveError(`tar: header at byte ${p} has checksum ${stored}, computed ${sum}`)
    const name = h.toString('utf8', 0, 100).replace(/\0.*$/s, '')
    const size = parseInt(h.toString('ascii', 124, 136).replace(/[\0 ]+$/, ''), 8)
    const mode = parseInt(h.toString('ascii', 100, 108).replace(/[\0 ]+$/, ''), 8)
    const type = String.fromCharCode(h[156])
    if (!Number.isSafeInteger(size) || size < 0 || p + BLOCK + size > tar.length) throw new ArchiveError(`tar: ${name}: size ${size} runs past the end of the archive`)
    if (type === '0' || type === '\0') out.push({ name, data: Buffer.from(tar.subarray(p + BLOCK, p + BLOCK + size)), mode })
    else if (type !== '5') throw new ArchiveError(`tar: ${name}: entry type '${type}' is not a regular file or directory`)
    p += BLOCK + Math.ceil(size / BLOCK) * BLOCK
  }
}
