/**
 * A whole record through the gateway's streaming ECG chain in one pass
 * (EcgMonitor: QRS detection, heart rate, beat classes, rhythm), sample by
 * sample, collecting what each `mhealth ecg` command prints. Node side.
 */
import { EcgMonitor } from './ecg.ts'
import type { BeatClass } from './beat-class.ts'
import type { RhythmEpisode } from './rhythm.ts'

/** One displayed second: T (whole seconds), the rate in bpm or null (no number shown), quality 0..100. */
export interface HrSecond {
  t: number
  hr: number | null
  quality: number
}

export interface ChainOptions {
  bradyBpm?: number
  tachyBpm?: number
  minAfSeconds?: number
}

export interface ChainRun {
  /** R-peak sample indices, in order. */
  beats: number[]
  /** Each beat's class, in order (same beats, a beat later in the stream). */
  classes: Array<{ sample: number; cls: BeatClass }>
  /** Rhythm episodes, in order of their end. */
  episodes: RhythmEpisode[]
  /** The display once a second (T = 1, 2, ...). */
  hr: HrSecond[]
}

export function runChain(samples: ArrayLike<number>, fs: number, opts?: ChainOptions): ChainRun {
  const o = opts || {}
  const run: ChainRun = { beats: [], classes: [], episodes: [], hr: [] }
  const m = new EcgMonitor({
    fs,
    adcMin: -2147483648,
    adcMax: 2147483647,
    bradyBpm: o.bradyBpm,
    tachyBpm: o.tachyBpm,
    minAfSeconds: o.minAfSeconds,
    onBeat: (r) => run.beats.push(r),
    onBeatClass: (r, cls) => run.classes.push({ sample: r, cls }),
    onEpisode: (e) => run.episodes.push(e),
  })
  const per = Math.round(fs)
  for (let i = 0; i < samples.length; i++) {
    m.push(samples[i]!, false)
    if ((i + 1) % per === 0) {
      const hr = m.heartRate()
      run.hr.push({ t: (i + 1) / per, hr: hr === undefined ? null : hr, quality: m.quality() })
    }
  }
  m.finish()
  run.episodes.sort((a, b) => a.start - b.start || a.end - b.end)
  return run
}
