/**
 * A gzipped POSIX ustar archive of regular files (a clinic gateway's backup: a registry and
 * ledger segments, not a disk image). Enough of ustar for `tar -xzf` to read it, and a reader
 * strict enough to refuse a damaged one: gzip's CRC, every header checksum, sizes within the
 * data and the end-of-archive marker. Files go in and come out a chunk at a time
 * (`writeTarGzFile`, `scanTarGzFile`): a ledger of tens of GB is archived in bounded memory.
 */
import { createGzip, createGunzip } from 'node:zlib'
import { createReadStream, createWriteStream } from 'node:fs'
import { open } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

export class ArchiveError extends Error {
  override name = 'ArchiveError'
}

const BLOCK = 512

function octal(buf: Buffer, at: number, width: number, v: number): void {
  buf.write(v.toString(8).padStart(width - 1, '0') + '\0', at, width, 'ascii')
}

function header(e: { name: string; mode?: number; mtimeMs?: number }, size: number): Buffer {
  const h = Buffer.alloc(BLOCK)
  const name = Buffer.from(e.name, 'utf8')
  if (name.length === 0 || name.length > 99) throw new ArchiveError(`tar: entry name must be 1..99 bytes, got ${name.length} (${e.name})`)
  name.copy(h, 0)
  octal(h, 100, 8, e.mode ?? 0o600)
  octal(h, 108, 8, 0)
  octal(h, 116, 8, 0)
  octal(h, 124, 12, size)
  octal(h, 136, 12, Math.floor((e.mtimeMs ?? Date.now()) / 1000))
  h.fill(0x20, 148, 156) // checksum field counts as spaces while summing
  h[156] = 0x30 // '0': regular file
  h.write('ustar\u000000', 257, 8, 'binary')
  let sum = 0
  for (const b of h) sum += b
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii')
  return h
}

/** A ustar header block at archive offset `p`: its checksum checked, its fields read. */
function parseHeader(h: Buffer, p: number): { name: string; size: number; mode: number; type: string } {
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]
  const stored = parseInt(h.toString('ascii', 148, 156).replace(/[\0 ]+$/, ''), 8)
  if (stored !== sum) throw new ArchiveError(`tar: header at byte ${p} has checksum ${stored}, computed ${sum}`)
  const name = h.toString('utf8', 0, 100).replace(/\0.*$/s, '')
  const size = parseInt(h.toString('ascii', 124, 136).replace(/[\0 ]+$/, ''), 8)
  const mode = parseInt(h.toString('ascii', 100, 108).replace(/[\0 ]+$/, ''), 8)
  if (!Number.isSafeInteger(size) || size < 0) throw new ArchiveError(`tar: ${name}: size ${size} is not a size`)
  return { name, size, mode, type: String.fromCharCode(h[156]) }
}

/** An entry of a streamed archive: bytes in memory, or the first `size` bytes of a file. */
export interface TarSource {
  name: string
  size: number
  data?: Buffer
  path?: string
  mode?: number
  mtimeMs?: number
}

const CHUNK = 1 << 20

async function* tarStream(entries: TarSource[]): AsyncGenerator<Buffer> {
  for (const e of entries) {
    yield header(e, e.size)
    if (e.data) {
      if (e.data.length !== e.size) throw new ArchiveError(`tar: ${e.name}: ${e.data.length} bytes given, ${e.size} declared`)
      yield e.data
    } else {
      const fh = await open(e.path!, 'r')
      try {
        for (let at = 0; at < e.size; ) {
          const buf = Buffer.allocUnsafe(Math.min(CHUNK, e.size - at))
          const { bytesRead } = await fh.read(buf, 0, buf.length, at)
          if (bytesRead === 0) throw new ArchiveError(`tar: ${e.path} ended at byte ${at}, ${e.size} expected (was it truncated while being archived?)`)
          at += bytesRead
          yield buf.subarray(0, bytesRead)
        }
      } finally {
        await fh.close()
      }
    }
    const pad = (BLOCK - (e.size % BLOCK)) % BLOCK
    if (pad) yield Buffer.alloc(pad)
  }
  yield Buffer.alloc(2 * BLOCK)
}

/** Writes the archive to `path` (mode 0600) a chunk at a time; returns its size in bytes. */
export async function writeTarGzFile(path: string, entries: TarSource[]): Promise<number> {
  const out = createWriteStream(path, { mode: 0o600 })
  await pipeline(Readable.from(tarStream(entries)), createGzip(), out)
  return out.bytesWritten
}

/** Where a streamed entry's bytes go (null from `onEntry`: skip it). */
export interface EntrySink {
  write(chunk: Buffer): void
  end(): void
}

/**
 * Reads the archive at `path` a chunk at a time, handing each regular file to `onEntry`;
 * throws ArchiveError naming what is wrong.
 */
export async function scanTarGzFile(path: string, onEntry: (name: string, size: number, mode: number) => EntrySink | null): Promise<void> {
  const src = createReadStream(path)
  const gunzip = createGunzip()
  src.on('error', (e) => gunzip.destroy(e))
  src.pipe(gunzip)
  let pending = Buffer.alloc(0)
  let p = 0 // archive offset of pending[0]
  let sink: EntrySink | null = null
  let left = 0 // data bytes of the current entry still to come
  let skip = 0 // padding after them
  let done = false
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      let c = chunk
      while (c.length > 0 && !done) {
        if (left > 0) {
          const n = Math.min(left, c.length)
          sink?.write(c.subarray(0, n))
          left -= n
          p += n
          c = c.subarray(n)
          if (left === 0) sink?.end()
          continue
        }
        if (skip > 0) {
          const n = Math.min(skip, c.length)
          skip -= n
          p += n
          c = c.subarray(n)
          continue
        }
        const need = BLOCK - pending.length
        pending = Buffer.concat([pending, c.subarray(0, need)])
        c = c.subarray(Math.min(need, c.length))
        if (pending.length < BLOCK) continue
        const h = pending
        pending = Buffer.alloc(0)
        if (h.every((b) => b === 0)) {
          done = true
          break
        }
        const { name, size, mode, type } = parseHeader(h, p)
        p += BLOCK
        if (type === '0' || type === '\0') {
          sink = onEntry(name, size, mode)
          if (size === 0) sink?.end()
        } else if (type === '5') sink = null
        else throw new ArchiveError(`tar: ${name}: entry type '${type}' is not a regular file or directory`)
        left = size
        skip = (BLOCK - (size % BLOCK)) % BLOCK
      }
      // after the end marker the rest is read too, so that gunzip checks the stream's CRC
    }
  } catch (e) {
    if (e instanceof ArchiveError) throw e
    throw new ArchiveError(`not a whole gzip stream (${(e as Error).message})`)
  } finally {
    src.destroy()
    gunzip.destroy()
  }
  if (!done) throw new ArchiveError(left > 0 ? `tar: ends inside an entry (truncated)` : 'tar: ends without its end-of-archive marker (truncated)')
}
