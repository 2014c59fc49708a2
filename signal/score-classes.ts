/**
 * Beat classes scored in the manner of ANSI/AAMI EC57 (and the inter-patient
 * literature): each reference beat is paired with the detection within the
 * match window (150 ms), and the pairs fill a confusion matrix over N S V F Q.
 * A reference beat nobody detected counts against its class's sensitivity.
 * Q reference beats are left out. For VEB, a fusion beat called V is not a
 * false positive (EC57); for SVEB every non-S beat called S is.
 */
import type { BeatClass } from './beat-class.ts'
import { inIntervals } from './score.ts'

export const CLASS_ORDER: ReadonlyArray<BeatClass> = ['N', 'S', 'V', 'F', 'Q']

export interface ClassedBeat {
  sample: number
  cls: BeatClass
}

export interface ClassScore {
  /** matrix[ref][det] over CLASS_ORDER, det index 5 = not detected. */
  matrix: number[][]
  veb: { tp: number; fn: number; fp: number; se: number; ppv: number }
  sveb: { tp: number; fn: number; fp: number; se: number; ppv: number }
}

function idx(c: BeatClass): number {
  return CLASS_ORDER.indexOf(c)
}

/** Both lists sorted by sample; `exclude` intervals [from, to) are left out (VF episodes). */
export function scoreClasses(ref: ReadonlyArray<ClassedBeat>, det: ReadonlyArray<ClassedBeat>, tolerance: number, exclude?: ReadonlyArray<readonly [number, number]>): ClassScore {
  const out = (s: number): boolean => !!exclude && inIntervals(s, exclude)
  const matrix: number[][] = CLASS_ORDER.map(() => [0, 0, 0, 0, 0, 0])
  let j = 0
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i]!
    while (j < det.length && det[j]!.sample < r.sample - tolerance) j++
    // the nearest detection in the window that the next reference beat does not sit closer to
    let k = -1
    for (let m = j; m < det.length && det[m]!.sample <= r.sample + tolerance; m++) {
      if (k < 0 || Math.abs(det[m]!.sample - r.sample) < Math.abs(det[k]!.sample - r.sample)) k = m
    }
    const next = ref[i + 1]
    if (k >= 0 && next && Math.abs(det[k]!.sample - next.sample) < Math.abs(det[k]!.sample - r.sample)) k = -1
    if (!out(r.sample)) matrix[idx(r.cls)]![k >= 0 ? idx(det[k]!.cls) : 5]!++
    if (k >= 0) j = k + 1
  }
  const m = matrix
  const N = 0, S = 1, V = 2, F = 3
  const vtp = m[V]![V]!
  const vfn = m[V]![N]! + m[V]![S]! + m[V]![F]! + m[V]![4]! + m[V]![5]!
  const vfp = m[N]![V]! + m[S]![V]!
  const stp = m[S]![S]!
  const sfn = m[S]![N]! + m[S]![V]! + m[S]![F]! + m[S]![4]! + m[S]![5]!
  const sfp = m[N]![S]! + m[V]![S]! + m[F]![S]!
  const rate = (a: number, b: number): number => (a + b > 0 ? a / (a + b) : NaN)
  return {
    matrix,
    veb: { tp: vtp, fn: vfn, fp: vfp, se: rate(vtp, vfn), ppv: rate(vtp, vfp) },
    sveb: { tp: stp, fn: sfn, fp: sfp, se: rate(stp, sfn), ppv: rate(stp, sfp) },
  }
}

/** Sums of several records' scores (gross statistics). */
export function addClassScores(a: ClassScore, b: ClassScore): ClassScore {
  const matrix = a.matrix.map((row, i) => row.map((v, j) => v + b.matrix[i]![j]!))
  const sum = (x: ClassScore['veb'], y: ClassScore['veb']) => {
    const tp = x.tp + y.tp, fn = x.fn + y.fn, fp = x.fp + y.fp
    return { tp, fn, fp, se: tp + fn > 0 ? tp / (tp + fn) : NaN, ppv: tp + fp > 0 ? tp / (tp + fp) : NaN }
  }
  return { matrix, veb: sum(a.veb, b.veb), sveb: sum(a.sveb, b.sveb) }
}
