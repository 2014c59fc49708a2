/**
 * The frame payload: one window of a board's samples plus metadata, as a CBOR
 * map with small integer keys (docs/protocol.md). This module encodes it; the
 * strict decoder lives on the Node side (protocol/node/decode.ts).
 *
 * Two versions: 1 carries delta-packed samples the board packed in JavaScript
 * (encodePayload); 2 carries the sensors' FIFO bytes as the board drained them,
 * so the board runs no JavaScript per sample (encodePayloadV2, issue 24).
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
  /** 12-bit ADC values; decoded from version 2: signed 18-bit MAX30003 counts (see ecgUvPerLsb). */
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
  // What the Node decoder adds for a version-2 frame (never read by encodePayload):
  /** MAX30003 ECG gain, V/V (20, 40, 80 or 160). */
  ecgGain?: number
  /** Microvolts per ECG count: 1e6 / (131072 × ecgGain) (VREF 1000 mV). With it, `ecg` holds signed 18-bit counts. */
  ecgUvPerLsb?: number
  /** 1 for each ECG sample the MAX30003 tagged as taken in fast-recovery mode; absent when there were none. */
  ecgFast?: ArrayLike<number>
  gaps?: Gap[]
  rr?: number[]
  faults?: number
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

// ---------------------------------------------------------------------------
// Version 2: the sensors' FIFO bytes as read (docs/protocol.md, "Version 2").

export const FRAME_VERSION_2 = 2

/**
 * Map keys only version 2 uses. Version 2 also uses K's v, deviceId, seq, boot,
 * t0, ecgHz, ppgHz, hr, pr, spo2, flags, dropped, batteryMv, fw and tempC, and
 * never K.ecg, K.red or K.ir (the version-1 sample lanes).
 */
export const K2 = {
  ecgRaw: 18,
  ppgRaw: 19,
  ecgGain: 20,
  gaps: 21,
  rr: 22,
  faults: 23,
}

/** A lane lost samples (a chip FIFO overflowed): see `gaps`. Version 2 only. */
export const FLAG_GAP = 32
/** The board recovered from a fault since the previous frame: see `faults`. Version 2 only. */
export const FLAG_RECOVERED = 64
export const FLAGS_KNOWN_V2 = 127

/** Lanes of a gap record. */
export const LANE_ECG = 0
export const LANE_PPG = 1

/** MAX30003 ECG FIFO word: 3 bytes, D[23:6] sample, D[5:3] ETAG, D[2:0] PTAG (datasheet, ECG FIFO). */
export const ECG_WORD_BYTES = 3
/** MAX30102 FIFO sample in SpO2 mode: LED1 (red) then LED2 (IR), 3 bytes each (datasheet, FIFO data). */
export const PPG_SAMPLE_BYTES = 6
/** MAX30003 data rates at FMSTR = 00 (datasheet, CNFG_ECG RATE). */
export const ECG_HZ_V2 = [128, 256, 512]
/** MAX30003 CNFG_ECG GAIN settings, V/V. */
export const ECG_GAINS = [20, 40, 80, 160]

/** Limits version 2 adds to LIMITS. */
export const LIMITS_V2 = {
  /** RTOR is 14 bits of tRTOR (about 8 ms): nothing longer can come from the chip. */
  rrMaxMs: 131071,
  /** R-to-R intervals in one frame (a 5 s window at 400 /min has 34). */
  rrMaxCount: 64,
  /** Gap records in one frame. */
  gapsMax: 64,
}

/**
 * Samples a lane lost, at one place: `at` is the index, among this frame's
 * samples of that lane, of the first sample after the gap (0..n); `lost` (>= 1)
 * is an estimate from elapsed time, since an overflowing FIFO cannot count.
 */
export interface Gap {
  lane: number
  at: number
  lost: number
}

/** What encodePayloadV2 writes: FramePayload's metadata plus the raw FIFO bytes. */
export interface FramePayloadV2 {
  v: number
  deviceId: string
  seq: number
  boot: number
  /** ms since the epoch of the first ECG sample (first PPG sample without ECG). */
  t0: number
  /** 128, 256 or 512; required with ecgRaw. */
  ecgHz?: number
  /** 20, 40, 80 or 160 V/V; required with ecgRaw. */
  ecgGain?: number
  /** n × 3 bytes: MAX30003 ECG FIFO words as read, tags included. */
  ecgRaw?: Uint8Array
  /** MAX30102 FIFO rate after SMP_AVE; required with ppgRaw. */
  ppgHz?: number
  /** n × 6 bytes: MAX30102 FIFO as read in SpO2 mode (red 3 bytes, IR 3 bytes). */
  ppgRaw?: Uint8Array
  hr?: Derived
  pr?: Derived
  spo2?: Derived
  /** v1 bits plus FLAG_GAP (iff gaps) and FLAG_RECOVERED (iff faults). */
  flags: number
  dropped: number
  batteryMv?: number
  fw: string
  tempC?: number
  /** Omitted (or empty) when no lane lost samples. */
  gaps?: Gap[]
  /** R-to-R intervals (ms) the MAX30003 reported during the window, in order. */
  rr?: number[]
  /** Faults recovered from since the previous frame; present iff FLAG_RECOVERED. */
  faults?: number
}

