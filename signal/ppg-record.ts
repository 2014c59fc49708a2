/**
 * A red/IR recording (CSV with a header holding `t,red,ir`: t in seconds, raw
 * ADC counts) run through the streaming PpgMonitor, as `mhealth ppg spo2` and
 * `ppg calibrate` do: the same code the gateway runs on a board's frames, at
 * the recording's own rate taken from `t`.
 */
import { PpgMonitor, type PpgReading, type SpO2Calibration } from './ppg.ts'
import { sortFirst } from './sort.ts'

export interface RedIrRecording {
  t: Float64Array
  red: Float64Array
  ir: Float64Array
  /** Sample rate from t: (samples - 1) / (last t - first t). */
  fs: number
}

/** Shortest recording accepted, seconds. */
export const MIN_RECORDING_S = 2

export class RecordingError extends Error {}

/** Parses the CSV; any problem is one RecordingError naming the line. */
export function parseRedIrCsv(text: string, what: string): RedIrRecording {
  const lines = text.split(/\r?\n/)
  let h = 0
  while (h < lines.length && lines[h].trim() === '') h++
  if (h === lines.length) throw new RecordingError(`${what}: empty file`)
  const names = lines[h].split(',').map((s) => s.trim().toLowerCase())
  const ti = names.indexOf('t')
  const ri = names.indexOf('red')
  const ii = names.indexOf('ir')
  const missing = ['t', 'red', 'ir'].filter((n, k) => [ti, ri, ii][k] < 0)
  if (missing.length > 0) throw new RecordingError(`${what}: header lacks column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (expected a header with t,red,ir; got "${lines[h].trim().slice(0, 80)}")`)
  const t: number[] = []
  const red: number[] = []
  const ir: number[] = []
  for (let k = h + 1; k < lines.length; k++) {
    const line = lines[k].trim()
    if (line === '') continue
    const cells = line.split(',')
    const tv = num(cells[ti])
    const rv = num(cells[ri])
    const iv = num(cells[ii])
    if (tv === null || rv === null || iv === null) {
      const bad = tv === null ? 't' : rv === null ? 'red' : 'ir'
      throw new RecordingError(`${what}: line ${k + 1}: ${bad} is not a number ("${(cells[bad === 't' ? ti : bad === 'red' ? ri : ii] ?? '').trim().slice(0, 20)}")`)
    }
    if (t.length > 0 && !(tv > t[t.length - 1])) throw new RecordingError(`${what}: line ${k + 1}: t ${tv} does not increase (previous ${t[t.length - 1]})`)
    t.push(tv)
    red.push(rv)
    ir.push(iv)
  }
  const span = t.length > 1 ? t[t.length - 1] - t[0] : 0
  if (span < MIN_RECORDING_S) throw new RecordingError(`${what}: ${t.length} samples over ${span.toFixed(2)} s; at least ${MIN_RECORDING_S} s are needed`)
  const measured = (t.length - 1) / span
  // A nominal 25 or 3200 Hz measured from jittered host timestamps lands a little outside.
  if (!(measured >= 25 * 0.98 && measured <= 3200 * 1.02)) throw new RecordingError(`${what}: sample rate ${measured.toFixed(1)} Hz from t; expected 25 to 3200 Hz (is t in seconds?)`)
  const fs = Math.min(3200, Math.max(25, measured))
  return { t: new Float64Array(t), red: new Float64Array(red), ir: new Float64Array(ir), fs: fs }
}

function num(cell: string | undefined): number | null {
  if (cell === undefined) return null
  const s = cell.trim()
  if (s === '') return null
  const v = Number(s)
  return isFinite(v) ? v : null
}

export interface SecondLine {
  /** Seconds from the first sample to the end of what the reading covers. */
  t: number
  reading: PpgReading
}

export interface Spo2Run {
  lines: SecondLine[]
  /** Medians of the readings that have a number, or null. */
  spo2: number | null
  pulseRate: number | null
  /** Median ratio of ratios of the readings good enough for SpO2 (what a calibration is fitted to), or null. */
  ratio: number | null
}

/**
 * Feeds the recording sample by sample; one line per second of signal, and a
 * last one for a trailing part-second of at least half a second (flush).
 */
export function runSpo2(rec: RedIrRecording, calibration?: SpO2Calibration): Spo2Run {
  const lines: SecondLine[] = []
  const t0 = rec.t[0]
  let i = 0
  // A reading covers samples up to i; its time is that of the next sample (the end of the last one's period).
  const mon = new PpgMonitor({
    fs: rec.fs,
    calibration,
    onReading: (r) => lines.push({ t: round2((i + 1 < rec.t.length ? rec.t[i + 1] : rec.t[i] + 1 / rec.fs) - t0), reading: r }),
  })
  for (i = 0; i < rec.t.length; i++) mon.push(rec.red[i], rec.ir[i])
  i = rec.t.length - 1
  const before = lines.length
  mon.flush()
  if (lines.length > before) lines[lines.length - 1].t = round2(rec.t[i] + 1 / rec.fs - t0)
  return {
    lines,
    spo2: median(lines.map((l) => l.reading.spo2)),
    pulseRate: median(lines.map((l) => l.reading.pulseRate)),
    ratio: median(lines.map((l) => l.reading.ratio)),
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100
}

function median(xs: Array<number | undefined>): number | null {
  const v = xs.filter((x): x is number => x !== undefined)
  if (v.length === 0) return null
  const a = new Float64Array(v)
  sortFirst(a, a.length, a)
  const m = a.length
  return m % 2 === 1 ? a[m >> 1] : (a[m / 2 - 1] + a[m / 2]) / 2
}
