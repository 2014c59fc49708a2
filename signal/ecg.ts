/**
 * ECG front end for the board and the gateway: wraps the QRS detector with
 * heart rate, RR intervals, a signal-quality index and lead-off handling.
 * Portable (Espruino subset), streaming, no allocation per sample.
 *
 * Heart rate is reported only when it means something: at least four beats
 * since the leads went on, the last beat recent, and quality >= minQuality;
 * otherwise `heartRate()` returns undefined (never a sentinel).
 */
import { QrsDetector } from './qrs.ts'
import { BeatClassifier, type BeatClass } from './beat-class.ts'
import { RhythmAnalyzer, type RhythmEpisode, type RhythmLabel } from './rhythm.ts'

export interface EcgOptions {
  fs: number
  /** Largest sample value (4095 for a 12-bit ADC); samples stuck at adcMin or adcMax count as saturated. */
  adcMax?: number
  /** Smallest sample value (default 0, an unsigned ADC; a signed front end such as the MAX30003 sits around 0). */
  adcMin?: number
  /** Quality (0..100) below which no heart rate is reported (default 50). */
  minQuality?: number
  onBeat?: (rIndex: number, rrSamples: number) => void
  /** Each beat's EC57 class, a beat after onBeat (R index in the pushed stream). */
  onBeatClass?: (rIndex: number, cls: BeatClass) => void
  /** Each rhythm episode once it has ended (samples of the pushed stream). */
  onEpisode?: (e: RhythmEpisode) => void
  /** Rate limits of the rhythm analysis (bpm; defaults 50 and 120). */
  bradyBpm?: number
  tachyBpm?: number
  /** Shortest AF episode reported, seconds (default 30). */
  minAfSeconds?: number
}

/** Seconds of V beats pvcPerMinute() counts over. */
const PVC_WINDOW_SECONDS = 60
const PVC_KEEP = 256

/** RR intervals kept, and so the most a displayed rate averages. */
export const RR_KEEP = 16
/** Seconds of RR intervals the displayed rate averages (see heartRate). */
export const HR_AVG_SECONDS = 10

/**
 * The RR interval a displayed rate is computed from: the mean of the newest intervals spanning
 * up to HR_AVG_SECONDS, at least three, at most `count` (`rr(1)` the newest, in samples at `fs`).
 * A steady number in irregular rhythms (bigeminy: 16 intervals move it ~6 % a beat, 8 move it
 * ~12 %) that still follows a step in a few seconds at slow rates. EcgMonitor's display and the
 * reference it is scored against (signal/hr-series.ts) both use it.
 */
export function displayedRr(count: number, rr: (i: number) => number, fs: number): number {
  const span = HR_AVG_SECONDS * fs
  let sum = 0
  let n = 0
  for (let i = 1; i <= count; i++) {
    const x = rr(i)
    if (n >= 3 && sum + x > span) break
    sum += x
    n++
  }
  return n > 0 ? sum / n : 0
}

export class EcgMonitor {
  readonly fs: number
  readonly detector: QrsDetector
  private adcMax: number
  private adcMin: number
  private minQuality: number
  private onBeatCb: ((rIndex: number, rrSamples: number) => void) | undefined
  private off = false
  private offset = 0 // samples before the current detector run (detector indices restart at 0 on reset)
  private total = 0
  private satRun = 0
  private satLimit: number
  /** Recent RR intervals (samples) of this run, newest at (rrPos - 1). */
  private rrs: Int32Array
  private rrPos = 0
  private rrN = 0
  private beatsRun = 0
  private lastBeatAt = -1
  /** Bit 0 lead-off, bit 3 saturated (the frame's flag bits). */
  flags = 0
  readonly classifier: BeatClassifier
  readonly rhythm: RhythmAnalyzer
  private onClassCb: ((rIndex: number, cls: BeatClass) => void) | undefined
  /** Sample indices of the latest V beats (ring), for PVC/min. */
  private pvcs: Float64Array
  private pvcPos = 0
  private pvcN = 0
  private secondLeft: number

