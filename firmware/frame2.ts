/**
 * Frame payload version 2 (the contract: protocol/node's v2 decoder and docs/protocol.md):
 * the bytes the board drained from the sensors' FIFOs, untouched, in a deterministic CBOR map
 * with integer keys in ascending order.
 *
 * Per-frame work is a few dozen statements whatever the sample count: everything that does
 * not change between frames (keys 0 and 1 with the device ID, the rates, fw, the ECG gain) is
 * encoded once per configuration; a frame writes the map header, seq/boot/t0/flags/dropped and
 * the optional fields, and copies each lane's bytes with one typed-array `set`. Gaps and R-to-R
 * intervals are a few items per window (a gap is a fault, R-to-R one per heart beat).
 */
import { CborOut, cbor } from './cbor-out.ts'
import { MAX_GAPS, MAX_RR, type RawWindow } from './acquire.ts'

export const FRAME_V2 = 2

/** v2 map keys (frame-v2 contract); 0..17 as in version 1. The builder writes them as literals (each key < 24 is its own one-byte CBOR head). */
export const K2 = {
  v: 0, deviceId: 1, seq: 2, boot: 3, t0: 4, ecgHz: 5, ppgHz: 7,
  flags: 13, dropped: 14, batteryMv: 15, fw: 16, tempC: 17,
  ecgRaw: 18, ppgRaw: 19, ecgGain: 20, gaps: 21, rr: 22, faults: 23,
}

/** Flag bits added by version 2. */
export const FLAG_GAP = 32
export const FLAG_RECOVERED = 64

export interface Frame2Config {
  deviceId: string
  /** At most LIMITS.fwMaxLen (32) characters (the firmware's own version string). */
  fw: string
  /** ECG samples/s (128, 256, 512): every frame of this firmware has the ECG lane. */
  ecgHz: number
  /** MAX30102 FIFO samples/s, 0 when the board has no PPG lane. */
  ppgHz: number
  /** MAX30003 gain, V/V. */
  ecgGain: number
}

export interface Frame2Meta {
  seq: number
  boot: number
  /** Epoch ms of the window's first sample. */
  t0: number
  /** Flags from outside the window (time not synced); the window's own and GAP/RECOVERED are added here. */
  flags: number
  dropped: number
  batteryMv?: number
  /** Faults recovered from since the previous frame (key 23, FLAG_RECOVERED). */
  faults: number
}

export class Frame2 extends CborOut {
  c: Frame2Config
  /** 00 02 01 tstr(deviceId): keys 0 and 1 */
  cId: Uint8Array
  /** 05 ecgHz, and 05 ecgHz 07 ppgHz */
  cEcgHz: Uint8Array
  cRates: Uint8Array
  cFw: Uint8Array
  cGain: Uint8Array

  constructor(c: Frame2Config, maxEcgSamples: number, maxPpgSamples: number) {
    // Lanes, the constants, and room for every variable field at its longest (9-byte heads;
    // the acquisition keeps at most MAX_GAPS gaps and MAX_RR intervals per window).
    super(3 * maxEcgSamples + 6 * maxPpgSamples + 128 + 12 * MAX_GAPS + 3 * MAX_RR + c.deviceId.length + c.fw.length)
    this.c = c
    this.cId = cbor(function (w) { w.h(0, 0).h(0, FRAME_V2).h(0, 1).str(3, c.deviceId) })
    this.cEcgHz = cbor(function (w) { w.h(0, 5).h(0, c.ecgHz) })
    this.cRates = cbor(function (w) { w.h(0, 5).h(0, c.ecgHz).h(0, 7).h(0, c.ppgHz) })
    this.cFw = cbor(function (w) { w.h(0, 16).str(3, c.fw) })
    this.cGain = cbor(function (w) { w.h(0, 20).h(0, c.ecgGain) })
  }

  /**
   * A uint head at p for n < 65536 (everything in a frame but t0, which is written apart, and
   * a seq past 65535): the cheap case inline, the general one through h(). Returns the new p.
   */
  u(p: number, n: number): number {
    const b = this.b
    if (n < 24) b[p++] = n
    else if (n < 256) {
      b[p++] = 24
      b[p++] = n
    } else if (n < 65536) {
      b[p++] = 25
      b[p++] = n >> 8
      b[p++] = n & 255
    } else {
      this.p = p
      this.h(0, n)
      return this.p
    }
    return p
  }

  /** A byte-string head at p for n < 65536 bytes; returns the new p. */
  bh(p: number, n: number): number {
    const b = this.b
    if (n >= 256) {
      b[p++] = 0x59
      b[p++] = n >> 8
      b[p++] = n & 255
    } else if (n >= 24) {
      b[p++] = 0x58
      b[p++] = n
    } else b[p++] = 0x40 | n
    return p
  }

