/**
 * A sample window becomes a frame payload (protocol/portable/frame.ts) and its CBOR bytes.
 * Typed-array views go straight to the encoder: no per-sample copies.
 */
import { CborWriter } from '../protocol/portable/cbor.ts'
import { encodePayload, FRAME_VERSION, FLAG_PPG_OVERFLOW, type FramePayload } from '../protocol/portable/frame.ts'
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

  /** CBOR payload bytes; a view valid until the next call. */
  encode(p: FramePayload): Uint8Array {
    this.w.reset()
    return encodePayload(this.w, p)
  }
}

export { FLAG_PPG_OVERFLOW }
