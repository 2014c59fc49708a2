/**
 * The payload schema of version-2 frames (docs/protocol.md, "Version 2"): the
 * MAX30003 ECG FIFO words and the MAX30102 FIFO bytes as the board drained
 * them, unpacked here rather than on the board.
 *
 * One function serves the full decoder (samples materialized into typed arrays)
 * and the gateway's lean one (samples only checked in place): same checks in
 * the same order, so both give the same verdict and the same message.
 *
 * Word formats (datasheets):
 * - MAX30003 ECG FIFO word, 24 bits MSB first (datasheet "ECG FIFO Memory"):
 *   D[23:6] the sample, 18-bit two's complement; D[5:3] ETAG; D[2:0] PTAG (pace
 *   tag, meaningless on the MAX30003, not checked). ETAG ("ECG FIFO Data Tags"):
 *   000 valid, 001 fast-recovery mode, 010 valid and last in the FIFO, 011 fast
 *   and last, 110 FIFO empty, 111 FIFO overflow; 100 and 101 are not defined.
 *   Only the first four are samples; the board drops the others, so a frame
 *   that carries one was not built by a board and is refused.
 * - Voltage (ADI's MAX30003 FAQ and the datasheet's ECG channel section):
 *   V = ADC × VREF / (2^17 × ECG_GAIN), VREF = 1 V, so 1e6 / (131072 × gain) µV per count.
 * - MAX30102 FIFO in SpO2 mode (datasheet "FIFO Data", Figure 2): per sample
 *   LED1 (red) then LED2 (IR), 3 bytes each, MSB first, left-justified 18-bit
 *   value in D[17:0]; D[23:18] unused (ignored here).
 */
import { K, K2, LIMITS, LIMITS_V2, FLAGS_KNOWN_V2, FLAG_GAP, FLAG_RECOVERED, FRAME_VERSION_2, ECG_HZ_V2, ECG_GAINS, ECG_WORD_BYTES, PPG_SAMPLE_BYTES, LANE_ECG, LANE_PPG, samplesAgree, type FramePayload, type Gap } from '../portable/frame.ts'
import { headerFields, isBytes, isUint, schema, shown, trailerFields, uintField, type PayloadMap } from './payload-fields.ts'
import type { LeanPayload } from './decode.ts'

/** Keys a version-2 payload may carry. */
const KNOWN_V2 = new Set<number>([K.v, K.deviceId, K.seq, K.boot, K.t0, K.ecgHz, K.ppgHz, K.hr, K.pr, K.spo2, K.flags, K.dropped, K.batteryMv, K.fw, K.tempC, ...Object.values(K2)])
/** The version-1 sample lanes, refused by name. */
const V1_LANES: Record<number, string> = { [K.ecg]: 'ecg', [K.red]: 'red', [K.ir]: 'ir' }

const ETAG_NAMES = ['valid', 'fast', 'valid, end of FIFO', 'fast, end of FIFO', 'undefined', 'undefined', 'FIFO empty', 'FIFO overflow']
const ETAG_FAST = 1

/** µV per count of the MAX30003 ECG channel at `gain` V/V (VREF 1000 mV). */
export function ecgUvPerLsb(gain: number): number {
  return 1e6 / (131072 * gain)
}

/** Signed 18-bit ECG sample of the word at byte `o`: D[23:6]. */
export function ecgCounts(b: Uint8Array, o: number): number {
  const raw = (b[o]! << 10) | (b[o + 1]! << 2) | (b[o + 2]! >> 6)
  return raw >= 131072 ? raw - 262144 : raw
}

/** The 18-bit value of a MAX30102 FIFO triplet at byte `o`: D[17:0]. */
export function ppgCounts(b: Uint8Array, o: number): number {
  return ((b[o]! & 3) << 16) | (b[o + 1]! << 8) | b[o + 2]!
}

function rawField(m: PayloadMap, key: number, name: string, width: number, hz: number, what: string): Uint8Array {
  const v = m.get(key)
  if (!isBytes(v)) schema(`${name} (key ${key}) must be a byte string of ${what}, got ${shown(v)}`)
  if (v.length === 0) schema(`${name} (key ${key}) has no samples`)
  if (v.length % width !== 0) schema(`${name} (key ${key}) must be a multiple of ${width} bytes, got ${v.length}`)
  const n = v.length / width
  const max = hz * LIMITS.maxWindowS
  if (n > max) schema(`${name} (key ${key}) has ${n} samples, more than ${max} (${LIMITS.maxWindowS} s at ${hz} Hz)`)
  return v
}

