/**
 * Rhythm analysis over the classified beats and the raw signal: atrial
 * fibrillation from RR irregularity, ventricular tachycardia from runs of V
 * beats, ventricular fibrillation or flutter from a spectral test on the
 * signal, asystole, bradycardia and tachycardia against limits, and NOISE
 * when the signal cannot be judged (no rhythm call is made in noise).
 * Each is reported as an episode [start, end) in samples; `active()` says
 * what is going on now. Portable (Espruino subset), no allocation per sample.
 *
 * - AF: the irregularity of the last AF_WINDOW RR intervals (those around a V
 *   beat left out) is the median over beats of the smallest of |RR_k - RR_k-j|
 *   for j = 1, 2, 3, over the median RR. Taking the smallest lag makes a
 *   regular pattern of ectopics (bigeminy, trigeminy) score near zero while
 *   the irregularly irregular RR of AF does not; the median ignores isolated
 *   ectopics. On the reference beats of four Long-Term AF Database records,
 *   48-beat windows scored AF 95 % / non-AF 98 % at 0.04 (ltafdb is 128 Hz).
 *   An episode starts and ends half a window back (where the median turned)
 *   and counts only from minAfSeconds.
 * - VT: at least 3 consecutive V beats at a mean rate of >= 100 bpm (mean RR <= 0.6 s),
 *   on average less sharp than the dominant beat (ventricular complexes are slurred).
 * - VF: the VF filter of Kuo & Dillman (1978) on 4 s of band-limited signal
 *   each second: a signal close to one sinusoid has a small "leakage" through
 *   a filter notched at its mean frequency; VF (leakage < 0.406, Amann et al.
 *   2005) for 4 seconds running, with a dominant frequency of 2-9 Hz.
 * - ASYSTOLE: no beat for 4 s with the leads on.
 * - BRADY / TACHY: the displayed rate below / above the limits for 5 s.
 */
import { sortFirst } from './sort.ts'

export type RhythmLabel = 'AF' | 'VT' | 'VF' | 'ASYSTOLE' | 'BRADY' | 'TACHY' | 'NOISE'

export interface RhythmEpisode {
  /** First sample of the episode. */
  start: number
  /** Sample after its end. */
  end: number
  label: RhythmLabel
}

export interface RhythmOptions {
  fs: number
  /** Rates below this (bpm) are bradycardia; default 50. */
  bradyBpm?: number
  /** Rates above this (bpm) are tachycardia; default 120. */
  tachyBpm?: number
  /** Shortest AF episode reported, seconds; default 30. */
  minAfSeconds?: number
  /** Quality (0-100) below which the signal is noise; default 25. */
  noiseQuality?: number
  onEpisode?: (e: RhythmEpisode) => void
}

/** RR intervals judged for AF. */
const AF_WINDOW = 48
const AF_MIN = 24
const AF_ON = 0.045
const AF_OFF = 0.035
const VF_LEAKAGE = 0.406
const VF_SECONDS = 4
const ASYSTOLE_SECONDS = 4
const RATE_SECONDS = 5
const NOISE_SECONDS = 5
const NOVEL_MAX = 0.25
/** A VT run's beats are on average less sharp than the dominant beat (sharpness ratio below this). */
const VT_SHARP = 1
/** A signal whose mean excursion is under this share of a beat's height is flat (no electrical activity). */
const FLAT = 0.04

/** Labels in the order of `active()`: the first that applies is the rhythm shown. */
export const RHYTHM_PRIORITY: ReadonlyArray<RhythmLabel> = ['VF', 'ASYSTOLE', 'VT', 'NOISE', 'AF', 'TACHY', 'BRADY']

