/**
 * Reader for PhysioNet WFDB records: header (.hea, LF or CRLF), signals in
 * format 212 (two 12-bit samples in 3 bytes) or 16 (int16 LE), and MIT-format
 * annotation files (.atr). Node only; returns raw ADC units so that callers
 * can reproduce a record sample for sample.
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

export interface WfdbSignalSpec {
  file: string
  format: number
  /** Bytes to skip at the start of the signal file (the header's `16+24` form; a MATLAB v4 header before the samples). */
  byteOffset: number
  /** ADC units per physical unit; 0 in the header means uncalibrated, read as the WFDB default 200. */
  gain: number
  adcResolution: number
  adcZero: number
  baseline: number
  initialValue: number
  checksum: number
  description: string
}

export interface WfdbHeader {
  record: string
  nsig: number
  fs: number
  nsamp: number
  signals: WfdbSignalSpec[]
  comments: string[]
}

export interface WfdbRecord extends WfdbHeader {
  /** One Int16Array per channel, in ADC units. */
  samples: Int16Array[]
}

export class WfdbError extends Error {
  override name = 'WfdbError'
}

const DEFAULT_GAIN = 200

export function parseHeader(text: string, recordName = ''): WfdbHeader {
  const lines = text.split(/\r?\n/)
  const comments: string[] = []
  const content: string[] = []
  for (const raw of lines) {
    const line = raw.trim()
    if (line === '') continue
    if (line.startsWith('#')) comments.push(line.slice(1).trim())
    else content.push(line)
  }
  if (content.length === 0) throw new WfdbError(`header ${recordName}: no record line`)
  const rec = content[0].split(/\s+/)
  const record = rec[0].split('/')[0]
  const nsig = Number(rec[1])
  if (!Number.isInteger(nsig) || nsig < 1) throw new WfdbError(`header ${record}: bad signal count '${rec[1]}'`)
  const fs = rec[2] === undefined ? 250 : parseFloat(rec[2].split('/')[0])
  const nsamp = rec[3] === undefined ? 0 : Number(rec[3])
  if (!(fs > 0)) throw new WfdbError(`header ${record}: bad sampling frequency '${rec[2]}'`)
  if (content.length < 1 + nsig) throw new WfdbError(`header ${record}: expected ${nsig} signal lines, found ${content.length - 1}`)
  const signals: WfdbSignalSpec[] = []
  for (let i = 0; i < nsig; i++) {
    const f = content[1 + i].split(/\s+/)
    const format = parseInt(f[1], 10)
    const plus = /\+(\d+)$/.exec(f[1] ?? '')
    const gainMatch = /^(-?\d*\.?\d+(?:e-?\d+)?)?(?:\((-?\d+)\))?/.exec(f[2] ?? '')
    const gainRaw = gainMatch && gainMatch[1] ? parseFloat(gainMatch[1]) : 0
    const adcZero = f[4] === undefined ? 0 : Number(f[4])
    const baseline = gainMatch && gainMatch[2] !== undefined ? Number(gainMatch[2]) : adcZero
    signals.push({
      file: f[0],
      format,
      byteOffset: plus ? Number(plus[1]) : 0,
      gain: gainRaw === 0 ? DEFAULT_GAIN : gainRaw,
      adcResolution: f[3] === undefined ? 12 : Number(f[3]),
      adcZero,
      baseline,
      initialValue: f[5] === undefined ? 0 : Number(f[5]),
      checksum: f[6] === undefined ? 0 : Number(f[6]),
      description: f.slice(8).join(' '),
    })
  }
  return { record, nsig, fs, nsamp, signals, comments }
}

/** Decodes interleaved format-212 bytes into `nsig` channels. */
export function decode212(bytes: Uint8Array, nsig: number, nsamp?: number): Int16Array[] {
  const totalSamples = Math.floor((bytes.length * 2) / 3)
  const frames = Math.min(nsamp ?? Infinity, Math.floor(totalSamples / nsig))
  const out: Int16Array[] = []
  for (let c = 0; c < nsig; c++) out.push(new Int16Array(frames))
  let k = 0 // sample index across the interleaved stream
  for (let p = 0; k < frames * nsig; p += 3) {
    const b0 = bytes[p], b1 = bytes[p + 1], b2 = bytes[p + 2]
    let s0 = b0 | ((b1 & 0x0f) << 8)
    if (s0 & 0x800) s0 -= 0x1000
    out[k % nsig][Math.floor(k / nsig)] = s0
    k++
    if (k >= frames * nsig) break
    let s1 = b2 | ((b1 & 0xf0) << 4)
    if (s1 & 0x800) s1 -= 0x1000
    out[k % nsig][Math.floor(k / nsig)] = s1
    k++
  }
  return out
}

export function decode16(bytes: Uint8Array, nsig: number, nsamp?: number): Int16Array[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const frames = Math.min(nsamp ?? Infinity, Math.floor(bytes.length / 2 / nsig))
  const out: Int16Array[] = []
  for (let c = 0; c < nsig; c++) out.push(new Int16Array(frames))
  for (let i = 0; i < frames; i++) for (let c = 0; c < nsig; c++) out[c][i] = dv.getInt16((i * nsig + c) * 2, true)
  return out
}

