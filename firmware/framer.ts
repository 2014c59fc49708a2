/**
 * A sample window becomes a frame payload (protocol/portable/frame.ts) and its CBOR bytes.
 * Typed-array views go straight to the encoder: no per-sample copies.
 */
import { CborWriter } from '../protocol/portable/cbor.ts'
import { encodePayload, FRAME_VERSION, FLAG_PPG_OVERFLOW, K, LIMITS, type FramePayload } from '../protocol/portable/frame.ts'
import type { SampleWindow } from './sampler.ts'

export interface FrameMeta {
  deviceId: string
  seq: number
  boot: number
  t0: number
  ecgHz: number
  ppgHz: number
  /** Flags the window does not know about (time-not-synced, PPG overflow). */
  extraFlags: number
  dropped: number
  fw: string
  batteryMv?: number
}

export function buildPayload(w: SampleWindow, m: FrameMeta): FramePayload {
  const p: FramePayload = {
    v: FRAME_VERSION, deviceId: m.deviceId, seq: m.seq, boot: m.boot, t0: Math.floor(m.t0),
    ecgHz: m.ecgHz, ecg: w.ecg.subarray(0, w.ecgN),
    flags: w.flags | m.extraFlags, dropped: m.dropped, fw: m.fw,
  }
  if (w.ppgN > 0) {
    p.ppgHz = m.ppgHz
    p.red = w.red.subarray(0, w.ppgN)
    p.ir = w.ir.subarray(0, w.ppgN)
  }
  if (m.batteryMv !== undefined) p.batteryMv = m.batteryMv
  if (w.tempC === w.tempC) p.tempC = Math.floor(w.tempC * 100 + 0.5) // hundredths; NaN when no reading
  return p
}

export class Framer {
  w: CborWriter
  constructor(capacity: number) {
    this.w = new CborWriter(capacity)
  }

  /**
   * The payload of a window whose samples the sampler already packed: byte for byte what
   * encodePayload(buildPayload(w, m)) gives (test/firmware/framer.test.ts checks that), in
   * a few dozen statements instead of a pass over every sample.
   */
  encodeWindow(win: SampleWindow, m: FrameMeta): Uint8Array {
    if (m.fw.length > LIMITS.fwMaxLen) throw new Error('fw longer than ' + LIMITS.fwMaxLen)
    const w = this.w
    w.reset()
    const hasEcg = true // the sampler always carries ECG (possibly empty), as buildPayload does
    const hasPpg = win.ppgN > 0
    const hasTemp = win.tempC === win.tempC
    w.mapHeader(8 + (hasEcg ? 2 : 0) + (hasPpg ? 3 : 0) + (m.batteryMv !== undefined ? 1 : 0) + (hasTemp ? 1 : 0))
    w.uint(K.v).uint(FRAME_VERSION)
    w.uint(K.deviceId).ascii(m.deviceId)
    w.uint(K.seq).uint(m.seq)
    w.uint(K.boot).uint(m.boot)
    w.uint(K.t0).uint(Math.floor(m.t0))
    if (hasEcg) {
      w.uint(K.ecgHz).uint(m.ecgHz)
      w.uint(K.ecg).bytes(win.pEcg.buf.subarray(0, win.pEcg.len))
    }
    if (hasPpg) {
      w.uint(K.ppgHz).uint(m.ppgHz)
      w.uint(K.red).bytes(win.pRed.buf.subarray(0, win.pRed.len))
      w.uint(K.ir).bytes(win.pIr.buf.subarray(0, win.pIr.len))
    }
    w.uint(K.flags).uint(win.flags | m.extraFlags)
    w.uint(K.dropped).uint(m.dropped)
    if (m.batteryMv !== undefined) w.uint(K.batteryMv).uint(m.batteryMv)
    w.uint(K.fw).ascii(m.fw)
    if (hasTemp) w.uint(K.tempC).int(Math.floor(win.tempC * 100 + 0.5))
    return w.result()
  }

  /** CBOR payload bytes; a view valid until the next call. */
  encode(p: FramePayload): Uint8Array {
    this.w.reset()
    return encodePayload(this.w, p)
  }
}

export { FLAG_PPG_OVERFLOW }