export class RhythmAnalyzer {
  readonly fs: number
  private brady: number
  private tachy: number
  private minAf: number
  private noiseQ: number
  private onEpisode: ((e: RhythmEpisode) => void) | undefined
  /** Samples seen (the index of the next). */
  private n = 0
  // band-limited signal for the VF test: x minus its 0.25 s moving mean, over a ring of VF_SECONDS
  private ring: Float32Array
  private rm: number
  private mean: Float64Array
  private meanSum = 0
  private meanLen: number
  private vfRun = 0
  // beats
  private lastBeat = -1
  private prevBeat = -1
  private prevCls = ''
  private rr: Float64Array
  private rrPos = 0
  private rrN = 0
  private rrEnd: Float64Array
  private tmp: Float64Array
  private tmp2: Float64Array
  private vRun = 0
  private vSharp = 0
  private vRunStart = -1
  private vLast = -1
  // seconds of rate/noise conditions
  private slowRun = 0
  private fastRun = 0
  private noisyRun = 0
  /** Open episode start per label (sample), -1 when closed. */
  private open: Int32Array
  /** Where each label's last episode ended (a new one never starts before). */
  private ended: Int32Array
  private lastDetected = -1
  /** Smoothed height of the detected beats in the band-limited signal (0 before one). */
  private beatAmp = 0
  /** Leads off (or samples missing) now; `since` is where the current stretch of signal began. */
  private off = false
  private since = 0
  /** Irregularity of the last judged window (0 before one is full). */
  afScore = 0
  /**
   * Share of the recent beats whose shape matched none seen before (the beat classifier's
   * novelty): above NOVEL_MAX the beats are noise, and neither AF nor VT is called from them.
   */
  novelty = 0

  constructor(opts: RhythmOptions) {
    if (!opts || typeof opts.fs !== 'number') throw new Error('RhythmAnalyzer: expected options with fs, got ' + opts)
    const fs = opts.fs
    this.fs = fs
    this.brady = opts.bradyBpm === undefined ? 50 : opts.bradyBpm
    this.tachy = opts.tachyBpm === undefined ? 120 : opts.tachyBpm
    if (!(this.brady > 0 && this.brady < this.tachy)) throw new Error('RhythmAnalyzer: expected 0 < bradyBpm < tachyBpm, got ' + this.brady + ', ' + this.tachy)
    this.minAf = (opts.minAfSeconds === undefined ? 30 : opts.minAfSeconds) * fs
    this.noiseQ = opts.noiseQuality === undefined ? 25 : opts.noiseQuality
    this.onEpisode = opts.onEpisode
    let size = 1
    while (size < VF_SECONDS * fs) size *= 2
    this.ring = new Float32Array(size)
    this.rm = size - 1
    this.meanLen = Math.max(2, Math.round(0.25 * fs))
    this.mean = new Float64Array(this.meanLen)
    this.rr = new Float64Array(AF_WINDOW)
    this.rrEnd = new Float64Array(AF_WINDOW)
    this.tmp = new Float64Array(AF_WINDOW)
    this.tmp2 = new Float64Array(AF_WINDOW)
    this.open = new Int32Array(RHYTHM_PRIORITY.length).fill(-1)
    this.ended = new Int32Array(RHYTHM_PRIORITY.length)
  }

  /**
   * One sample: `on` false while the leads are off or the sample is missing. The first
   * sample off ends every open episode and forgets the rhythm (it cannot be judged across).
   */
  push(x: number, on: boolean): void {
    if (!on) {
      if (!this.off) {
        this.off = true
        this.finish()
      }
      this.n++
      return
    }
    if (this.off) {
      this.off = false
      this.meanSum = 0
      this.mean.fill(0)
      this.ring.fill(0)
      this.since = this.n
    }
    const i = this.n++
    const ml = this.meanLen
    this.meanSum += x - this.mean[i % ml]
    this.mean[i % ml] = x
    this.ring[i & this.rm] = i >= ml ? x - this.meanSum / ml : 0
  }

  /** Samples seen. */
  get count(): number {
    return this.n
  }

  /** A beat as soon as it is detected (its class comes a beat later): ends an asystole. */
  detected(r: number): void {
    if (this.open[this.slot('ASYSTOLE')] >= 0) this.close('ASYSTOLE', r)
    this.lastDetected = r
    // how tall a beat stands in the band-limited signal: what a flat line is judged against
    let peak = 0
    const w = Math.round(0.05 * this.fs)
    if (this.n - r < this.ring.length - w) for (let i = r - w; i <= r + w && i < this.n; i++) if (i >= 0 && Math.abs(this.ring[i & this.rm]) > peak) peak = Math.abs(this.ring[i & this.rm])
    this.beatAmp = this.beatAmp > 0 ? this.beatAmp + 0.125 * (peak - this.beatAmp) : peak
  }

