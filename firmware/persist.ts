/**
 * Boot count, frame sequence numbers and the auth-token counter, persisted so that none
 * ever repeats, even after a brown-out in the middle of a flash write:
 *
 * - numbers are reserved in blocks: the limit is written to flash *before* any number
 *   below it is used, so after a crash the board resumes at the last written limit
 *   (skipping at most one block, never reusing);
 * - two files are written alternately (generation g goes to file g % 2), each with a
 *   CRC-16; on boot the valid record with the highest generation wins, so a torn write
 *   leaves the previous record intact.
 *
 * Each record also carries the wall-clock time known when it was written (epoch ms, when
 * the clock had been synced or anchored): after a reboot while the gateway is unreachable,
 * the firmware starts its clock there, so frames made before the next sync carry a
 * plausible t0 (flagged "time not synced") that the gateway can accept, instead of 1970.
 */
import { crc16 } from './crc16.ts'
import type { FlashStorage } from './store.ts'

export interface Counters {
  gen: number
  boot: number
  seqLimit: number
  ctrLimit: number
  /** Wall clock (epoch ms) when written; absent/0 when unknown. */
  wall?: number
}

/** A 16-bit value as 4 lowercase hex digits. */
function hex4(n: number): string {
  return (65536 + (n & 65535)).toString(16).substr(1)
}

export function encodeCounters(c: Counters): string {
  const body = 'mhc1,' + c.gen + ',' + c.boot + ',' + c.seqLimit + ',' + c.ctrLimit + (c.wall ? ',' + c.wall : '')
  return body + ',' + hex4(crc16(body, 0, body.length))
}

/** Parses a record; undefined if torn, corrupt or absent. */
export function decodeCounters(s: string | undefined): Counters | undefined {
  if (!s) return undefined
  const cut = s.lastIndexOf(',')
  if (cut < 0) return undefined
  const body = s.substr(0, cut)
  if (s.substr(cut + 1) !== hex4(crc16(body, 0, body.length))) return undefined
  const f = body.split(',')
  if ((f.length !== 5 && f.length !== 6) || f[0] !== 'mhc1') return undefined
  const n: number[] = []
  for (let i = 1; i < f.length; i++) {
    const v = Number(f[i])
    if (!(v >= 0 && Math.floor(v) === v)) return undefined
    n.push(v)
  }
  const c: Counters = { gen: n[0], boot: n[1], seqLimit: n[2], ctrLimit: n[3] }
  if (n.length === 5) c.wall = n[4]
  return c
}

export class Persist {
  st: FlashStorage
  prefix: string
  seqBlock: number
  ctrBlock: number
  cur: Counters
  /** This boot's number. */
  boot: number
  seq: number
  ctr: number
  /** Wall clock to record with each write (0 = unknown); set by the firmware once it has a clock. */
  wallNow: (() => number) | null

  constructor(st: FlashStorage, prefix: string, seqBlock: number, ctrBlock: number) {
    this.st = st
    this.prefix = prefix
    this.seqBlock = seqBlock
    this.ctrBlock = ctrBlock
    this.cur = { gen: 0, boot: 0, seqLimit: 0, ctrLimit: 0 }
    this.boot = 0
    this.seq = 0
    this.ctr = 0
    this.wallNow = null
  }

  /** Reads the newest valid record and starts a new boot (written before it is used). */
  open(): void {
    const a = decodeCounters(this.st.read(this.prefix + '0'))
    const b = decodeCounters(this.st.read(this.prefix + '1'))
    let best = a
    if (b && (!best || b.gen > best.gen)) best = b
    const prev = best || { gen: 0, boot: 0, seqLimit: 0, ctrLimit: 0 }
    this.cur = prev
    this.boot = prev.boot + 1
    this.seq = prev.seqLimit
    this.ctr = prev.ctrLimit
    this.save(this.seq + this.seqBlock, this.ctr + this.ctrBlock)
  }

  save(seqLimit: number, ctrLimit: number): void {
    const next: Counters = { gen: this.cur.gen + 1, boot: this.boot, seqLimit: seqLimit, ctrLimit: ctrLimit }
    const wall = this.wallNow ? this.wallNow() : 0
    // Unknown now: keep the last known time, still a lower bound for the clock.
    if (wall > 0 || this.cur.wall) next.wall = wall > 0 ? Math.floor(wall) : this.cur.wall
    this.st.write(this.prefix + (next.gen % 2), encodeCounters(next))
    this.cur = next
  }

  /** Next frame sequence number: unique across reboots. */
  nextSeq(): number {
    const self = this
    if (this.seq >= this.cur.seqLimit) this.save(this.seq + this.seqBlock, this.cur.ctrLimit)
    // The next block is reserved a frame early, in a callback of its own: a frame's build,
    // which calls this, stays short (the save's encoding and CRC are ~1,200 interpreter units).
    else if (this.seq + 2 === this.cur.seqLimit) setTimeout(function () { self.save(self.seq + self.seqBlock, self.cur.ctrLimit) }, 0)
    return this.seq++
  }

  /** Next auth-token counter: strictly increasing across reboots. */
  nextCounter(): number {
    if (this.ctr >= this.cur.ctrLimit) this.save(this.cur.seqLimit, this.ctr + this.ctrBlock)
    return this.ctr++
  }
}
