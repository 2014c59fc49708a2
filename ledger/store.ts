/**
 * Append-only segment files with per-record framing and group commit.
 *
 * Record = u32le bodyLength | u32le CRC-32(length bytes || body) | body. Appends are
 * queued; one writer writes the whole queue with a single writev and fdatasync, then
 * resolves every append in it (group commit), so durability costs one sync per batch.
 * On open, a damaged record that reaches the end of the last segment is a torn tail and
 * is cut back (with a log line saying how many bytes); damage anywhere else is refused.
 */
import { open, readdir, readFile, rename, truncate, mkdir, unlink, type FileHandle } from 'node:fs/promises'
import { openSync, readSync, closeSync, fsyncSync } from 'node:fs'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'

export const RECORD_OVERHEAD = 8
const MAX_BODY = 64 * 1024 * 1024

export class StorageError extends Error {
  override name = 'StorageError'
  constructor(message: string, readonly segment?: string, readonly offset?: number) {
    super(message)
  }
}

export function frameRecord(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(RECORD_OVERHEAD + body.length)
  out.set(body, RECORD_OVERHEAD)
  return sealRecord(out)
}

/** Fills in length and CRC of a record whose body already sits at offset 8 (no copy). */
export function sealRecord(out: Buffer): Buffer {
  out.writeUInt32LE(out.length - RECORD_OVERHEAD, 0)
  out.writeUInt32LE(crc32(out.subarray(RECORD_OVERHEAD), crc32(out.subarray(0, 4))), 4)
  return out
}

export interface ScannedRecord {
  seg: number
  offset: number
  body: Buffer
}

export const segName = (n: number): string => `seg-${String(n).padStart(6, '0')}.log`

/**
 * Parses one segment's bytes. Returns the records and, if the data ends in a damaged
 * record, the offset where the good data stops plus whether that damage is a torn tail
 * (the bad record runs to or past end of file) or corruption in the middle.
 */
export function parseSegment(seg: number, data: Buffer): { records: ScannedRecord[]; goodEnd: number; damage?: { offset: number; torn: boolean; reason: string } } {
  const records: ScannedRecord[] = []
  let p = 0
  while (p < data.length) {
    if (p + RECORD_OVERHEAD > data.length) return { records, goodEnd: p, damage: { offset: p, torn: true, reason: 'truncated record header' } }
    const len = data.readUInt32LE(p)
    const end = p + RECORD_OVERHEAD + len
    if (len > MAX_BODY || end > data.length) return { records, goodEnd: p, damage: { offset: p, torn: true, reason: `record length ${len} runs past end of file` } }
    const want = data.readUInt32LE(p + 4)
    const got = crc32(data.subarray(p + RECORD_OVERHEAD, end), crc32(data.subarray(p, p + 4)))
    if (want !== got) return { records, goodEnd: p, damage: { offset: p, torn: end === data.length, reason: `CRC mismatch (stored ${want.toString(16)}, computed ${got.toString(16)})` } }
    records.push({ seg, offset: p, body: data.subarray(p + RECORD_OVERHEAD, end) })
    p = end
  }
  return { records, goodEnd: p }
}

interface Pending {
  seg: number
  buf: Buffer
}

export class SegmentStore {
  private fh: FileHandle | undefined
  private activeSeg = 0
  private activeSize = 0
  private queue: Pending[] = []
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = []
  private flushing: Promise<void> | undefined
  private rollNext = false
  private readFds = new Map<number, number>()
  private failed: StorageError | undefined
  closed = false
  readOnly = false

  private constructor(readonly dir: string, private readonly groupCommitMs: number, private readonly segmentBytes: number) {}