/** Reads `PATH/RECORD` (without extension): header plus all channels. */
export function readRecord(recordPath: string): WfdbRecord {
  const base = recordPath.replace(/\.(hea|dat|atr)$/, '')
  let headerText: string
  try {
    headerText = readFileSync(base + '.hea', 'latin1')
  } catch (err) {
    throw new WfdbError(`cannot read WFDB header ${base}.hea: ${(err as Error).message}`)
  }
  const header = parseHeader(headerText, base)
  const files = [...new Set(header.signals.map((s) => s.file))]
  if (files.length !== 1) throw new WfdbError(`record ${header.record}: signals in several files are not supported`)
  const format = header.signals[0].format
  const bytes = new Uint8Array(readFileSync(join(dirname(base), files[0]))).subarray(header.signals[0].byteOffset)
  let samples: Int16Array[]
  if (format === 212) samples = decode212(bytes, header.nsig, header.nsamp || undefined)
  else if (format === 16) samples = decode16(bytes, header.nsig, header.nsamp || undefined)
  else throw new WfdbError(`record ${header.record}: signal format ${format} is not supported (212 and 16 are)`)
  if (header.nsamp && samples[0].length < header.nsamp) {
    throw new WfdbError(`record ${header.record}: header says ${header.nsamp} samples, data file holds ${samples[0].length}`)
  }
  return { ...header, samples }
}

/**
 * The signal a monitor would take as its ECG: the first whose description names an ECG lead
 * (MLII, V1-V6, I, II, III, aVR/aVL/aVF, "ECG"...), or the first signal when no description is
 * given at all; -1 when the record holds signals but none of them is an ECG (PPG, respiration...).
 */
export function ecgChannel(h: WfdbHeader): number {
  const lead = /^(ecg|ekg|ml ?ii|ml ?i|ml ?iii|mv\d|v\d|i{1,3}|avr|avl|avf|d\d|ecg\s*\d*|lead\s*\S+|modified lead.*|cm\d|chest|ecg\d)\b/i
  for (let i = 0; i < h.nsig; i++) if (lead.test(h.signals[i]!.description.trim())) return i
  for (let i = 0; i < h.nsig; i++) if (/ecg|ekg/i.test(h.signals[i]!.description)) return i
  return h.signals.every((s) => s.description.trim() === '') ? 0 : -1
}

/** Sum of samples mod 2^16 read as int16, as stored in the header's checksum field. */
export function checksum16(samples: Int16Array): number {
  let sum = 0
  for (let i = 0; i < samples.length; i++) sum = (sum + samples[i]) & 0xffff
  return sum >= 0x8000 ? sum - 0x10000 : sum
}

export interface Annotation {
  /** Sample index at the record's own rate. */
  sample: number
  code: number
  subtype: number
  chan: number
  num: number
  aux: string
}

/** MIT annotation codes that mark a heartbeat (as opposed to rhythm, noise, comments). */
export const BEAT_CODES: ReadonlySet<number> = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 25, 30, 34, 35, 38, 41])

/** Parses an MIT-format annotation file (e.g. `.atr`). */
export function parseAnnotations(buf: Uint8Array): Annotation[] {
  const out: Annotation[] = []
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  let t = 0
  let chan = 0
  let num = 0
  let p = 0
  while (p + 1 < buf.length) {
    const w = dv.getUint16(p, true)
    p += 2
    const a = w >> 10
    const i = w & 0x3ff
    if (w === 0) break
    const last = out[out.length - 1]
    if (a === 59) {
      // SKIP: 32-bit delta, high 16-bit word first, each word little-endian
      const hi = dv.getUint16(p, true)
      const lo = dv.getUint16(p + 2, true)
      p += 4
      let d = hi * 0x10000 + lo
      if (d >= 0x80000000) d -= 0x100000000
      t += d
    } else if (a === 60) {
      if (last) last.num = num = i > 511 ? i - 1024 : i
    } else if (a === 61) {
      if (last) last.subtype = i > 511 ? i - 1024 : i
    } else if (a === 62) {
      if (last) last.chan = chan = i
    } else if (a === 63) {
      const s = buf.subarray(p, p + i)
      if (last) last.aux = Buffer.from(s).toString('latin1')
      p += i + (i & 1)
    } else {
      t += i
      out.push({ sample: t, code: a, subtype: 0, chan, num, aux: '' })
    }
  }
  return out
}

export function readAnnotations(recordPath: string, annotator = 'atr'): Annotation[] {
  const base = recordPath.replace(/\.(hea|dat|atr)$/, '')
  let buf: Buffer
  try {
    buf = readFileSync(`${base}.${annotator}`)
  } catch (err) {
    throw new WfdbError(`cannot read annotations ${base}.${annotator}: ${(err as Error).message}`)
  }
  return parseAnnotations(new Uint8Array(buf))
}
