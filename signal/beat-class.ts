/**
 * Beat classes after ANSI/AAMI EC57: N (normal and bundle-branch), S
 * (supraventricular ectopic), V (ventricular ectopic), F (fusion), Q
 * (unclassifiable). Each beat is described by its timing against the recent
 * rhythm and by its shape against the patient's dominant beat (beat-shape.ts),
 * and a small linear model (beat-model.ts, trained on the MIT-BIH DS1 half
 * only by scripts/train-beat-model.ts) turns those features into a class.
 * Nothing is learned per patient: the features are ratios to this patient's
 * own recent beats, the weights are the same for everyone.
 *
 * A beat is classified when the next one arrives (its following RR interval
 * is a feature: a ventricular beat is usually followed by a compensatory
 * pause), so classes come one beat after the detector's beats; `finish()`
 * classifies the last. Portable (Espruino subset), no allocation per beat.
 */
import { BeatShapes, type BeatShape } from './beat-shape.ts'
import { BEAT_MODEL } from './beat-model.ts'
import { sortFirst } from './sort.ts'

export type BeatClass = 'N' | 'S' | 'V' | 'F' | 'Q'

/** Classes the model decides between, in the order of its weight rows. */
export const MODEL_CLASSES: ReadonlyArray<BeatClass> = ['N', 'S', 'V']

export type ClassCallback = (rIndex: number, cls: BeatClass) => void
/** Sees each beat's feature vector and the class given (the training script's hook). */
export type FeatureCallback = (rIndex: number, features: Float64Array, cls: BeatClass) => void

/** RR intervals in the short (mean) and long (median) rhythm references. */
const SHORT_RR = 8
const LONG_RR = 32
/** Novelty (share of recent beats matching no known shape) above which a novel beat is Q. */
const NOISY_NOVELTY = 0.25
/** Beats the novelty share is taken over. */
const NOVEL_BEATS = 8
/** Length of the feature vector (beatFeatures), the bias included. */
export const FEATURES = 21

const LOG2 = Math.log(2)
function clampShape(x: number): number {
  const l = clampLog(x)
  return l > LOG2 ? LOG2 : l < -LOG2 ? -LOG2 : l
}

function clampLog(x: number): number {
  return Math.log(x < 0.05 ? 0.05 : x > 20 ? 20 : x)
}

/**
 * The feature vector of one beat, written into `f` (length FEATURES): index 0 is the bias,
 * then shape against the dominant beat, then timing against the recent rhythm.
 * `pre`/`post` are the RR intervals before and after the beat, `mean` the mean of the
 * previous SHORT_RR intervals, `median` the median of the previous LONG_RR, `prev` the
 * interval before `pre`, `irregular` the mean absolute successive difference of the
 * previous intervals over their mean; all in samples at `fs`, except `irregular`.
 */
export function beatFeatures(f: Float64Array, s: BeatShape, pre: number, post: number, mean: number, median: number, prev: number, irregular: number, fs: number): void {
  const preR = pre > 0 && mean > 0 ? pre / mean : 1
  const postR = post > 0 && mean > 0 ? post / mean : 1
  const preL = pre > 0 && median > 0 ? pre / median : 1
  const postL = post > 0 && median > 0 ? post / median : 1
  const prevR = pre > 0 && prev > 0 ? pre / prev : 1
  const c = s.corr
  const lp = clampLog(preR)
  f[0] = 1
  f[1] = c
  f[2] = c < 1 ? (1 - c) * (1 - c) : 0
  // shape ratios saturate at half and twice the dominant beat's: the model has seen few beats
  // beyond, and a linear model extrapolated past its data turns a very tall PVC into anything
  f[3] = clampShape(s.ampRatio)
  f[4] = clampShape(s.widthRatio)
  f[5] = clampShape(s.sharpRatio)
  f[6] = s.width * 10
  f[7] = s.share
  f[8] = s.dominant ? 1 : 0
  f[9] = lp
  f[10] = clampLog(postR)
  f[11] = clampLog(postR / preR)
  f[12] = pre / fs
  f[13] = f[3] * f[3]
  f[14] = f[4] * f[4]
  f[15] = clampLog(preL)
  f[16] = clampLog(postL)
  f[17] = clampLog(prevR)
  f[18] = irregular
  f[19] = irregular * lp
  f[20] = lp < 0 ? lp * lp : 0
}