  /**
   * The payload of a window: a view of this builder's buffer, valid until the next build.
   * `w.ppgOk` false, or no PPG sample, leaves the PPG lane out. Every frame has the ECG lane
   * (the firmware's window clock), with at least one sample (the caller sees to it). Heads of small values (keys, flags, boot,
   * counts) are written inline; h() is called only for values that need it (seq, t0, lengths).
   */
  build(w: RawWindow, m: Frame2Meta): Uint8Array {
    const hasP = this.c.ppgHz > 0 && w.ppgOk && w.ppgN > 0
    const g = w.gaps
    let nGaps = 0
    if (g.length > 0) for (let i = 0; i < g.length; i += 3) if (g[i] === 0 || hasP) nGaps++
    const nRr = w.rr.length
    const hasT = w.tempC === w.tempC // NaN when the window has no reading
    let flags = w.flags | m.flags
    if (nGaps > 0) flags |= FLAG_GAP
    if (m.faults > 0) flags |= FLAG_RECOVERED
    const b = this.b
    // map(keys): 11 always (0-5, 13, 14, 16, 18, 20), never more than 23.
    b[0] = 0xab + (hasP ? 2 : 0) + (m.batteryMv !== undefined ? 1 : 0) + (hasT ? 1 : 0) + (nGaps > 0 ? 1 : 0) + (nRr > 0 ? 1 : 0) + (m.faults > 0 ? 1 : 0)
    b.set(this.cId, 1)
    let p = 1 + this.cId.length
    b[p++] = 2 /* seq */
    p = this.u(p, m.seq)
    b[p++] = 3 /* boot */
    if (m.boot < 24) b[p++] = m.boot
    else p = this.u(p, m.boot)
    // t0: ms since the epoch is above 2^32 (the 8-byte argument) once the clock has a time;
    // a board that never had one counts from boot, through h().
    const t0 = Math.floor(m.t0)
    const hi = Math.floor(t0 / 4294967296)
    b[p++] = 4 /* t0 */
    if (hi > 0 && hi < 65536) {
      const lo = t0 - hi * 4294967296
      b[p++] = 0x1b
      b[p++] = 0
      b[p++] = 0
      b[p++] = hi >> 8
      b[p++] = hi & 255
      b[p++] = (lo >>> 24) & 255
      b[p++] = (lo >>> 16) & 255
      b[p++] = (lo >>> 8) & 255
      b[p++] = lo & 255
    } else {
      this.p = p
      this.h(0, t0)
      p = this.p
    }
    const rates = hasP ? this.cRates : this.cEcgHz
    b.set(rates, p)
    p += rates.length
    b[p++] = 13 /* flags */
    if (flags < 24) b[p++] = flags
    else p = this.u(p, flags)
    b[p++] = 14 /* dropped */
    if (m.dropped < 24) b[p++] = m.dropped
    else p = this.u(p, m.dropped)
    const mv = m.batteryMv
    if (mv !== undefined) {
      b[p++] = 15 /* batteryMv: over 1,000, a 2-byte argument */
      b[p++] = 0x19
      b[p++] = mv >> 8
      b[p++] = mv & 255
    }
    b.set(this.cFw, p)
    p += this.cFw.length
    if (hasT) {
      b[p++] = 17 /* tempC, hundredths of a degree as version 1 */
      this.p = p
      this.int(Math.floor(w.tempC * 100 + 0.5))
      p = this.p
    }
    b[p++] = 18 /* ecgRaw */
    p = this.bh(p, 3 * w.ecgN)
    b.set(w.ecg.subarray(0, 3 * w.ecgN), p)
    p += 3 * w.ecgN
    if (hasP) {
      b[p++] = 19 /* ppgRaw */
      p = this.bh(p, 6 * w.ppgN)
      b.set(w.ppg.subarray(0, 6 * w.ppgN), p)
      p += 6 * w.ppgN
    }
    b.set(this.cGain, p)
    p += this.cGain.length
    if (nGaps > 0) {
      b[p++] = 21 /* gaps */
      b[p++] = 0x80 + nGaps // at most MAX_GAPS (< 24) records
      for (let i = 0; i < g.length; i += 3) {
        if (g[i] !== 0 && !hasP) continue
        b[p++] = 0x83 // [lane, at, lost]
        b[p++] = g[i]
        p = this.u(p, g[i + 1])
        p = this.u(p, g[i + 2])
      }
    }
    if (nRr > 0) {
      b[p++] = 22 /* rr */
      b[p++] = 0x80 + nRr // at most MAX_RR (< 24)
      for (let i = 0; i < nRr; i++) {
        const v = w.rr[i] // ms: 256..65535 for any heart rate, a 2-byte argument
        if (v >= 256 && v < 65536) {
          b[p++] = 0x19
          b[p++] = v >> 8
          b[p++] = v & 255
        } else p = this.u(p, v)
      }
    }
    if (m.faults > 0) {
      b[p++] = 23 /* faults */
      p = this.u(p, m.faults)
    }
    this.p = p
    return b.subarray(0, this.p)
  }
}
