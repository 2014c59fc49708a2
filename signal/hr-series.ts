/**
 * Heart rate second by second, as a monitor displays it and as the reference annotations give
 * it, and the EC13-style comparison of the two (ANSI/AAMI EC13: a displayed rate within
 * max(5 bpm, 10 %) of the true rate). Node side: used by `mhealth ecg hr` and `ecg score --hr`;
 * the displayed rate itself is EcgMonitor's, the streaming code the gateway runs.
 */
import { displayedRr, RR_KEEP } from './ecg.ts'
import { runChain, type HrSecond } from './record-run.ts'
import { inIntervals } from './score.ts'

export type { HrSecond } from './record-run.ts'

/**
 * Feeds `samples` (a record's raw ADC values) through an EcgMonitor and reads its display once
 * a second: line T is what it shows at time T s (every sample before T x fs pushed), T = 1, 2...
 */
export function displayedHr(samples: ArrayLike<number>, fs: number): HrSecond[] {
  return runChain(samples, fs).hr
}

/**
 * The reference rate at whole seconds from the annotated beats, averaged as the display averages
 * (displayedRr); null where no rate exists (fewer than two beats before T, or none for 3 s).
 */
export function referenceHr(beats: ArrayLike<number>, fs: number, seconds: number): Array<number | null> {
  const out: Array<number | null> = []
  let j = 0
  for (let t = 1; t <= seconds; t++) {
    const at = t * fs
    while (j < beats.length && beats[j]! < at) j++
    // beats[0..j-1] are before time t
    if (j < 2 || at - beats[j - 1]! > 3 * fs) {
      out.push(null)
      continue
    }
    const newest = j - 1
    out.push((60 * fs) / displayedRr(Math.min(RR_KEEP, newest), (i) => beats[newest - i + 1]! - beats[newest - i]!, fs))
  }
  return out
}

/**
 * VF episodes (sample intervals) as the seconds HR scoring leaves out: the episode, and the 8 s
 * after it while the display's average still holds its intervals.
 */
export function vfSeconds(vf: ReadonlyArray<readonly [number, number]>, fs: number): Array<[number, number]> {
  return vf.map((e) => [Math.floor(e[0] / fs), Math.ceil(e[1] / fs) + 8] as [number, number])
}

export interface HrScore {
  /** Seconds with a reference rate (after the first `skip`, outside excluded intervals). */
  seconds: number
  /** ...of which the monitor showed a number. */
  shown: number
  /** ...and it was within max(5 bpm, 10 %) of the reference. */
  within: number
}

/** EC13's tolerance, second by second; `exclude`: [from, to) second intervals left out (VF episodes). */
export function scoreHr(shown: ReadonlyArray<HrSecond>, reference: ReadonlyArray<number | null>, opts: { skip?: number; exclude?: ReadonlyArray<readonly [number, number]> } = {}): HrScore {
  const skip = opts.skip === undefined ? 10 : opts.skip
  let seconds = 0
  let nShown = 0
  let within = 0
  for (let i = 0; i < shown.length; i++) {
    const s = shown[i]!
    if (s.t <= skip) continue
    const ref = reference[s.t - 1]
    if (ref === null || ref === undefined) continue
    if (opts.exclude && inIntervals(s.t, opts.exclude)) continue
    seconds++
    if (s.hr === null) continue
    nShown++
    if (Math.abs(s.hr - ref) <= Math.max(5, 0.1 * ref)) within++
  }
  return { seconds: seconds, shown: nShown, within: within }
}