  /**
   * A classified beat at sample `r` (beats arrive in order); `sharpRatio`, its largest slope
   * over its height against the dominant beat's (1 when unknown), says how slurred it is.
   */
  beat(r: number, cls: string, sharpRatio: number): void {
    const rr = this.lastBeat >= 0 ? r - this.lastBeat : 0
    // AF judges the atria: intervals that start or end at a V beat say nothing about them
    if (rr > 0 && cls !== 'V' && this.prevCls !== 'V' && cls !== 'Q') {
      this.rr[this.rrPos] = rr
      this.rrEnd[this.rrPos] = r
      this.rrPos = (this.rrPos + 1) % AF_WINDOW
      if (this.rrN < AF_WINDOW) this.rrN++
      if (!this.noisy() && this.novelty <= NOVEL_MAX) this.judgeAf(r)
      else if (this.novelty > NOVEL_MAX && this.open[this.slot('AF')] >= 0) this.close('AF', r)
    }
    // VT: a run of V beats whose mean rate is 100 bpm or more (slow VT alternates its intervals)
    if (cls === 'V' && rr > 0 && rr <= 1.5 * this.fs && this.prevCls === 'V') {
      this.vRun++
      this.vSharp += sharpRatio
    } else if (cls === 'V') {
      this.vRun = 1
      this.vRunStart = r
      this.vSharp = sharpRatio
    } else {
      this.vRun = 0
      if (this.open[this.slot('VT')] >= 0) this.close('VT', this.vLast + 1)
    }
    if (cls === 'V') this.vLast = r
    // and slurred like ventricular complexes: runs of sharp "V" beats were aberrant or noisy
    // supraventricular beats (203's AF: 10 of the 12 false VT runs on DS1 were as sharp as its normal beats)
    const fast = this.vRun >= 3 && (r - this.vRunStart) / (this.vRun - 1) <= 0.6 * this.fs && this.vSharp / this.vRun < VT_SHARP
    if (fast && !this.noisy() && this.novelty <= NOVEL_MAX && this.open[this.slot('VT')] < 0) this.openAt('VT', this.vRunStart)
    this.prevBeat = this.lastBeat
    this.lastBeat = r
    this.prevCls = cls
  }

  /**
   * Once a second of samples: the displayed rate (undefined when none is shown) and the
   * signal quality (0-100). Runs the timed tests (VF, asystole, rate limits, noise).
   */
  second(hr: number | undefined, quality: number): void {
    const n = this.n
    const fs = this.fs
    // noise: poor quality while beats still come (no beats at all is asystole, not noise)
    if (this.off) return
    const beating = this.lastDetected >= 0 && n - this.lastDetected < ASYSTOLE_SECONDS * fs
    // no beats over a signal that is not flat is noise the detector cannot read, not asystole
    const flat = this.activity() <= FLAT * this.beatAmp
    this.noisyRun = (quality < this.noiseQ && beating) || (!beating && !flat) ? this.noisyRun + 1 : 0
    this.flag('NOISE', this.noisyRun >= NOISE_SECONDS, n - this.noisyRun * fs, n)
    // VF
    const vf = n - this.since >= VF_SECONDS * fs && this.vfLike()
    this.vfRun = vf ? this.vfRun + 1 : 0
    this.flag('VF', this.vfRun >= VF_SECONDS && !this.noisy(), n - (this.vfRun + VF_SECONDS - 1) * fs, n)
    // asystole: from the last beat (or from when the leads went on)
    const since = this.lastDetected >= this.since ? this.lastDetected : this.since
    const still = n - since >= ASYSTOLE_SECONDS * fs && this.open[this.slot('VF')] < 0 && flat
    if (still && this.open[this.slot('ASYSTOLE')] < 0) this.openAt('ASYSTOLE', since)
    // rate limits
    this.slowRun = hr !== undefined && hr < this.brady ? this.slowRun + 1 : 0
    this.fastRun = hr !== undefined && hr > this.tachy ? this.fastRun + 1 : 0
    this.flag('BRADY', this.slowRun >= RATE_SECONDS, n - this.slowRun * fs, n)
    this.flag('TACHY', this.fastRun >= RATE_SECONDS, n - this.fastRun * fs, n)
  }

  /** The rhythm to show now (the first active label in RHYTHM_PRIORITY), or '' for none of them. */
  active(): RhythmLabel | '' {
    for (let k = 0; k < RHYTHM_PRIORITY.length; k++) if (this.open[k] >= 0) return RHYTHM_PRIORITY[k]
    return ''
  }

  /** True while `label` has an open episode. */
  isActive(label: RhythmLabel): boolean {
    return this.open[this.slot(label)] >= 0
  }