  /**
   * Opens (creating) the store and hands every good record to `onRecord` in order;
   * with `startAt`, only records from that position on (the ledger's index checkpoint:
   * earlier segments are not read at all, so their damage is left to `verify`).
   */
  static async open(dir: string, opts: { groupCommitMs?: number; segmentBytes?: number; log?: (msg: string) => void; onRecord: (r: ScannedRecord) => void; readOnly?: boolean; startAt?: { seg: number; offset: number } }): Promise<SegmentStore> {
    if (!opts.readOnly) await mkdir(dir, { recursive: true })
    const s = new SegmentStore(dir, opts.groupCommitMs ?? 0, opts.segmentBytes ?? 64 * 1024 * 1024)
    const all = await listSegments(dir)
    const from = opts.startAt
    if (from && !all.includes(from.seg)) throw new StorageError(`${segName(from.seg)} is missing (the index checkpoint points into it)`, segName(from.seg), from.offset)
    const segs = from ? all.filter((n) => n >= from.seg) : all
    for (let i = 0; i < segs.length; i++) {
      const n = segs[i]
      const path = join(dir, segName(n))
      const data = await readFile(path)
      const r = parseSegment(n, data)
      if (from && n === from.seg && r.goodEnd < from.offset) throw new StorageError(`${segName(n)} has good records only up to offset ${r.goodEnd}, but the index checkpoint is at ${from.offset}`, segName(n), from.offset)
      for (const rec of r.records) if (!from || n > from.seg || rec.offset >= from.offset) opts.onRecord(rec)
      if (r.damage) {
        const last = i === segs.length - 1
        if (!last || !r.damage.torn) throw new StorageError(`${segName(n)} offset ${r.damage.offset}: ${r.damage.reason}; refusing to open (run 'mhealth ledger verify')`, segName(n), r.damage.offset)
        if (opts.readOnly) {
          // A live writer may be mid-append: read up to the last whole record, change nothing.
          opts.log?.(`ledger: ignoring ${data.length - r.goodEnd} bytes after offset ${r.goodEnd} of ${segName(n)} (incomplete record; read-only)`)
          s.readOnly = true
          continue
        }
        await truncate(path, r.goodEnd)
        opts.log?.(`ledger: torn tail in ${segName(n)}: cut ${data.length - r.goodEnd} bytes at offset ${r.goodEnd} (${r.damage.reason})`)
      }
      s.activeSeg = n
      s.activeSize = r.damage ? r.goodEnd : data.length
    }
    s.readOnly = !!opts.readOnly
    if (!opts.readOnly) {
      s.fh = await open(join(dir, segName(s.activeSeg)), 'a')
      s.fhSeg = s.activeSeg
      if (segs.length === 0) await fsyncDir(dir)
    }
    return s
  }

  get position(): { seg: number; offset: number } {
    return { seg: this.activeSeg, offset: this.activeSize }
  }

  /** Queues a record; returns where it will live and a promise resolved once it is durable. */
  append(body: Uint8Array): { seg: number; offset: number; durable: Promise<void> } {
    return this.appendSealed(frameRecord(body))
  }

  /** Like append, for a buffer built with 8 bytes of headroom before the body (hot path: no copy). */
  appendSealed(buf: Buffer): { seg: number; offset: number; durable: Promise<void> } {
    if (this.closed) throw new StorageError('ledger is closed')
    if (this.readOnly) throw new StorageError('ledger is open read-only')
    if (this.failed) throw this.failed
    if (this.rollNext) {
      this.rollNext = false
      this.activeSeg++
      this.activeSize = 0
    }
    sealRecord(buf)
    const pos = { seg: this.activeSeg, offset: this.activeSize }
    this.activeSize += buf.length
    this.queue.push({ seg: pos.seg, buf })
    const durable = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }))
    this.schedule()
    return { ...pos, durable }
  }

  /** After the current record, start a new segment once this one is big enough (called at block boundaries). */
  maybeRoll(): void {
    if (this.activeSize >= this.segmentBytes) this.rollNext = true
  }

  private schedule(): void {
    if (this.flushing) return
    this.flushing = new Promise<void>((res) => (this.groupCommitMs > 0 ? setTimeout(res, this.groupCommitMs) : setImmediate(res)))
      .then(() => this.flushLoop())
      .finally(() => {
        this.flushing = undefined
        if (this.queue.length) this.schedule()
      })
  }

  private async flushLoop(): Promise<void> {
    while (this.queue.length) {
      const batch = this.queue
      const waiters = this.waiters
      this.queue = []
      this.waiters = []
      if (this.failed) {
        // Queued while the failed write was in progress: writing them after a torn record
        // would put good records behind damage. Refused like the batch that failed.
        for (const w of waiters) w.reject(this.failed)
        continue
      }
      try {
        let i = 0
        while (i < batch.length) {
          const seg = batch[i].seg
          let j = i
          while (j < batch.length && batch[j].seg === seg) j++
          await this.ensureSegment(seg)
          const bufs = batch.slice(i, j).map((p) => p.buf)
          let want = 0
          for (const b of bufs) want += b.length
          // A full disk can write part of a batch and report it as success: what was asked
          // for and not written is not durable, and nothing after it may be acknowledged.
          const { bytesWritten } = await this.fh!.writev(bufs)
          if (bytesWritten !== want) throw new Error(`short write: ${bytesWritten} of ${want} bytes (disk full?)`)
          await this.fh!.datasync()
          i = j
        }
        for (const w of waiters) w.resolve()
      } catch (e) {
        // A failed write or sync means we cannot promise durability for anything after it.
        this.failed = new StorageError(`write failed: ${(e as Error).message}`)
        for (const w of waiters) w.reject(this.failed)
      }
    }
  }

  private fhSeg = 0
  private async ensureSegment(seg: number): Promise<void> {
    if (seg === this.fhSeg) return
    await this.fh!.close()
    this.fh = await open(join(this.dir, segName(seg)), 'a')
    this.fhSeg = seg
    await fsyncDir(this.dir)
  }

  /** Resolves once everything queued so far is durable. */
  async sync(): Promise<void> {
    while (this.flushing || this.queue.length) {
      if (!this.flushing) this.schedule()
      await this.flushing
    }
    if (this.failed) throw this.failed
  }

  /**
   * Resolves once nothing queued before the call is still being written, whether or not the
   * write succeeded: for readers, who read what is durable even after a write failure.
   */
  async settled(): Promise<void> {
    while (this.flushing || (this.queue.length && !this.failed)) {
      if (!this.flushing) this.schedule()
      await this.flushing
    }
  }

  /** Reads `len` body bytes at a record offset (the record must be durable). */
  readBody(seg: number, offset: number): Buffer {
    let fd = this.readFds.get(seg)
    if (fd === undefined) {
      fd = openSync(join(this.dir, segName(seg)), 'r')
      this.readFds.set(seg, fd)
    }
    const head = Buffer.alloc(RECORD_OVERHEAD)
    readSync(fd, head, 0, RECORD_OVERHEAD, offset)
    const len = head.readUInt32LE(0)
    if (len > MAX_BODY) throw new StorageError(`${segName(seg)} offset ${offset}: bad record length ${len}`, segName(seg), offset)
    const body = Buffer.alloc(len)
    if (readSync(fd, body, 0, len, offset + RECORD_OVERHEAD) !== len) throw new StorageError(`${segName(seg)} offset ${offset}: record runs past end of file`, segName(seg), offset)
    return body
  }

  /** Closes cached read descriptors (segment files were rewritten, e.g. by retention). */
  dropReaders(): void {
    for (const fd of this.readFds.values()) closeSync(fd)
    this.readFds.clear()
  }

  /** Atomically replaces a closed segment with new content (tmp file, fsync, rename, fsync dir). */
  async replaceSegment(seg: number, records: Uint8Array[]): Promise<void> {
    if (seg === this.activeSeg) throw new StorageError('cannot rewrite the active segment')
    const tmp = join(this.dir, segName(seg) + '.tmp')
    const fh = await open(tmp, 'w')
    try {
      await fh.writev(records.map((b) => frameRecord(b)))
      await fh.sync()
    } finally {
      await fh.close()
    }
    this.dropReaders()
    await rename(tmp, join(this.dir, segName(seg)))
    await fsyncDir(this.dir)
  }

  get activeSegment(): number {
    return this.activeSeg
  }

  async close(): Promise<void> {
    if (this.closed) return
    await this.sync()
    this.closed = true
    await this.fh?.close()
    this.dropReaders()
  }

  /** The write failure that stopped this store, if any (nothing is appended after one). */
  get fault(): StorageError | undefined {
    return this.failed
  }

  /**
   * Closes a store whose writes failed without trying to flush: what it still holds was never
   * acknowledged. Reopening the directory then recovers as after a crash (a torn tail is cut).
   */
  async abandon(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.flushing) await this.flushing.catch(() => {})
    await this.fh?.close().catch(() => {})
    this.dropReaders()
  }
}