/**
 * Whether a beat the model calls S can be one: early against the recent or the longer rhythm
 * (RR under 0.9 of either), in a rhythm regular enough for "early" to mean something (mean
 * successive difference under a quarter of the mean RR), and shaped like the dominant beat
 * (correlation over 0.8). Across patients, this gate took the model's SVEB +P from 28 and 12 %
 * to 62 and 35 % on the two halves of DS1 for 3 and 2 points of Se (the model alone leans on
 * whatever made S beats stand out in the records it was trained on).
 */
export function svebPlausible(f: Float64Array): boolean {
  return (f[9] < LOG_EARLY || f[15] < LOG_EARLY) && f[18] < 0.25 && f[1] > 0.8
}
const LOG_EARLY = Math.log(0.9)

/**
 * Whether a beat the model calls V can be one: shaped unlike the dominant beat (correlation
 * under 0.9) or wide (QRS 60 ms or more; 95 % of DS1's V beats are). A second cluster of a
 * patient's own narrow beats, a little wider than an unusually narrow dominant one, is not
 * ventricular (MIT-BIH 100, never trained on: 26 such false V in 30 min before this gate).
 */
export function vebPlausible(f: Float64Array): boolean {
  return f[1] < 0.9 || f[6] >= 0.6
}

export interface BeatClassifierOptions {
  fs: number
  onClass?: ClassCallback
  onFeatures?: FeatureCallback
}

export class BeatClassifier {
  readonly fs: number
  readonly shapes: BeatShapes
  private onClass: ClassCallback | undefined
  private onFeatures: FeatureCallback | undefined
  private rr: Int32Array
  private rrPos = 0
  private rrN = 0
  private sorted: Float64Array
  private f: Float64Array
  private z: Float64Array
  // the beat waiting for its following interval
  private pendR = -1
  private pendRr = 0
  private pendOk = false
  private pend: BeatShape
  /** Whether each of the last NOVEL_BEATS beats matched no known shape (bit per beat). */
  private novelBits = 0
  private novelN = 0
  /** Beats given each class since construction or reset: N S V F Q. */
  counts: Int32Array
  /** Sharpness of the last classified beat over the dominant beat's (1 when unknown): ventricular complexes are slurred. */
  lastSharpRatio = 1
  /** True while the rhythm is atrial fibrillation (set by the rhythm analysis): irregular early beats are not S then. */
  inAf = false

  constructor(opts: BeatClassifierOptions) {
    if (!opts || typeof opts.fs !== 'number') throw new Error('BeatClassifier: expected options with fs, got ' + opts)
    this.fs = opts.fs
    this.onClass = opts.onClass
    this.onFeatures = opts.onFeatures
    this.shapes = new BeatShapes(opts.fs)
    this.rr = new Int32Array(LONG_RR)
    this.sorted = new Float64Array(LONG_RR)
    this.f = new Float64Array(FEATURES)
    this.z = new Float64Array(MODEL_CLASSES.length)
    this.pend = { corr: 1, ampRatio: 1, widthRatio: 1, width: 0, sharpness: 0, sharpRatio: 1, share: 1, dominant: true, novel: false }
    this.counts = new Int32Array(5)
  }

  /** Every raw sample, in step with the QRS detector's input. */
  push(x: number): void {
    this.shapes.push(x)
  }

  /** A detected beat: R index in the pushed stream, RR before it in samples (0 for the first). */
  beat(r: number, rr: number): void {
    if (this.pendR >= 0) this.classify(rr)
    this.pendR = r
    this.pendRr = rr
    this.pendOk = this.shapes.measure(r, this.pend)
    this.novelBits = ((this.novelBits << 1) | (this.pendOk && this.pend.novel ? 1 : 0)) & ((1 << NOVEL_BEATS) - 1)
    if (this.novelN < NOVEL_BEATS) this.novelN++
  }

