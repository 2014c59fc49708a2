/**
 * A file of fixed-size records (leaf hashes, locators, subtree roots) that the ledger
 * indexes live in, so their resident memory does not grow with the number of leaves.
 *
 * - Records are appended to an in-memory tail and written out by `flush(n)` (the
 *   ledger flushes only what is covered by a durable block, see index-store.ts).
 * - Reads of flushed records are positional reads through a small LRU page cache.
 * - `path === null` keeps everything in memory (read-only opens without an index).
 * The content is derived data: nothing here is fsynced except by `sync()`, called at
 * an index checkpoint, and a damaged file is rebuilt from the segment files.
 */
import { openSync, readSync, writeSync, closeSync, fdatasync, fdatasyncSync, ftruncateSync, fstatSync, constants } from 'node:fs'

// Proofs read a few dozen scattered records: small pages keep each miss to one cheap read.
const PAGE_BYTES = 4096

export class FlatFile {
  private fd: number | undefined
  /** Records on disk (trusted: the checkpoint said so, or we wrote them). */
  private disk = 0
  private tail: Buffer
  private tailCount = 0
  private readonly perPage: number
  private pages = new Map<number, Buffer>()

  constructor(readonly path: string | null, readonly rec: number, private readonly maxPages = 16, readOnly = false) {
    this.perPage = Math.max(1, Math.floor(PAGE_BYTES / rec))
    this.tail = Buffer.alloc(rec * 256)
    if (path !== null) this.fd = openSync(path, readOnly ? constants.O_RDONLY : constants.O_RDWR | constants.O_CREAT, 0o644)
  }

  get count(): number {
    return this.disk + this.tailCount
  }

  /** Records physically present in the file. */
  fileCount(): number {
    return this.fd === undefined ? 0 : Math.floor(fstatSync(this.fd).size / this.rec)
  }

  /** Trusts the first n records on disk and drops anything after them (file and tail). */
  reset(n: number, truncateFile: boolean): void {
    this.disk = n
    this.tailCount = 0
    this.pages.clear()
    if (truncateFile && this.fd !== undefined) ftruncateSync(this.fd, n * this.rec)
  }

  /** Appends one record (copied); returns its index. */
  append(b: Uint8Array): number {
    if (b.length !== this.rec) throw new Error(`${this.path}: expected a ${this.rec}-byte record, got ${b.length}`)
    this.reserve().set(b)
    return this.count - 1
  }

  /** Appends one zeroed record and returns a view of it to fill in. */
  reserve(): Buffer {
    if ((this.tailCount + 1) * this.rec > this.tail.length) {
      const n = Buffer.alloc(this.tail.length * 2)
      this.tail.copy(n, 0, 0, this.tailCount * this.rec)
      this.tail = n
    }
    const v = this.tail.subarray(this.tailCount * this.rec, (this.tailCount + 1) * this.rec)
    v.fill(0)
    this.tailCount++
    return v
  }

  /** Record i (a view: copy it if you keep it across an append or a flush). */
  get(i: number): Buffer {
    if (i < 0 || i >= this.count) throw new RangeError(`${this.path}: record ${i} of ${this.count}`)
    if (i >= this.disk) return this.tail.subarray((i - this.disk) * this.rec, (i - this.disk + 1) * this.rec)
    const p = Math.floor(i / this.perPage)
    let page = this.pages.get(p)
    const first = p * this.perPage
    if (page === undefined || (i - first + 1) * this.rec > page.length) {
      const n = Math.min(this.perPage, this.disk - first)
      page = Buffer.allocUnsafe(n * this.rec)
      const got = readSync(this.fd!, page, 0, page.length, first * this.rec)
      if (got !== page.length) throw new Error(`${this.path}: short read at record ${first} (index file damaged)`)
      this.pages.delete(p)
      if (this.pages.size >= this.maxPages) this.pages.delete(this.pages.keys().next().value!)
    } else this.pages.delete(p) // re-insert: most recently used last
    this.pages.set(p, page)
    return page.subarray((i - first) * this.rec, (i - first + 1) * this.rec)
  }

  /** Overwrites record i in place (retention rewrites locators). */
  put(i: number, b: Uint8Array): void {
    if (i >= this.disk) {
      this.get(i).set(b)
      return
    }
    if (this.fd === undefined) throw new Error('unreachable: memory file with disk records')
    writeSync(this.fd, b, 0, this.rec, i * this.rec)
    this.pages.delete(Math.floor(i / this.perPage))
  }

  /** Writes records [disk, n) to the file; later tail records stay in memory. */
  flush(n: number): void {
    if (this.fd === undefined || n <= this.disk) return
    if (n > this.count) throw new RangeError(`${this.path}: flush(${n}) beyond ${this.count}`)
    const k = n - this.disk
    const bytes = k * this.rec
    let done = 0
    while (done < bytes) done += writeSync(this.fd, this.tail, done, bytes - done, this.disk * this.rec + done)
    this.tail.copy(this.tail, 0, bytes, this.tailCount * this.rec)
    this.tailCount -= k
    this.disk = n
    // The tail grew during a burst; give the memory back once it is written out.
    if (this.tail.length > 1 << 20 && this.tailCount * this.rec * 4 < this.tail.length) {
      const t = Buffer.alloc(Math.max(this.rec * 256, this.tailCount * this.rec * 2))
      this.tail.copy(t, 0, 0, this.tailCount * this.rec)
      this.tail = t
    }
  }

  sync(): void {
    if (this.fd !== undefined) fdatasyncSync(this.fd)
  }

  /** fdatasync on the thread pool (the event loop keeps serving appends meanwhile). */
  syncAsync(): Promise<void> {
    const fd = this.fd
    if (fd === undefined) return Promise.resolve()
    return new Promise((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())))
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = undefined
    this.pages.clear()
  }
}