export async function listSegments(dir: string): Promise<number[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw e
  }
  // Leftover .tmp files are from a retention rewrite that crashed before its rename: the
  // original segment is still intact, so they are simply removed.
  for (const n of names) if (/^seg-\d{6}\.log\.tmp$/.test(n)) await unlink(join(dir, n)).catch(() => {})
  return names.filter((n) => /^seg-\d{6}\.log$/.test(n)).map((n) => Number(n.slice(4, 10))).sort((a, b) => a - b)
}

async function fsyncDir(dir: string): Promise<void> {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** Reads and CRC-checks the record at `offset` of segment `seg` (no store needed); throws StorageError. */
export function readRecordAt(dir: string, seg: number, offset: number): Buffer {
  let fd: number
  try {
    fd = openSync(join(dir, segName(seg)), 'r')
  } catch (e) {
    throw new StorageError(`${segName(seg)}: ${(e as Error).message}`, segName(seg), offset)
  }
  try {
    const head = Buffer.alloc(RECORD_OVERHEAD)
    if (readSync(fd, head, 0, RECORD_OVERHEAD, offset) !== RECORD_OVERHEAD) throw new StorageError(`${segName(seg)} offset ${offset}: no record there`, segName(seg), offset)
    const len = head.readUInt32LE(0)
    if (len > MAX_BODY) throw new StorageError(`${segName(seg)} offset ${offset}: bad record length ${len}`, segName(seg), offset)
    const body = Buffer.alloc(len)
    if (readSync(fd, body, 0, len, offset + RECORD_OVERHEAD) !== len) throw new StorageError(`${segName(seg)} offset ${offset}: record runs past end of file`, segName(seg), offset)
    if (crc32(body, crc32(head.subarray(0, 4))) !== head.readUInt32LE(4)) throw new StorageError(`${segName(seg)} offset ${offset}: CRC mismatch`, segName(seg), offset)
    return body
  } finally {
    closeSync(fd)
  }
}
