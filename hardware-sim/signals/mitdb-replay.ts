/**
 * Replay of a real MIT-BIH Arrhythmia Database record (WFDB format 212, read
 * by datasets/wfdb.ts) as an EcgSource: samples converted to mV as
 * (adu − baseline) / gain and resampled to whatever instants the board asks
 * for by linear interpolation between the two neighbouring 360 Hz samples.
 * At the record's own sample instants (t = i / fs) the value is exactly
 * sample i, so a 360 Hz reader reproduces the record bit for bit; at lower
 * ADC rates (e.g. 250 Hz) linear interpolation also acts as a mild low-pass
 * (MIT-BIH content above 100 Hz is negligible, so no separate anti-alias
 * filter is applied).
 *
 * At the end of the record the source either loops (default) or ends: after
 * the end it reports 0 mV with the leads off, as if the electrodes were removed.
 */
import { readRecord, type WfdbRecord } from '../../datasets/wfdb.ts'
import type { EcgSource } from './types.ts'

export interface MitdbReplayOptions {
  /** Record path without extension (e.g. ../shared/data/ecg/mitdb/100), or an already-read record. */
  record: string | WfdbRecord
  /** Signal index; default 0 (MLII in most MIT-BIH records). */
  channel?: number
  /** Start this many seconds into the record; default 0. */
  startSec?: number
  /** Loop at the end of the record (default) or end. */
  loop?: boolean
  /** Extra gain on the lead potential (e.g. 0.7 keeps tall R waves inside the AD8232's swing); default 1. */
  scale?: number
  /** Lead-off intervals [fromMs, toMs) in source time. */
  leadOff?: Array<[number, number]>
}

export class MitdbReplay implements EcgSource {
  readonly fs: number
  readonly length: number
  readonly recordName: string
  private readonly adu: Int16Array
  private readonly baseline: number
  private readonly gain: number
  private readonly start: number
  private readonly loop: boolean
  private readonly scale: number
  private readonly leadOffs: Array<[number, number]>

  constructor(opts: MitdbReplayOptions) {
    if (!opts || (typeof opts.record !== 'string' && typeof opts.record?.fs !== 'number')) throw new TypeError('record: expected a record path or a WfdbRecord')
    const rec = typeof opts.record === 'string' ? readRecord(opts.record) : opts.record
    const ch = opts.channel ?? 0
    if (!Number.isInteger(ch) || ch < 0 || ch >= rec.nsig) throw new RangeError(`channel: expected 0..${rec.nsig - 1}, got ${ch}`)
    this.fs = rec.fs
    this.adu = rec.samples[ch]
    this.length = this.adu.length
    if (this.length < 2) throw new RangeError(`record ${rec.record}: expected at least 2 samples, got ${this.length}`)
    this.baseline = rec.signals[ch].baseline
    this.gain = rec.signals[ch].gain
    this.recordName = rec.record
    const startSec = opts.startSec ?? 0
    this.start = Math.round(startSec * this.fs)
    if (!(this.start >= 0 && this.start < this.length)) throw new RangeError(`startSec: expected 0..${(this.length / this.fs).toFixed(1)}, got ${startSec}`)
    this.loop = opts.loop ?? true
    this.scale = opts.scale ?? 1
    if (!(this.scale > 0)) throw new RangeError(`scale: expected > 0, got ${this.scale}`)
    this.leadOffs = (opts.leadOff ?? []).map(([a, b]) => {
      if (!(b > a)) throw new RangeError(`leadOff: expected [fromMs, toMs) with toMs > fromMs, got [${a}, ${b}]`)
      return [a, b] as [number, number]
    })
  }

  /** Sample i of the record in mV, exactly as (adu − baseline) / gain. */
  sampleMv(i: number): number {
    return (this.adu[i] - this.baseline) / this.gain
  }

  /** True once a non-looping replay has run past the record's end. */
  ended(tMs: number): boolean {
    return !this.loop && this.start + (tMs * this.fs) / 1000 > this.length - 1
  }

  mv(tMs: number): number {
    if (!Number.isFinite(tMs) || tMs < 0) throw new RangeError(`tMs: expected a finite time >= 0, got ${tMs}`)
    let pos = this.start + (tMs * this.fs) / 1000
    // t = i/fs computed in ms rarely lands on an exact integer in floating point: snap near-integers
    // so native-rate reads return the stored sample itself.
    const near = Math.round(pos)
    if (Math.abs(pos - near) < 1e-6) pos = near
    if (this.loop) pos %= this.length
    else if (pos > this.length - 1) return 0
    const i0 = Math.floor(pos)
    const frac = pos - i0
    const v0 = this.sampleMv(i0)
    if (frac === 0) return this.scale === 1 ? v0 : v0 * this.scale
    // Looping joins the last sample to the first.
    const v1 = this.sampleMv(i0 + 1 < this.length ? i0 + 1 : 0)
    return (v0 + (v1 - v0) * frac) * this.scale
  }

  leadOff(tMs: number): boolean {
    if (this.ended(tMs)) return true
    for (const [a, b] of this.leadOffs) if (tMs >= a && tMs < b) return true
    return false
  }
}
