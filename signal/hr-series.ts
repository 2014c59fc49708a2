/**
 * Heart rate second by second, as a monitor displays it and as the reference annotations give
 * it, and the EC13-style comparison of the two (ANSI/AAMI EC13: a displayed rate within
 * max(5 bpm, 10 %) of the true rate). Node side: used by `mhealth ecg hr` and `ecg score --hr`;
 * the displayed rate itself is EcgMonitor's, the streaming code the gateway runs.
 */
import { EcgMonitor, displayedRr, RR_KEEP } from './ecg.ts'

/** One displayed second: T (whole seconds), the rate in bpm or null (no number shown), quality 0..100. */
export interface HrSecond {
  t: number
  hr: number | null
  quality: number
}

/**
 * Feeds `samples` (a record's raw ADC values) through an EcgMonitor and reads its display once
 * a second: line T is what it shows at time T s (every sample before T x fs pushed), T = 1, 2...
 */
export function displayedHr(samples: ArrayLike<number>, fs: number): HrSecond[] {
  const m = new EcgMonitor({ fs, adcMin: -2147483648, adcMax: 2147483647 })
  const out: HrSecond[] = []
  const per = Math.round(fs)
  for (let i = 0; i < samples.length; i++) {
    m.push(samples[i]!, false)
    if ((i + 1) % per === 0) {
      const hr = m.heartRate()
      out.push({ t: (i + 1) / per, hr: hr === undefined ? null : hr, quality: m.quality() })
    }
  }
  return out
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
  return vf.map(([a, b]) => [Math.floor(a / fs), Math.ceil(b / fs) + 8] as [number, number])
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
  for (const s of shown) {
    if (s.t <= skip) continue
    const ref = reference[s.t - 1]
    if (ref === null || ref === undefined) continue
    let out = false
    if (opts.exclude) for (const [a, b] of opts.exclude) if (s.t >= a && s.t < b) out = true
    if (out) continue
    seconds++
    if (s.hr === null) continue
    nShown++
    if (Math.abs(s.hr - ref) <= Math.max(5, 0.1 * ref)) within++
  }
  return { seconds: seconds, shown: nShown, within: within }
}
