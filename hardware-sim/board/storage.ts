/**
 * The ESP32's Espruino Storage area (896 KB of flash) backed by a file.
 *
 * Layout follows Espruino's jsflash.c: files are appended one after another,
 * each a 32-byte header (u32 size with flags in the top byte, 28-byte name)
 * followed by the data, 4-byte aligned. Flash bits only go 1 -> 0 without a
 * page erase, so: a file created with a size can be filled in later with
 * offset writes only where its bytes are still erased (0xFF); erasing a file
 * zeroes its name (the space becomes trash until `compact`); a new write of
 * an existing name erases the old one and appends a new copy.
 *
 * The backing file stores every byte inverted (disk = ~flash), so a fresh
 * file is a sparse run of zeros that reads back as erased flash: a fleet of
 * 1,000 boards does not need 896 MB of disk or RAM. Only an index of file
 * headers is kept in memory; data is read from the file when asked for.
 */
import { openSync, readSync, writeSync, closeSync, ftruncateSync, fstatSync, fsyncSync } from 'node:fs'

export const STORAGE_BYTES = 917_504
export const PAGE_BYTES = 4096
export const HEADER_BYTES = 32
export const NAME_BYTES = 28
const ALIGN = 4
/** Flag Espruino sets on the chunks of a StorageFile (`open`). */
export const FLAG_STORAGEFILE = 0x20
/** A StorageFile chunk fills one page with its header. */
export const STORAGEFILE_CHUNK = PAGE_BYTES - HEADER_BYTES

/** Storage failures carry Espruino's own messages. */
export class StorageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'StorageError'
  }
}

/** Thrown (host side) when a brown-out fault cut a write: the board must reboot. */
export class BrownOut extends Error {
  constructor() {
    super('brown-out during flash write')
    this.name = 'BrownOut'
  }
}

interface Entry {
  addr: number
  size: number
  flags: number
  name: string
}

const align = (n: number): number => (n + ALIGN - 1) & ~(ALIGN - 1)

export interface StorageStats {
  totalBytes: number
  freeBytes: number
  fileBytes: number
  fileCount: number
  trashBytes: number
  trashCount: number
}

export class FlashStorage {
  private fd: number
  /** Live files by name. */
  private files = new Map<string, Entry>()
  private trashBytes = 0
  private trashCount = 0
  /** First free (never written since the last erase) address. */
  private end = 0
  /** Fault: every create fails as if the flash were full. */
  flashFull = false
  /** Fault: the next write stops after this fraction of its data, then BrownOut is thrown. */
  private brownOutFraction: number | null = null