/** Checks what the encoder relies on (lengths, required companions, flag agreement); the Node decoder checks everything again. */
function checkPayloadV2(p: FramePayloadV2): void {
  if (p.v !== FRAME_VERSION_2) throw new Error('encodePayloadV2: expected v ' + FRAME_VERSION_2 + ', got ' + p.v)
  if (!p.ecgRaw && !p.ppgRaw) throw new Error('frame needs ecgRaw or ppgRaw')
  if (p.ecgRaw) {
    if (p.ecgRaw.length === 0 || p.ecgRaw.length % ECG_WORD_BYTES !== 0) throw new Error('ecgRaw: expected a non-zero multiple of 3 bytes, got ' + p.ecgRaw.length)
    if (!p.ecgHz || !p.ecgGain) throw new Error('ecgHz and ecgGain are required with ecgRaw')
  }
  if (p.ppgRaw) {
    if (p.ppgRaw.length === 0 || p.ppgRaw.length % PPG_SAMPLE_BYTES !== 0) throw new Error('ppgRaw: expected a non-zero multiple of 6 bytes, got ' + p.ppgRaw.length)
    if (!p.ppgHz) throw new Error('ppgHz is required with ppgRaw')
  }
  const hasGaps = !!p.gaps && p.gaps.length > 0
  if (hasGaps !== ((p.flags & FLAG_GAP) !== 0)) throw new Error('flags: FLAG_GAP must be set exactly when gaps are present')
  if ((p.faults !== undefined) !== ((p.flags & FLAG_RECOVERED) !== 0)) throw new Error('flags: FLAG_RECOVERED must be set exactly when faults is present')
  if (p.fw.length > LIMITS.fwMaxLen) throw new Error('fw longer than ' + LIMITS.fwMaxLen)
}

function countKeysV2(p: FramePayloadV2): number {
  let n = 8 // v, deviceId, seq, boot, t0, flags, dropped, fw
  if (p.ecgRaw) n += 3 // ecgHz, ecgRaw, ecgGain
  if (p.ppgRaw) n += 2 // ppgHz, ppgRaw
  if (p.hr) n++
  if (p.pr) n++
  if (p.spo2) n++
  if (p.batteryMv !== undefined) n++
  if (p.tempC !== undefined) n++
  if (p.gaps && p.gaps.length > 0) n++
  if (p.rr) n++
  if (p.faults !== undefined) n++
  return n
}

/**
 * Encodes a version-2 payload into `w` (after `w.reset()` by the caller if
 * reusing) and returns a view of it. Keys ascend; the FIFO bytes are copied
 * as they are: no loop here runs per sample.
 */
export function encodePayloadV2(w: CborWriter, p: FramePayloadV2): Uint8Array {
  checkPayloadV2(p)
  const start = w.pos
  w.mapHeader(countKeysV2(p))
  w.uint(K.v).uint(p.v)
  w.uint(K.deviceId).ascii(p.deviceId)
  w.uint(K.seq).uint(p.seq)
  w.uint(K.boot).uint(p.boot)
  w.uint(K.t0).uint(p.t0)
  if (p.ecgRaw) w.uint(K.ecgHz).uint(p.ecgHz as number)
  if (p.ppgRaw) w.uint(K.ppgHz).uint(p.ppgHz as number)
  if (p.hr) derived(w, K.hr, p.hr)
  if (p.pr) derived(w, K.pr, p.pr)
  if (p.spo2) derived(w, K.spo2, p.spo2)
  w.uint(K.flags).uint(p.flags)
  w.uint(K.dropped).uint(p.dropped)
  if (p.batteryMv !== undefined) w.uint(K.batteryMv).uint(p.batteryMv)
  w.uint(K.fw).ascii(p.fw)
  if (p.tempC !== undefined) w.uint(K.tempC).int(p.tempC)
  if (p.ecgRaw) w.uint(K2.ecgRaw).bytes(p.ecgRaw)
  if (p.ppgRaw) w.uint(K2.ppgRaw).bytes(p.ppgRaw)
  if (p.ecgRaw) w.uint(K2.ecgGain).uint(p.ecgGain as number)
  if (p.gaps && p.gaps.length > 0) {
    w.uint(K2.gaps).arrayHeader(p.gaps.length)
    for (let i = 0; i < p.gaps.length; i++) {
      const g = p.gaps[i]
      w.arrayHeader(3).uint(g.lane).uint(g.at).uint(g.lost)
    }
  }
  if (p.rr) {
    w.uint(K2.rr).arrayHeader(p.rr.length)
    for (let i = 0; i < p.rr.length; i++) w.uint(p.rr[i])
  }
  if (p.faults !== undefined) w.uint(K2.faults).uint(p.faults)
  return w.buf.subarray(start, w.pos)
}
