/**
 * Store-and-forward: a bounded ring of frames in flash, in a few Storage files ("segments")
 * created at full size. Flash bits only go 1 -> 0 without an erase, so a record is written
 * once into 0xFF space and later marked by clearing bytes, never rewritten:
 *
 *   segment: 'M' 'Q' gen(4, BE) then records
 *   record:  0xA5 len(2, BE) payload(len) commit(1) acked(1)
 *
 * commit is cleared after the payload is written (a record without it was torn by a
 * brown-out and is skipped); acked is cleared when the gateway's PUBACK arrives. A segment
 * is recycled (re-created, one erase) only when none of its records is live, or, when the
 * ring is full, the oldest segment is dropped and its live records counted in `dropped`.
 * Writes therefore never need Storage compaction until the freed files add up
 * (see docs/firmware.md).
 */

export interface FlashStorage {
  write(name: string, data: string, offset?: number, size?: number): boolean
  read(name: string, offset?: number, length?: number): string | undefined
  erase(name: string): void
}

export interface RingOptions {
  /** File name prefix; files are prefix0..prefix(n-1). */
  prefix: string
  segments: number
  segSize: number
  /** Most records tracked in RAM at once (index cost: 5 bytes each). */
  maxRecords: number
}

const HDR = 6
const REC_MAGIC = 0xa5
const REC_OVERHEAD = 5
const DEAD = 0xffffffff

