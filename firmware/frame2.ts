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
  /** ECG samples/s (128, 256, 512), 0 when the frame has no ECG lane. */
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
  cEcgHz: Uint8Array
  cPpgHz: Uint8Array
  cFw: Uint8Array
  cGain: Uint8Array

  constructor(c: Frame2Config, maxEcgSamples: number, maxPpgSamples: number) {
    // Lanes, the constants, and room for every variable field at its longest (9-byte heads;
    // the acquisition keeps at most MAX_GAPS gaps and MAX_RR intervals per window).
    super(3 * maxEcgSamples + 6 * maxPpgSamples + 128 + 12 * MAX_GAPS + 3 * MAX_RR + c.deviceId.length + c.fw.length)
    this.c = c
    this.cId = cbor(function (w) { w.h(0, 0).h(0, FRAME_V2).h(0, 1).str(3, c.deviceId) })
    this.cEcgHz = cbor(function (w) { w.h(0, 5).h(0, c.ecgHz) })
    this.cPpgHz = cbor(function (w) { w.h(0, 7).h(0, c.ppgHz) })
    this.cFw = cbor(function (w) { w.h(0, 16).str(3, c.fw) })
    this.cGain = cbor(function (w) { w.h(0, 20).h(0, c.ecgGain) })
  }

  /**
   * The payload of a window: a view of this builder's buffer, valid until the next build.
   * `w.ppgOk` false leaves the PPG lane out (it did not cover the window).
   */
  build(w: RawWindow, m: Frame2Meta): Uint8Array {
    const c = this.c
    const hasE = c.ecgHz > 0
    const hasP = c.ppgHz > 0 && w.ppgOk
    const g = w.gaps
    let nGaps = 0
    for (let i = 0; i < g.length; i += 3) if (g[i] === 0 ? hasE : hasP) nGaps++
    const hasT = w.tempC === w.tempC // NaN when the window has no reading
    let flags = w.flags | m.flags
    if (nGaps > 0) flags |= FLAG_GAP
    if (m.faults > 0) flags |= FLAG_RECOVERED
    const keys = 8 + (hasE ? 3 : 0) + (hasP ? 2 : 0) + (m.batteryMv !== undefined ? 1 : 0) + (hasT ? 1 : 0) +
      (nGaps > 0 ? 1 : 0) + (w.rr.length > 0 ? 1 : 0) + (m.faults > 0 ? 1 : 0)
    this.p = 0
    this.b[this.p++] = 0xa0 + keys // map(keys): never more than 23
    this.put(this.cId)
    this.b[this.p++] = 2 /* seq */
    this.h(0, m.seq)
    this.b[this.p++] = 3 /* boot */
    this.h(0, m.boot)
    this.b[this.p++] = 4 /* t0 */
    this.h(0, Math.floor(m.t0))
    if (hasE) this.put(this.cEcgHz)
    if (hasP) this.put(this.cPpgHz)
    this.b[this.p++] = 13 /* flags */
    this.h(0, flags)
    this.b[this.p++] = 14 /* dropped */
    this.h(0, m.dropped)
    if (m.batteryMv !== undefined) {
      this.b[this.p++] = 15 /* batteryMv */
      this.h(0, m.batteryMv)
    }
    this.put(this.cFw)
    if (hasT) {
      const tc = Math.floor(w.tempC * 100 + 0.5) // hundredths of a degree, as version 1
      this.b[this.p++] = 17 /* tempC */
      this.int(tc)
    }
    if (hasE) {
      this.b[this.p++] = 18 /* ecgRaw */
      this.h(2, 3 * w.ecgN)
      this.put(w.ecg.subarray(0, 3 * w.ecgN))
    }
    if (hasP) {
      this.b[this.p++] = 19 /* ppgRaw */
      this.h(2, 6 * w.ppgN)
      this.put(w.ppg.subarray(0, 6 * w.ppgN))
    }
    if (hasE) this.put(this.cGain)
    if (nGaps > 0) {
      this.b[this.p++] = 21 /* gaps */
      this.h(4, nGaps)
      for (let i = 0; i < g.length; i += 3) {
        if (!(g[i] === 0 ? hasE : hasP)) continue
        this.b[this.p++] = 0x83 // [lane, at, lost]
        this.b[this.p++] = g[i]
        this.h(0, g[i + 1])
        this.h(0, g[i + 2])
      }
    }
    if (w.rr.length > 0) {
      this.b[this.p++] = 22 /* rr */
      this.h(4, w.rr.length)
      for (let i = 0; i < w.rr.length; i++) this.h(0, w.rr[i])
    }
    if (m.faults > 0) {
      this.b[this.p++] = 23 /* faults */
      this.h(0, m.faults)
    }
    return this.b.subarray(0, this.p)
  }
}
