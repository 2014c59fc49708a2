/**
 * Rhythm scoring against reference rhythm annotations (MIT format: a rhythm
 * change `+`, code 28, with the new rhythm in its aux string, e.g. "(AFIB",
 * "(VT", "(N"): AF by time (EC57's AF duration sensitivity and positive
 * predictivity: overlap over the reference's AF time, and over the AF time
 * called), VT by episode (a reference episode is found when a called VT
 * episode overlaps it; a called episode overlapping none is false).
 */
import { vfEpisodes } from './score.ts'

export interface Interval {
  start: number
  end: number
}

/** The [start, end) sample intervals where the reference rhythm is `label` (e.g. "(AFIB"), up to `end`. */
export function rhythmIntervals(ann: ReadonlyArray<{ sample: number; code: number; aux: string }>, label: string, end: number): Interval[] {
  const out: Interval[] = []
  let on = -1
  for (let i = 0; i < ann.length; i++) {
    const a = ann[i]!
    if (a.code !== 28) continue
    const aux = a.aux.replace(/\0/g, '').trim()
    if (aux === label && on < 0) on = a.sample
    else if (aux !== label && aux.charAt(0) === '(' && on >= 0) {
      out.push({ start: on, end: a.sample })
      on = -1
    }
  }
  if (on >= 0) out.push({ start: on, end: end })
  return out
}

function total(xs: ReadonlyArray<Interval>): number {
  let s = 0
  for (let i = 0; i < xs.length; i++) s += xs[i]!.end - xs[i]!.start
  return s
}

function overlap(a: ReadonlyArray<Interval>, b: ReadonlyArray<Interval>): number {
  let s = 0
  for (let i = 0; i < a.length; i++) {
    for (let j = 0; j < b.length; j++) {
      const lo = Math.max(a[i]!.start, b[j]!.start)
      const hi = Math.min(a[i]!.end, b[j]!.end)
      if (hi > lo) s += hi - lo
    }
  }
  return s
}

export interface DurationScore {
  /** Samples of reference AF, of AF called, and of both. */
  reference: number
  called: number
  both: number
}

export function scoreDuration(reference: ReadonlyArray<Interval>, called: ReadonlyArray<Interval>): DurationScore {
  return { reference: total(reference), called: total(called), both: overlap(reference, called) }
}

export interface EpisodeScore {
  /** Reference episodes, and of them found. */
  reference: number
  found: number
  /** Called episodes overlapping no reference episode. */
  falseCalls: number
}

/** `slack` samples either side of a reference episode still count as overlapping it (a run's first beat is classified a beat late). */
export function scoreEpisodes(reference: ReadonlyArray<Interval>, called: ReadonlyArray<Interval>, slack: number): EpisodeScore {
  const hits = (x: Interval, ys: ReadonlyArray<Interval>): boolean => {
    for (let j = 0; j < ys.length; j++) if (x.start < ys[j]!.end + slack && ys[j]!.start - slack < x.end) return true
    return false
  }
  let found = 0
  for (let i = 0; i < reference.length; i++) if (hits(reference[i]!, called)) found++
  let falseCalls = 0
  for (let i = 0; i < called.length; i++) if (!hits(called[i]!, reference)) falseCalls++
  return { reference: reference.length, found: found, falseCalls: falseCalls }
}

/**
 * A record's AF time and VT episodes against its annotations, as `mhealth ecg score --rhythm`
 * reports them. VT called inside a reference flutter/fibrillation episode is a ventricular
 * tachyarrhythmia called as one, not a false VT: left out, as those episodes are from beat
 * scoring. A VT overlapping a reference episode within 1 s of it counts as finding it.
 */
export function scoreRhythm(
  ann: ReadonlyArray<{ sample: number; code: number; aux: string }>,
  episodes: ReadonlyArray<{ start: number; end: number; label: string }>,
  end: number,
  fs: number,
): { af: DurationScore; vt: EpisodeScore } {
  const vf = vfEpisodes(ann, end)
  const af = scoreDuration(rhythmIntervals(ann, '(AFIB', end), episodes.filter((e) => e.label === 'AF'))
  const calledVt = episodes.filter((e) => e.label === 'VT' && !vf.some((v) => e.start < v[1] && v[0] < e.end))
  return { af, vt: scoreEpisodes(rhythmIntervals(ann, '(VT', end), calledVt, Math.round(fs)) }
}