  constructor(readonly path: string) {
    this.fd = openSync(path, 'a+')
    closeSync(this.fd)
    this.fd = openSync(path, 'r+')
    const st = fstatSync(this.fd)
    if (st.size > STORAGE_BYTES) throw new StorageError(`storage file ${path} is ${st.size} bytes, expected at most ${STORAGE_BYTES}`)
    if (st.size < STORAGE_BYTES) ftruncateSync(this.fd, STORAGE_BYTES)
    this.scan()
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd)
    this.fd = -1
  }

  /** Arms a brown-out: the next write to flash stops part-way (leaving a torn file). */
  armBrownOut(fraction = 0.5): void {
    if (!(fraction >= 0 && fraction < 1)) throw new RangeError(`expected brown-out fraction in [0, 1), got ${fraction}`)
    this.brownOutFraction = fraction
  }

  private readRaw(addr: number, len: number): Buffer {
    const b = Buffer.alloc(len)
    if (len > 0) readSync(this.fd, b, 0, len, addr)
    for (let i = 0; i < len; i++) b[i] ^= 0xff
    return b
  }

  /** Programs flash: bits can only be cleared, like NOR flash without an erase. */
  private program(addr: number, data: Uint8Array): void {
    if (data.length === 0) return
    const old = this.readRaw(addr, data.length)
    const out = Buffer.alloc(data.length)
    for (let i = 0; i < data.length; i++) out[i] = ~(old[i] & data[i]) & 0xff
    writeSync(this.fd, out, 0, out.length, addr)
  }

  /** Walks the headers from address 0 to rebuild the index (after a reboot, a torn write...). */
  private scan(): void {
    this.files.clear()
    this.trashBytes = 0
    this.trashCount = 0
    let addr = 0
    while (addr + HEADER_BYTES <= STORAGE_BYTES) {
      const h = this.readRaw(addr, HEADER_BYTES)
      const word = h.readUInt32LE(0)
      if (word === 0xffffffff) break
      const size = word & 0xffffff
      const flags = word >>> 24
      const nameBytes = h.subarray(4, 4 + NAME_BYTES)
      const zero = nameBytes.indexOf(0)
      const name = nameBytes.subarray(0, zero < 0 ? NAME_BYTES : zero).toString('latin1')
      const next = align(addr + HEADER_BYTES + size)
      if (next > STORAGE_BYTES) break
      if (name.length === 0) {
        this.trashBytes += next - addr
        this.trashCount++
      } else {
        const prev = this.files.get(name)
        if (prev) this.trash(prev)
        this.files.set(name, { addr, size, flags, name })
      }
      addr = next
    }
    this.end = addr
  }

  private trash(e: Entry): void {
    this.program(e.addr + 4, new Uint8Array(NAME_BYTES))
    this.trashBytes += align(HEADER_BYTES + e.size)
    this.trashCount++
  }

  private static checkName(name: string): void {
    if (typeof name !== 'string' || name.length === 0) throw new StorageError('Invalid filename')
    if (name.length > NAME_BYTES) throw new StorageError(`File name too long: expected at most ${NAME_BYTES} characters, got ${name.length}`)
  }

  /** The bytes of a file, or undefined when it does not exist. */
  read(name: string, offset = 0, length?: number): Buffer | undefined {
    const e = this.files.get(name)
    if (!e) return undefined
    const start = Math.min(Math.max(0, offset), e.size)
    const len = length === undefined ? e.size - start : Math.min(length, e.size - start)
    return this.readRaw(e.addr + HEADER_BYTES + start, len)
  }

  size(name: string): number | undefined {
    return this.files.get(name)?.size
  }

  flags(name: string): number | undefined {
    return this.files.get(name)?.flags
  }

  /** Espruino's Storage.write (jsfWriteFile): create with `size`, or fill erased bytes at `offset`. */
  write(name: string, data: Uint8Array, offset = 0, size = 0, flags = 0): true {
    FlashStorage.checkName(name)
    if (offset < 0 || size < 0 || !Number.isInteger(offset) || !Number.isInteger(size)) throw new StorageError(`expected non-negative integer offset and size, got ${offset}, ${size}`)
    if (data.length === 0) throw new StorageError('Unable to find or create file')
    if (size === 0) size = data.length
    let e = this.files.get(name)
    if ((!e && offset === 0) || (e && offset === 0 && (size !== e.size || flags !== e.flags || !this.isErased(e.addr + HEADER_BYTES, size)))) {
      if (e && size === e.size && flags === e.flags && data.length === size && this.read(name)!.equals(data)) return true
      if (e) {
        this.trash(e)
        this.files.delete(name)
      }
      e = this.create(name, size, flags)
    }
    if (!e) throw new StorageError('Unable to find or create file')
    if (offset + data.length > e.size) throw new StorageError('Too much data for file size')
    const at = e.addr + HEADER_BYTES + offset
    if (!this.isErased(at, data.length)) throw new StorageError('File already written with different data')
    this.programData(at, data)
    return true
  }

  /** Programs file data, honouring an armed brown-out. */
  private programData(at: number, data: Uint8Array): void {
    if (this.brownOutFraction !== null) {
      const keep = Math.floor(data.length * this.brownOutFraction)
      this.brownOutFraction = null
      this.program(at, data.subarray(0, keep))
      fsyncSync(this.fd)
      throw new BrownOut()
    }
    this.program(at, data)
  }

  private isErased(addr: number, len: number): boolean {
    const b = this.readRaw(addr, len)
    for (let i = 0; i < len; i++) if (b[i] !== 0xff) return false
    return true
  }

  private create(name: string, size: number, flags: number): Entry {
    const need = align(HEADER_BYTES + size)
    if (this.flashFull) throw new StorageError('Unable to find or create file')
    if (size > 0xffffff) throw new StorageError('Unable to find or create file')
    if (this.end + need > STORAGE_BYTES) {
      // Espruino compacts automatically when the tail is full.
      if (this.trashBytes > 0) this.compact()
      if (this.end + need > STORAGE_BYTES) throw new StorageError('Unable to find or create file')
    }
    const h = new Uint8Array(HEADER_BYTES)
    const dv = new DataView(h.buffer)
    dv.setUint32(0, (size & 0xffffff) | (flags << 24), true)
    for (let i = 0; i < name.length; i++) h[4 + i] = name.charCodeAt(i) & 0xff
    this.program(this.end, h)
    const e: Entry = { addr: this.end, size, flags, name }
    this.files.set(name, e)
    this.end += need
    return e
  }

  erase(name: string): void {
    const e = this.files.get(name)
    if (!e) return
    this.trash(e)
    this.files.delete(name)
  }

  eraseAll(): void {
    ftruncateSync(this.fd, 0)
    ftruncateSync(this.fd, STORAGE_BYTES)
    this.scan()
  }

  /** Rewrites the live files from address 0 and erases the rest (pages erased, then programmed). */
  compact(): void {
    const live = [...this.files.values()].sort((a, b) => a.addr - b.addr).map((e) => ({ e, data: this.readRaw(e.addr, HEADER_BYTES + e.size) }))
    ftruncateSync(this.fd, 0)
    ftruncateSync(this.fd, STORAGE_BYTES)
    let addr = 0
    for (const { data } of live) {
      this.program(addr, data)
      addr = align(addr + data.length)
    }
    this.scan()
  }

  list(): string[] {
    return [...this.files.values()].sort((a, b) => a.addr - b.addr).map((e) => e.name)
  }

  getFree(): number {
    if (this.flashFull) return 0
    return STORAGE_BYTES - this.end + this.trashBytes
  }

  getStats(): StorageStats {
    let fileBytes = 0
    for (const e of this.files.values()) fileBytes += align(HEADER_BYTES + e.size)
    return {
      totalBytes: STORAGE_BYTES,
      freeBytes: this.flashFull ? 0 : STORAGE_BYTES - this.end,
      fileBytes,
      fileCount: this.files.size,
      trashBytes: this.trashBytes,
      trashCount: this.trashCount,
    }
  }
}