function u32be(n: number): string {
  return String.fromCharCode((n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255)
}

export class FlashRing {
  st: FlashStorage
  o: RingOptions
  gen: number[]
  live: Uint16Array
  wSeg: number
  wOff: number
  ids: Uint32Array
  sending: Uint8Array
  head: number
  len: number
  /** Live records in the index (excluding tombstones). */
  count: number
  dropped: number

  constructor(st: FlashStorage, o: RingOptions) {
    // 2..255 segments of 64..65535 bytes (ids pack segment and offset into 32 bits).
    if (!(o.segments >= 2 && o.segments <= 255 && o.segSize >= 64 && o.segSize <= 65535)) throw new Error('FlashRing: bad geometry ' + o.segments + ' x ' + o.segSize)
    this.st = st
    this.o = o
    this.gen = []
    this.live = new Uint16Array(o.segments)
    this.wSeg = -1
    this.wOff = 0
    this.ids = new Uint32Array(o.maxRecords)
    this.sending = new Uint8Array(o.maxRecords)
    this.head = 0
    this.len = 0
    this.count = 0
    this.dropped = 0
  }

  name(seg: number): string {
    return this.o.prefix + seg
  }

  /** Largest payload one record can hold. */
  maxPayload(): number {
    return this.o.segSize - HDR - REC_OVERHEAD
  }

  /** Rebuilds the index from flash (boot): segments in generation order, records in file order. */
  open(): void {
    const n = this.o.segments
    const order: number[] = []
    for (let s = 0; s < n; s++) {
      this.gen[s] = -1
      const h = this.st.read(this.name(s), 0, HDR)
      if (h === undefined || h.length < HDR || h.charCodeAt(0) !== 0x4d || h.charCodeAt(1) !== 0x51) continue
      this.gen[s] = ((h.charCodeAt(2) << 24) >>> 0) + (h.charCodeAt(3) << 16) + (h.charCodeAt(4) << 8) + h.charCodeAt(5)
      order.push(s)
    }
    const gen = this.gen
    order.sort(function (a, b) { return gen[a] - gen[b] })
    for (let i = 0; i < order.length; i++) this.scan(order[i])
  }

  scan(seg: number): void {
    const size = this.o.segSize
    const name = this.name(seg)
    let off = HDR
    let end = HDR
    while (off + REC_OVERHEAD <= size) {
      const h = this.st.read(name, off, 3)
      if (h === undefined) break
      const m = h.charCodeAt(0)
      if (m === 0xff) {
        end = off
        break
      }
      const len = (h.charCodeAt(1) << 8) | h.charCodeAt(2)
      if (m !== REC_MAGIC || off + len + REC_OVERHEAD > size) {
        end = size // corrupt or torn header: seal the segment, never append over it
        break
      }
      const tail = this.st.read(name, off + 3 + len, 2) || '\xff\xff'
      if (tail.charCodeAt(0) === 0 && tail.charCodeAt(1) === 0xff) this.index(seg, off)
      else if (tail.charCodeAt(0) !== 0) this.dropped++ // torn by a brown-out before its commit
      off += len + REC_OVERHEAD
      end = off
    }
    // Segments are scanned oldest first, so the last one scanned is where writing resumes;
    // a sealed (corrupt) segment reports its full size and is never appended to.
    this.wSeg = seg
    this.wOff = end
  }

  index(seg: number, off: number): void {
    if (this.len === this.o.maxRecords) this.compactIndex()
    if (this.len === this.o.maxRecords) this.dropOldestRecord()
    const i = (this.head + this.len) % this.o.maxRecords
    this.ids[i] = seg * 65536 + off
    this.sending[i] = 0
    this.len++
    this.count++
    this.live[seg]++
  }

  compactIndex(): void {
    while (this.len > 0 && this.ids[this.head] === DEAD) {
      this.head = (this.head + 1) % this.o.maxRecords
      this.len--
    }
  }

  dropOldestRecord(): void {
    this.compactIndex()
    if (this.len === 0) return
    this.markAcked(this.ids[this.head])
    this.dropped++
    this.compactIndex()
  }

  /** Appends a frame (binary string). Drops the oldest segment when the ring is full. */
  push(data: string): number {
    const need = data.length + REC_OVERHEAD
    if (data.length > this.maxPayload()) throw new Error('FlashRing: ' + data.length + ' > ' + this.maxPayload() + ' bytes')
    if (this.wSeg < 0 || this.wOff + need > this.o.segSize) this.nextSegment()
    const seg = this.wSeg
    const off = this.wOff
    const name = this.name(seg)
    this.wOff += need
    this.st.write(name, String.fromCharCode(REC_MAGIC, (data.length >> 8) & 255, data.length & 255) + data, off)
    this.st.write(name, '\x00', off + 3 + data.length)
    this.index(seg, off)
    return seg * 65536 + off
  }

  nextSegment(): void {
    const n = this.o.segments
    let maxGen = -1
    let target = -1
    let oldest = -1
    for (let s = 0; s < n; s++) {
      if (this.gen[s] > maxGen) maxGen = this.gen[s]
      if (s === this.wSeg) continue
      if (this.gen[s] < 0 || this.live[s] === 0) {
        if (target < 0) target = s
      } else if (oldest < 0 || this.gen[s] < this.gen[oldest]) oldest = s
    }
    if (target < 0) {
      // Full: the oldest segment's live records are lost, counted, and reported in the next frame.
      target = oldest
      this.dropSegment(target)
    }
    const g = maxGen + 1
    // Offset 0 re-creates the file at full size, all 0xFF: one erase, no compaction.
    this.st.write(this.name(target), 'MQ' + u32be(g), 0, this.o.segSize)
    this.gen[target] = g
    this.live[target] = 0
    this.wSeg = target
    this.wOff = HDR
  }

  dropSegment(seg: number): void {
    const m = this.o.maxRecords
    for (let k = 0; k < this.len; k++) {
      const i = (this.head + k) % m
      const id = this.ids[i]
      if (id !== DEAD && Math.floor(id / 65536) === seg) {
        this.ids[i] = DEAD
        this.count--
        this.dropped++
      }
    }
    this.live[seg] = 0
    this.compactIndex()
  }

  /** Oldest record not already being sent; marks it as sent. -1 when none. */
  next(): number {
    const m = this.o.maxRecords
    for (let k = 0; k < this.len; k++) {
      const i = (this.head + k) % m
      if (this.ids[i] !== DEAD && !this.sending[i]) {
        this.sending[i] = 1
        return this.ids[i]
      }
    }
    return -1
  }

  /** Payload of a record (memory-mapped on the board: no RAM copy until used). */
  read(id: number): string {
    const seg = Math.floor(id / 65536)
    const off = id % 65536
    const name = this.name(seg)
    const h = this.st.read(name, off, 3) || ''
    const len = (h.charCodeAt(1) << 8) | h.charCodeAt(2)
    return this.st.read(name, off + 3, len) || ''
  }

  /** The gateway acknowledged it: mark it in flash and forget it. */
  ack(id: number): void {
    const m = this.o.maxRecords
    for (let k = 0; k < this.len; k++) {
      const i = (this.head + k) % m
      if (this.ids[i] === id) {
        this.markAcked(id)
        this.compactIndex()
        return
      }
    }
  }

  markAcked(id: number): void {
    const seg = Math.floor(id / 65536)
    const off = id % 65536
    const name = this.name(seg)
    const h = this.st.read(name, off, 3) || ''
    const len = (h.charCodeAt(1) << 8) | h.charCodeAt(2)
    this.st.write(name, '\x00', off + 3 + len + 1)
    const m = this.o.maxRecords
    for (let k = 0; k < this.len; k++) {
      const i = (this.head + k) % m
      if (this.ids[i] === id) {
        this.ids[i] = DEAD
        this.count--
        if (this.live[seg] > 0) this.live[seg]--
        return
      }
    }
  }

  /** The link dropped: everything in flight is to be sent again. */
  unsend(): void {
    this.sending.fill(0)
  }

  /**
   * Erases every segment and forgets the index: the records were written under another
   * identity (re-provisioning) and the gateway would refuse them forever. Returns how many
   * live records went.
   */
  erase(): number {
    const n = this.count
    for (let s = 0; s < this.o.segments; s++) {
      this.st.erase(this.name(s))
      this.gen[s] = -1
      this.live[s] = 0
    }
    this.ids.fill(0)
    this.sending.fill(0)
    this.head = 0
    this.len = 0
    this.count = 0
    this.wSeg = -1
    this.wOff = 0
    return n
  }

  takeDropped(): number {
    const d = this.dropped
    this.dropped = 0
    return d
  }
}