  /**
   * Share (0..1) of the last NOVEL_BEATS beats whose shape matched nothing seen before: near 0 for
   * any organised rhythm (ectopic beats repeat their shapes too), high when the "beats" are noise.
   */
  judged(): boolean {
    return this.novelN >= NOVEL_BEATS
  }

  novelty(): number {
    if (this.novelN < NOVEL_BEATS) return 0
    let c = 0
    for (let b = this.novelBits; b; b >>= 1) c += b & 1
    return c / NOVEL_BEATS
  }

  /** End of input: classifies the beat still waiting for its following interval. */
  finish(): void {
    if (this.pendR >= 0) this.classify(0)
  }

  /** Forget the rhythm and the shapes (after a gap or lead-off). A waiting beat is classified first. */
  reset(): void {
    this.finish()
    this.shapes.reset()
    this.rrPos = this.rrN = 0
    this.pendR = -1
    this.inAf = false
    this.novelBits = this.novelN = 0
  }

  private classify(post: number): void {
    const r = this.pendR
    const pre = this.pendRr
    this.pendR = -1
    let cls: BeatClass = 'Q'
    this.lastSharpRatio = this.pendOk ? this.pend.sharpRatio : 1
    if (this.pendOk && pre > 0) {
      beatFeatures(this.f, this.pend, pre, post, this.mean(), this.median(), this.rrAt(1), this.irregularity(), this.fs)
      cls = MODEL_CLASSES[this.decide()]
      if (cls === 'S' && (this.inAf || !svebPlausible(this.f))) cls = 'N'
      else if (cls === 'V' && !vebPlausible(this.f)) cls = 'N'
      // a shape never seen before amid others never seen before is noise taken for a beat, or a
      // beat noise has deformed: its class cannot be told (Q), and it is no PVC to count
      if (cls !== 'N' && this.pend.novel && this.novelty() > NOISY_NOVELTY) cls = 'Q'
      if (this.onFeatures) this.onFeatures(r, this.f, cls)
    } else if (this.pendOk) cls = this.pend.dominant ? 'N' : 'Q' // the first beat of a run: no rhythm to judge it by
    if (pre > 0) this.addRr(pre)
    this.counts[cls === 'N' ? 0 : cls === 'S' ? 1 : cls === 'V' ? 2 : cls === 'F' ? 3 : 4]++
    if (this.onClass) this.onClass(r, cls)
  }

  /** Index of the class with the highest score under the shipped model. */
  private decide(): number {
    const w = BEAT_MODEL.weights
    const mu = BEAT_MODEL.mean
    const sd = BEAT_MODEL.scale
    const f = this.f
    const z = this.z
    const k = z.length
    let best = 0
    for (let c = 0; c < k; c++) {
      let s = w[c * FEATURES]
      for (let i = 1; i < FEATURES; i++) s += (w[c * FEATURES + i] * (f[i] - mu[i])) / sd[i]
      z[c] = s
      if (s > z[best]) best = c
    }
    return best
  }

  private addRr(x: number): void {
    this.rr[this.rrPos] = x
    this.rrPos = (this.rrPos + 1) % LONG_RR
    if (this.rrN < LONG_RR) this.rrN++
  }

  /** The i-th newest kept interval (1 = newest), 0 when there is none. */
  private rrAt(i: number): number {
    return i <= this.rrN ? this.rr[(this.rrPos + LONG_RR - i) % LONG_RR] : 0
  }

  private mean(): number {
    const n = this.rrN < SHORT_RR ? this.rrN : SHORT_RR
    let s = 0
    for (let i = 1; i <= n; i++) s += this.rrAt(i)
    return n > 0 ? s / n : 0
  }

  private median(): number {
    const n = this.rrN
    if (n === 0) return 0
    // at most 32 values, once per beat
    sortFirst(this.rr, n, this.sorted)
    return this.sorted[n >> 1]
  }

  private irregularity(): number {
    const n = this.rrN < SHORT_RR ? this.rrN : SHORT_RR
    if (n < 2) return 0
    let d = 0
    for (let i = 1; i < n; i++) d += Math.abs(this.rrAt(i) - this.rrAt(i + 1))
    const m = this.mean()
    return m > 0 ? d / (n - 1) / m : 0
  }
}