/** Checks every word's ETAG; fills `out` (and `fast`) when given. Returns whether any sample was taken in fast-recovery mode. */
function ecgWords(raw: Uint8Array, out: Int32Array | null, fast: Uint8Array | null): boolean {
  let anyFast = false
  for (let i = 0, o = 0; o < raw.length; i++, o += ECG_WORD_BYTES) {
    const etag = (raw[o + 2]! >> 3) & 7
    if (etag > 3) schema(`ecgRaw (key ${K2.ecgRaw}) word ${i} has ETAG ${etag.toString(2).padStart(3, '0')} (${ETAG_NAMES[etag]}), expected a sample tag (000..011)`)
    if (etag & ETAG_FAST) {
      anyFast = true
      if (fast) fast[i] = 1
    }
    if (out) out[i] = ecgCounts(raw, o)
  }
  return anyFast
}

function gapsField(m: PayloadMap, n: [number, number]): { gaps: Gap[]; lost: [number, number] } | undefined {
  const v = m.get(K2.gaps)
  if (v === undefined) return undefined
  const key = `gaps (key ${K2.gaps})`
  if (!Array.isArray(v)) schema(`${key} must be an array of [lane, at, lost], got ${shown(v)}`)
  if (v.length === 0) schema(`${key} is empty; omit the key when no lane lost samples`)
  if (v.length > LIMITS_V2.gapsMax) schema(`${key} has ${v.length} records, more than ${LIMITS_V2.gapsMax}`)
  const gaps: Gap[] = []
  const lost: [number, number] = [0, 0]
  const lastAt = [-1, -1]
  for (let i = 0; i < v.length; i++) {
    const g = v[i] as unknown
    if (!Array.isArray(g) || g.length !== 3 || !isUint(g[0]) || !isUint(g[1]) || !isUint(g[2])) schema(`${key} record ${i} must be [lane, at, lost] of unsigned integers, got ${Array.isArray(g) ? `[${g.map(shown).join(', ')}]` : shown(g)}`)
    const [lane, at, count] = g as [number, number, number]
    if (lane !== LANE_ECG && lane !== LANE_PPG) schema(`${key} record ${i}: lane must be 0 (ECG) or 1 (PPG), got ${lane}`)
    const laneName = lane === LANE_ECG ? 'ECG' : 'PPG'
    if (n[lane] === 0) schema(`${key} record ${i}: a gap in the ${laneName} lane, but the frame has no ${laneName} samples (key ${lane === LANE_ECG ? K2.ecgRaw : K2.ppgRaw})`)
    if (at > n[lane]!) schema(`${key} record ${i}: at must be 0..${n[lane]} (the ${laneName} lane's sample count), got ${at}`)
    if (count < 1 || count > 0xffffffff) schema(`${key} record ${i}: lost must be 1..4294967295, got ${count}`)
    if (at < lastAt[lane]!) schema(`${key} record ${i}: ${laneName} gaps must be in order of at, got ${at} after ${lastAt[lane]}`)
    lastAt[lane] = at
    lost[lane] += count
    gaps.push({ lane, at, lost: count })
  }
  return { gaps, lost }
}

function rrField(m: PayloadMap): number[] | undefined {
  const v = m.get(K2.rr)
  if (v === undefined) return undefined
  const key = `rr (key ${K2.rr})`
  if (!Array.isArray(v)) schema(`${key} must be an array of R-to-R intervals in ms, got ${shown(v)}`)
  if (v.length > LIMITS_V2.rrMaxCount) schema(`${key} has ${v.length} intervals, more than ${LIMITS_V2.rrMaxCount}`)
  for (let i = 0; i < v.length; i++) {
    const x = v[i] as unknown
    if (!isUint(x) || x < 1 || x > LIMITS_V2.rrMaxMs) schema(`${key} interval ${i} must be an integer 1..${LIMITS_V2.rrMaxMs} ms, got ${shown(x)}`)
  }
  return (v as number[]).slice()
}