  constructor(opts: EcgOptions) {
    if (!opts || typeof opts.fs !== 'number') throw new Error('EcgMonitor: expected options with fs, got ' + opts)
    this.fs = opts.fs
    this.adcMax = opts.adcMax === undefined ? 4095 : opts.adcMax
    this.adcMin = opts.adcMin === undefined ? 0 : opts.adcMin
    if (!(this.adcMin < this.adcMax)) throw new Error('EcgMonitor: expected adcMin < adcMax, got ' + this.adcMin + ', ' + this.adcMax)
    this.minQuality = opts.minQuality === undefined ? 50 : opts.minQuality
    this.onBeatCb = opts.onBeat
    this.satLimit = Math.round(opts.fs * 0.2)
    this.rrs = new Int32Array(RR_KEEP)
    const self = this
    this.detector = new QrsDetector({
      fs: opts.fs,
      onBeat: function (r: number, rr: number) {
        self.beat(r, rr)
      },
    })
    this.onClassCb = opts.onBeatClass
    this.classifier = new BeatClassifier({
      fs: opts.fs,
      onClass: function (r: number, cls: BeatClass) {
        self.classified(r, cls)
      },
    })
    this.rhythm = new RhythmAnalyzer({ fs: opts.fs, bradyBpm: opts.bradyBpm, tachyBpm: opts.tachyBpm, minAfSeconds: opts.minAfSeconds, onEpisode: opts.onEpisode })
    this.pvcs = new Float64Array(PVC_KEEP)
    this.secondLeft = Math.round(opts.fs)
  }

  private classified(r: number, cls: BeatClass): void {
    const at = this.offset + r
    if (cls === 'V') {
      this.pvcs[this.pvcPos] = at
      this.pvcPos = (this.pvcPos + 1) % PVC_KEEP
      if (this.pvcN < PVC_KEEP) this.pvcN++
    }
    // until the classifier has seen enough beats to tell shapes from noise, no rhythm is called from them
    this.rhythm.novelty = this.classifier.judged() ? this.classifier.novelty() : 1
    this.rhythm.beat(at, cls, this.classifier.lastSharpRatio)
    if (this.onClassCb) this.onClassCb(at, cls)
  }

  private beat(r: number, rr: number): void {
    this.beatsRun++
    this.lastBeatAt = this.offset + r
    // An interval over 2.5 times the recent ones is a gap in detection (beats missed in noise
    // or an amplitude drop) or a pause, not a rate: the average starts again from the next
    // beats, so a displayed number never averages one in (it halved the rate on record 208).
    if (rr > 0 && this.rrN >= 3 && rr > 2.5 * this.meanRr()) this.rrPos = this.rrN = 0
    else if (rr > 0) {
      this.rrs[this.rrPos] = rr
      this.rrPos = (this.rrPos + 1) % RR_KEEP
      if (this.rrN < RR_KEEP) this.rrN++
    }
    this.rhythm.detected(this.offset + r)
    // in AF every beat comes early or late: an early one is not an S beat there
    this.classifier.inAf = this.rhythm.isActive('AF')
    this.classifier.beat(r, rr)
    if (this.onBeatCb) this.onBeatCb(this.offset + r, rr)
  }

  /**
   * One sample plus the lead-off line (AD8232 LO+/LO-). While a lead is off
   * nothing is detected; when it comes back the detector starts over, because
   * its filters and thresholds hold the electrode transient, not the patient.
   */
  push(x: number, leadOff: boolean): void {
    const i = this.total++
    // a missing sample (NaN, from a gap the caller filled) is treated like a lead-off sample: it would poison the filters
    if (leadOff || x !== x || x === Infinity || x === -Infinity) {
      if (!this.off) {
        this.off = true
        this.flags |= 1
        this.classifier.reset()
      }
      this.rhythm.push(0, false)
      this.tick()
      return
    }
    if (this.off) {
      this.off = false
      this.flags &= ~1
      this.restart(i)
    }
    if (x <= this.adcMin || x >= this.adcMax) {
      this.satRun++
      if (this.satRun >= this.satLimit) this.flags |= 8
    } else {
      this.satRun = 0
      this.flags &= ~8
    }
    this.classifier.push(x)
    this.rhythm.push(x, true)
    this.detector.push(x)
    this.tick()
  }

