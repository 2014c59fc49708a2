/**
 * Beat-by-beat comparison in the manner of ANSI/AAMI EC57 (and WFDB `bxb`):
 * a detection matches a reference beat when they are at most `tolerance`
 * samples apart (150 ms); each reference and each detection is used at most
 * once, matched in time order to the nearest unmatched partner.
 */

export interface BeatScore {
  tp: number
  fn: number
  fp: number
  /** Sensitivity TP / (TP + FN), 0..1 (NaN with no reference beats). */
  se: number
  /** Positive predictivity TP / (TP + FP), 0..1 (NaN with no detections). */
  ppv: number
}

export interface ScoreOptions {
  /** Match window in samples either side (EC57: 150 ms). */
  tolerance: number
  /** Reference beats and detections before this sample are not scored (warm-up). */
  from?: number
  /** ...nor after this sample (exclusive). */
  to?: number
  /**
   * Sample intervals [from, to) left out of the comparison, references and detections alike:
   * ventricular flutter or fibrillation episodes (the record's VFON '[' to VFOFF ']'), which
   * EC57 excludes from beat-by-beat scoring, as WFDB's bxb does.
   */
  exclude?: ReadonlyArray<readonly [number, number]>
}

/** The values outside every interval of `exclude` (sorted input stays sorted). */
function outside(xs: ArrayLike<number>, exclude: ReadonlyArray<readonly [number, number]>): number[] {
  const out: number[] = []
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!
    if (!inIntervals(x, exclude)) out.push(x)
  }
  return out
}

/** True when x lies in one of the [from, to) intervals. */
export function inIntervals(x: number, intervals: ReadonlyArray<readonly [number, number]>): boolean {
  for (let k = 0; k < intervals.length; k++) if (x >= intervals[k]![0] && x < intervals[k]![1]) return true
  return false
}

/** VF/flutter episodes of an annotation list: from each VFON (code 32, '[') to the next VFOFF (33, ']') or `end`. */
export function vfEpisodes(ann: ReadonlyArray<{ sample: number; code: number }>, end: number): Array<[number, number]> {
  const out: Array<[number, number]> = []
  let on = -1
  for (let i = 0; i < ann.length; i++) {
    const a = ann[i]!
    if (a.code === 32 && on < 0) on = a.sample
    else if (a.code === 33 && on >= 0) {
      out.push([on, a.sample + 1])
      on = -1
    }
  }
  if (on >= 0) out.push([on, end])
  return out
}

/** Both arrays must be sorted ascending (sample indices). */
export function scoreBeats(reference: ArrayLike<number>, detected: ArrayLike<number>, opts: ScoreOptions): BeatScore {
  if (!opts || !(opts.tolerance >= 0)) throw new Error('scoreBeats: expected tolerance >= 0, got ' + (opts ? opts.tolerance : opts))
  if (opts.exclude && opts.exclude.length > 0) {
    reference = outside(reference, opts.exclude)
    detected = outside(detected, opts.exclude)
  }
  const from = opts.from === undefined ? -Infinity : opts.from
  const to = opts.to === undefined ? Infinity : opts.to
  const tol = opts.tolerance
  let i = 0
  let j = 0
  let tp = 0
  let fn = 0
  let fp = 0
  const nr = reference.length
  const nd = detected.length
  while (i < nr && reference[i] < from) i++
  while (j < nd && detected[j] < from) j++
  while (i < nr || j < nd) {
    const r = i < nr && reference[i] < to ? reference[i] : Infinity
    const d = j < nd && detected[j] < to ? detected[j] : Infinity
    if (r === Infinity && d === Infinity) break
    if (r !== Infinity && d !== Infinity && Math.abs(r - d) <= tol) {
      // Before pairing, check whether the next detection fits this reference
      // better, or the next reference fits this detection better.
      const d2 = j + 1 < nd && detected[j + 1] < to ? detected[j + 1] : Infinity
      const r2 = i + 1 < nr && reference[i + 1] < to ? reference[i + 1] : Infinity
      if (d2 !== Infinity && Math.abs(d2 - r) < Math.abs(d - r) && !(r2 !== Infinity && Math.abs(d2 - r2) < Math.abs(d2 - r))) {
        fp++
        j++
        continue
      }
      if (r2 !== Infinity && Math.abs(r2 - d) < Math.abs(r - d) && !(d2 !== Infinity && Math.abs(d2 - r2) < Math.abs(d2 - r))) {
        fn++
        i++
        continue
      }
      tp++
      i++
      j++
    } else if (r < d) {
      fn++
      i++
    } else {
      fp++
      j++
    }
  }
  return { tp: tp, fn: fn, fp: fp, se: tp + fn > 0 ? tp / (tp + fn) : NaN, ppv: tp + fp > 0 ? tp / (tp + fp) : NaN }
}