/** Checks a version-2 payload map (v already read as 2) and converts it. */
export function checkPayloadMapV2(m: PayloadMap, materialize: true): FramePayload
export function checkPayloadMapV2(m: PayloadMap, materialize: false): LeanPayload
export function checkPayloadMapV2(m: PayloadMap, materialize: boolean): FramePayload | LeanPayload {
  for (const key of m.keys()) {
    if (typeof key === 'number' && V1_LANES[key]) schema(`${V1_LANES[key]} (key ${key}) is a version-1 sample lane, not allowed in version 2 (ECG goes in key ${K2.ecgRaw}, PPG in key ${K2.ppgRaw})`)
    if (typeof key !== 'number' || !KNOWN_V2.has(key)) schema(`unknown payload key ${typeof key === 'string' ? JSON.stringify(key) : String(key)}`)
  }
  const p = headerFields(m, FRAME_VERSION_2)
  if (p.flags & ~FLAGS_KNOWN_V2) schema(`flags ${p.flags} sets unknown bits`)
  const hasEcg = m.has(K2.ecgRaw) || m.has(K.ecgHz) || m.has(K2.ecgGain)
  const hasPpg = m.has(K2.ppgRaw) || m.has(K.ppgHz)
  if (!hasEcg && !hasPpg) schema(`frame carries neither ECG (key ${K2.ecgRaw}) nor PPG (key ${K2.ppgRaw}) samples`)
  const n: [number, number] = [0, 0]
  if (hasEcg) {
    const hz = uintField(m, K.ecgHz, 'ecgHz', true)!
    if (ECG_HZ_V2.indexOf(hz) < 0) schema(`ecgHz (key ${K.ecgHz}) must be ${ECG_HZ_V2.join(', ')} in version 2 (MAX30003 at FMSTR 00), got ${hz}`)
    const gain = uintField(m, K2.ecgGain, 'ecgGain', true)!
    if (ECG_GAINS.indexOf(gain) < 0) schema(`ecgGain (key ${K2.ecgGain}) must be ${ECG_GAINS.join(', ')} V/V, got ${gain}`)
    const raw = rawField(m, K2.ecgRaw, 'ecgRaw', ECG_WORD_BYTES, hz, 'MAX30003 FIFO words')
    n[LANE_ECG] = raw.length / ECG_WORD_BYTES
    p.ecgHz = hz
    p.ecgGain = gain
    p.ecgUvPerLsb = ecgUvPerLsb(gain)
    if (materialize) {
      const ecg = new Int32Array(n[LANE_ECG])
      const fast = new Uint8Array(n[LANE_ECG])
      p.ecg = ecg
      if (ecgWords(raw, ecg, fast)) p.ecgFast = fast
    } else ecgWords(raw, null, null)
  }
  if (hasPpg) {
    const hz = uintField(m, K.ppgHz, 'ppgHz', true)!
    if (hz < LIMITS.ppgHzMin || hz > LIMITS.ppgHzMax) schema(`ppgHz (key ${K.ppgHz}) must be ${LIMITS.ppgHzMin}..${LIMITS.ppgHzMax}, got ${hz}`)
    const raw = rawField(m, K2.ppgRaw, 'ppgRaw', PPG_SAMPLE_BYTES, hz, 'MAX30102 FIFO samples')
    n[LANE_PPG] = raw.length / PPG_SAMPLE_BYTES
    p.ppgHz = hz
    if (materialize) {
      const red = new Uint32Array(n[LANE_PPG])
      const ir = new Uint32Array(n[LANE_PPG])
      for (let i = 0, o = 0; i < red.length; i++, o += PPG_SAMPLE_BYTES) {
        red[i] = ppgCounts(raw, o)
        ir[i] = ppgCounts(raw, o + 3)
      }
      p.red = red
      p.ir = ir
    }
  }
  const g = gapsField(m, n)
  if (((p.flags & FLAG_GAP) !== 0) !== (g !== undefined)) schema(g ? `gaps (key ${K2.gaps}) present but flags ${p.flags} lacks FLAG_GAP (${FLAG_GAP})` : `flags ${p.flags} sets FLAG_GAP (${FLAG_GAP}) but there is no gaps record (key ${K2.gaps})`)
  if (g) p.gaps = g.gaps
  if (hasEcg && hasPpg) {
    // As v1's samplesAgree, with each lane's lost samples counted as time it covered.
    const lost = g ? g.lost : [0, 0]
    const ecgDur = (n[LANE_ECG] + lost[LANE_ECG]!) / p.ecgHz!
    const ppgDur = (n[LANE_PPG] + lost[LANE_PPG]!) / p.ppgHz!
    if (!samplesAgree(ecgDur, ppgDur)) schema(`ECG covers ${ecgDur.toFixed(2)} s but PPG covers ${ppgDur.toFixed(2)} s (samples plus lost samples)`)
  }
  const rr = rrField(m)
  if (rr) p.rr = rr
  const faults = m.get(K2.faults)
  if (faults !== undefined && (!isUint(faults) || faults < 1)) schema(`faults (key ${K2.faults}) must be an unsigned integer of at least 1, got ${shown(faults)}`)
  if (((p.flags & FLAG_RECOVERED) !== 0) !== (faults !== undefined)) schema(faults !== undefined ? `faults (key ${K2.faults}) present but flags ${p.flags} lacks FLAG_RECOVERED (${FLAG_RECOVERED})` : `flags ${p.flags} sets FLAG_RECOVERED (${FLAG_RECOVERED}) but faults (key ${K2.faults}) is missing`)
  if (faults !== undefined) p.faults = faults as number
  trailerFields(m, p)
  return p
}