  /** Ends every open episode at the current sample (end of a record, lead-off, a gap), and forgets the rhythm. */
  finish(): void {
    for (let k = 0; k < RHYTHM_PRIORITY.length; k++) if (this.open[k] >= 0) this.close(RHYTHM_PRIORITY[k], this.n)
    this.lastBeat = this.prevBeat = this.lastDetected = -1
    this.prevCls = ''
    this.rrN = this.rrPos = 0
    this.vRun = this.vfRun = this.slowRun = this.fastRun = this.noisyRun = 0
    this.afScore = 0
  }

  private noisy(): boolean {
    return this.open[this.slot('NOISE')] >= 0
  }

  private slot(label: RhythmLabel): number {
    return RHYTHM_PRIORITY.indexOf(label)
  }

  private openAt(label: RhythmLabel, start: number): void {
    const k = this.slot(label)
    this.open[k] = start < this.ended[k] ? this.ended[k] : start
  }

  private close(label: RhythmLabel, end: number): void {
    const k = this.slot(label)
    const start = this.open[k]
    this.open[k] = -1
    if (end > this.ended[k]) this.ended[k] = end
    if (start < 0 || end <= start) return
    if (label === 'AF' && end - start < this.minAf) return
    if (this.onEpisode) this.onEpisode({ start: start, end: end, label: label })
  }

  /** Opens `label` at `start` (never before its last episode ended) when `on` and it is closed; closes it at `end` when not `on`. */
  private flag(label: RhythmLabel, on: boolean, start: number, end: number): void {
    const k = this.slot(label)
    if (on && this.open[k] < 0) this.open[k] = start < this.ended[k] ? this.ended[k] : start
    else if (!on && this.open[k] >= 0) this.close(label, end)
  }

  private judgeAf(r: number): void {
    if (this.rrN < AF_MIN) return
    const n = this.rrN
    const rr = this.rr
    const e = this.tmp
    const s = this.tmp2
    let m = 0
    // oldest first
    const first = (this.rrPos + AF_WINDOW - n) % AF_WINDOW
    for (let i = 0; i < n; i++) s[i] = rr[(first + i) % AF_WINDOW]
    for (let i = 3; i < n; i++) {
      const a = Math.abs(s[i] - s[i - 1])
      const b = Math.abs(s[i] - s[i - 2])
      const c = Math.abs(s[i] - s[i - 3])
      e[m++] = a < b ? (a < c ? a : c) : b < c ? b : c
    }
    const med = median(s, n)
    const irr = med > 0 ? median(e, m) / med : 0
    this.afScore = irr
    const open = this.open[this.slot('AF')] >= 0
    // the median turns when half the window has turned: the episode starts and ends there
    const mid = this.rrEnd[(first + (n >> 1)) % AF_WINDOW]
    if (!open && irr > AF_ON) this.openAt('AF', mid)
    else if (open && irr < AF_OFF) this.close('AF', mid > this.open[this.slot('AF')] ? mid : r)
  }

  /** Mean absolute band-limited signal over the last ASYSTOLE_SECONDS. */
  private activity(): number {
    const len = Math.min(ASYSTOLE_SECONDS * this.fs, this.n - this.since, this.ring.length)
    if (len <= 0) return 0
    let a = 0
    for (let i = this.n - len; i < this.n; i++) a += Math.abs(this.ring[i & this.rm])
    return a / len
  }

  /** The VF filter over the last VF_SECONDS of band-limited signal. */
  private vfLike(): boolean {
    const len = VF_SECONDS * this.fs
    const ring = this.ring
    const rm = this.rm
    const end = this.n
    const from = end - len
    let sa = 0
    let sd = 0
    for (let i = from + 1; i < end; i++) {
      const v = ring[i & rm]
      sa += Math.abs(v)
      sd += Math.abs(v - ring[(i - 1) & rm])
    }
    if (!(sd > 0)) return false
    const half = Math.floor((Math.PI * sa) / sd + 0.5)
    // the mean half-period says the dominant frequency: 2-9 Hz is fibrillation or flutter
    const freq = this.fs / (2 * half)
    if (half < 1 || freq < 2 || freq > 9) return false
    let num = 0
    let den = 0
    for (let i = from + half; i < end; i++) {
      const a = ring[i & rm]
      const b = ring[(i - half) & rm]
      num += Math.abs(a + b)
      den += Math.abs(a) + Math.abs(b)
    }
    return den > 0 && num / den < VF_LEAKAGE
  }
}

/** Median of the first n values of a (sorted in place). */
function median(a: Float64Array, n: number): number {
  sortFirst(a, n, a)
  return n > 0 ? a[n >> 1] : 0
}