  /** Once a second of samples: the rhythm analysis's timed tests. */
  private tick(): void {
    if (--this.secondLeft > 0) return
    this.secondLeft = Math.round(this.fs)
    this.rhythm.second(this.heartRate(), this.quality())
  }

  private restart(at: number): void {
    this.classifier.reset()
    this.detector.reset()
    this.offset = at
    this.rrPos = this.rrN = 0
    this.beatsRun = 0
    this.lastBeatAt = -1
  }

  /** Emits the beat the detector still holds back, its class, and the open rhythm episodes (end of a record). */
  finish(): void {
    this.detector.finish()
    this.classifier.finish()
    this.rhythm.finish()
  }

  /** V beats in the last minute of pushed samples. */
  pvcPerMinute(): number {
    const from = this.total - PVC_WINDOW_SECONDS * this.fs
    let c = 0
    for (let i = 0; i < this.pvcN; i++) if (this.pvcs[i] >= from) c++
    return c
  }

  /** The rhythm to show now ('' when none of the analysed rhythms applies). */
  rhythmLabel(): RhythmLabel | '' {
    return this.rhythm.active()
  }

  /** Mean of the kept RR intervals, samples (0 without any). */
  private meanRr(): number {
    let sum = 0
    for (let i = 0; i < this.rrN; i++) sum += this.rrs[i]
    return this.rrN > 0 ? sum / this.rrN : 0
  }

  /** Last RR interval in milliseconds, or undefined. */
  lastRrMs(): number | undefined {
    if (this.rrN === 0) return undefined
    return (this.rrs[(this.rrPos + RR_KEEP - 1) % RR_KEEP] * 1000) / this.fs
  }

  /**
   * Signal-quality index 0..100: how far beats stand above the noise peaks in
   * the integrator (median levels), zero while a lead is off, while learning,
   * while saturated, or when no beat came for 3 s.
   */
  quality(): number {
    if (this.off || this.flags & 8 || this.detector.isLearning) return 0
    if (this.lastBeatAt < 0 || this.total - this.lastBeatAt > 3 * this.fs + this.fs) return 0
    const s = this.detector.signalLevel
    const nz = this.detector.artefactLevel
    if (!(s > 0)) return 0
    // integrator heights are squared amplitudes: compare amplitudes
    const ratio = Math.sqrt(nz / s)
    let q = Math.round(100 * (1 - ratio) * 1.25)
    if (q > 100) q = 100
    // beats whose shapes match nothing seen before are noise the detector took for beats:
    // past a quarter of them the detector is guessing, and the quality says so
    const novel = this.classifier.novelty()
    if (novel > 0.25) q = Math.round((q * (1 - novel)) / 0.75)
    if (q < 0) q = 0
    return q
  }

  /** Heart rate in beats per minute from the mean of the recent RR intervals, or undefined when not trustworthy. */
  heartRate(): number | undefined {
    if (this.beatsRun < 4 || this.rrN < 3) return undefined
    const q = this.quality()
    if (q < this.minQuality) return undefined
    const rrs = this.rrs
    const pos = this.rrPos
    const mean = displayedRr(this.rrN, function (i: number) { return rrs[(pos + RR_KEEP - i) % RR_KEEP] }, this.fs)
    const bpm = Math.round((600 * this.fs) / mean) / 10
    // Outside 20-300 bpm no heart beats: a number there is a detector fault, not a rate to show.
    return bpm >= 20 && bpm <= 300 ? bpm : undefined
  }
}