/**
 * StorageFile (`require("Storage").open`): a text log split into page-sized
 * chunks named NAME+"\x01", NAME+"\x02"... Each chunk is created at its full
 * size and appended to with offset writes into still-erased bytes; the text
 * ends at the first 0xFF byte, which is why StorageFiles cannot hold "\xFF".
 */
export class StorageFiles {
  constructor(private readonly flash: FlashStorage) {}

  private chunk(name: string, n: number): string {
    return name + String.fromCharCode(n)
  }

  /** Used length of one chunk (bytes before the first 0xFF). */
  private used(chunkName: string): number {
    const b = this.flash.read(chunkName)
    if (!b) return 0
    const i = b.indexOf(0xff)
    return i < 0 ? b.length : i
  }

  static checkName(name: string): void {
    if (typeof name !== 'string' || name.length === 0 || name.length > NAME_BYTES - 1) throw new StorageError(`Invalid filename: expected 1..${NAME_BYTES - 1} characters, got ${JSON.stringify(name)}`)
  }

  length(name: string): number {
    let total = 0
    for (let n = 1; n < 255; n++) {
      const c = this.chunk(name, n)
      if (this.flash.size(c) === undefined) break
      total += this.used(c)
    }
    return total
  }

  read(name: string, pos: number, len: number): Buffer {
    const parts: Buffer[] = []
    let skip = pos
    let want = len
    for (let n = 1; n < 255 && want > 0; n++) {
      const c = this.chunk(name, n)
      if (this.flash.size(c) === undefined) break
      const u = this.used(c)
      if (skip >= u) {
        skip -= u
        continue
      }
      const take = Math.min(u - skip, want)
      parts.push(this.flash.read(c, skip, take)!)
      want -= take
      skip = 0
    }
    return Buffer.concat(parts)
  }

  append(name: string, data: Uint8Array): void {
    if (data.includes(0xff)) throw new StorageError("StorageFile can't contain character code 255")
    let n = 1
    while (this.flash.size(this.chunk(name, n + 1)) !== undefined) n++
    let off = 0
    while (off < data.length) {
      const c = this.chunk(name, n)
      if (this.flash.size(c) === undefined) {
        const first = data.subarray(off, off + STORAGEFILE_CHUNK)
        this.flash.write(c, first, 0, STORAGEFILE_CHUNK, FLAG_STORAGEFILE)
        off += first.length
      } else {
        const u = this.used(c)
        const room = STORAGEFILE_CHUNK - u
        if (room > 0) {
          const part = data.subarray(off, off + room)
          this.flash.write(c, part, u, 0, FLAG_STORAGEFILE)
          off += part.length
        }
      }
      n++
      if (n >= 255) throw new StorageError('Unable to find or create file')
    }
  }

  erase(name: string): void {
    for (let n = 1; n < 255; n++) {
      const c = this.chunk(name, n)
      if (this.flash.size(c) === undefined) break
      this.flash.erase(c)
    }
  }
}
