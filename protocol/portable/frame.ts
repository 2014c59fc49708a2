/**
 * The frame payload: one window of a board's samples plus metadata, as a CBOR
 * map with small integer keys (docs/protocol.md). This module encodes it; the
 * strict decoder lives on the Node side (protocol/node/decode.ts).
 */
import { CborWriter } from './cbor.ts'
import { maxPackedSize, packInto } from './pack.ts'

export const FRAME_VERSION = 1

/** Map keys of the payload, in the ascending order they are encoded in. */
export const K = {
  v: 0,
  deviceId: 1,
  seq: 2,
  boot: 3,
  t0: 4,
  ecgHz: 5,
  ecg: 6,
  ppgHz: 7,
  red: 8,
  ir: 9,
  hr: 10,
  pr: 11,
  spo2: 12,
  flags: 13,
  dropped: 14,
  batteryMv: 15,
  fw: 16,
  tempC: 17,
}

/** Bits of `flags`. */
export const FLAG_LEAD_OFF = 1
export const FLAG_FINGER_OFF = 2
export const FLAG_TIME_UNSYNCED = 4
export const FLAG_ECG_SATURATED = 8
export const FLAG_PPG_OVERFLOW = 16
export const FLAGS_KNOWN = 31

/** Limits the decoder enforces and the encoder respects. */
export const LIMITS = {
  ecgHzMin: 100,
  ecgHzMax: 1000,
  ppgHzMin: 25,
  ppgHzMax: 1000,
  maxWindowS: 5,
  ecgMax: 4095,
  ppgMax: 262143,
  fwMaxLen: 32,
  /** A whole COSE frame may not exceed this. */
  maxFrameBytes: 16384,
}

/**
 * Whether ECG and PPG in one frame cover the same stretch of time (within 10 % plus 50 ms):
 * the decoder refuses a frame where they do not, and the firmware leaves out the PPG of a
 * window in which the sensor stopped answering rather than send one.
 */
export function samplesAgree(ecgSeconds: number, ppgSeconds: number): boolean {
  return Math.abs(ecgSeconds - ppgSeconds) <= 0.1 * Math.max(ecgSeconds, ppgSeconds) + 0.05
}

/** A derived value; omitted entirely when the algorithm has no trustworthy number. */
export interface Derived {
  /** bpm for hr/pr, percent for spo2; carried with one decimal. */
  value: number
  /** Signal quality 0..100. */
  quality: number
}

export interface FramePayload {
  v: number
  deviceId: string
  /** Never repeats for a device, across reboots. */
  seq: number
  boot: number
  /** Time of the first sample, ms since the Unix epoch (board clock; see FLAG_TIME_UNSYNCED). */
  t0: number
  ecgHz?: number
  /** 12-bit ADC values. */
  ecg?: ArrayLike<number>
  ppgHz?: number
  /** MAX30102 18-bit counts. */
  red?: ArrayLike<number>
  ir?: ArrayLike<number>
  hr?: Derived
  pr?: Derived
  spo2?: Derived
  flags: number
  /** Frames dropped (store-and-forward overflow) since the previous frame. */
  dropped: number
  batteryMv?: number
  fw: string
  /** MAX30102 die temperature, hundredths of a degree Celsius. */
  tempC?: number
}

function countKeys(p: FramePayload): number {
  let n = 8 // v, deviceId, seq, boot, t0, flags, dropped, fw
  if (p.ecg) n += 2
  if (p.red) n += 3
  if (p.hr) n++
  if (p.pr) n++
  if (p.spo2) n++
  if (p.batteryMv !== undefined) n++
  if (p.tempC !== undefined) n++
  return n
}

// Reused across frames so a board packs without allocating once warmed up.
let scratch = new Uint8Array(0)

function packed(w: CborWriter, samples: ArrayLike<number>): void {
  const need = maxPackedSize(samples.length)
  if (scratch.length < need) scratch = new Uint8Array(need)
  const len = packInto(samples, 0, samples.length, scratch, 0)
  w.bytes(scratch.subarray(0, len))
}

function derived(w: CborWriter, key: number, d: Derived): void {
  w.uint(key).arrayHeader(2)
  w.uint(Math.round(d.value * 10))
  w.uint(Math.round(d.quality))
}

/** Checks what the encoder relies on; the Node decoder checks everything again. */
function checkPayload(p: FramePayload): void {
  if (!p.ecg && !p.red) throw new Error('frame needs ECG or PPG samples')
  if (p.red && (!p.ir || p.ir.length !== p.red.length)) throw new Error('red and IR need the same number of samples')
  if (p.ecg && !p.ecgHz) throw new Error('ecgHz is required with ECG samples')
  if (p.red && !p.ppgHz) throw new Error('ppgHz is required with PPG samples')
  if (p.fw.length > LIMITS.fwMaxLen) throw new Error('fw longer than ' + LIMITS.fwMaxLen)
}

/** Encodes the payload map into `w` (after `w.reset()` by the caller if reusing) and returns a view of it. */
export function encodePayload(w: CborWriter, p: FramePayload): Uint8Array {
  checkPayload(p)
  const start = w.pos
  w.mapHeader(countKeys(p))
  w.uint(K.v).uint(p.v)
  w.uint(K.deviceId).ascii(p.deviceId)
  w.uint(K.seq).uint(p.seq)
  w.uint(K.boot).uint(p.boot)
  w.uint(K.t0).uint(p.t0)
  if (p.ecg) {
    w.uint(K.ecgHz).uint(p.ecgHz as number)
    w.uint(K.ecg)
    packed(w, p.ecg)
  }
  if (p.red) {
    w.uint(K.ppgHz).uint(p.ppgHz as number)
    w.uint(K.red)
    packed(w, p.red)
    w.uint(K.ir)
    packed(w, p.ir as ArrayLike<number>)
  }
  if (p.hr) derived(w, K.hr, p.hr)
  if (p.pr) derived(w, K.pr, p.pr)
  if (p.spo2) derived(w, K.spo2, p.spo2)
  w.uint(K.flags).uint(p.flags)
  w.uint(K.dropped).uint(p.dropped)
  if (p.batteryMv !== undefined) w.uint(K.batteryMv).uint(p.batteryMv)
  w.uint(K.fw).ascii(p.fw)
  if (p.tempC !== undefined) w.uint(K.tempC).int(p.tempC)
  return w.buf.subarray(start, w.pos)
}
