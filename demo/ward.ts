/**
 * The demo ward: eight simulated patients, each a virtual board running the real firmware
 * bundle with its own signal sources. A mix of synthetic (ECGSYN-like) and MIT-BIH replays,
 * one patient whose SpO2 falls, one in atrial fibrillation, one with ventricular ectopy.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { EcgSynth } from '../hardware-sim/signals/ecg-synth.ts'
import { MitdbReplay } from '../hardware-sim/signals/mitdb-replay.ts'
import { PpgModel } from '../hardware-sim/signals/ppg.ts'
import type { EcgSource, PpgSource } from '../hardware-sim/signals/types.ts'

export interface PatientScenario {
  name: string
  bed: string
  /** What a clinician would be told at handover (printed by the demo). */
  story: string
  profile: 'se' | 'bare'
  ecg(seed: number, mitdbDir: string | null): EcgSource
  ppg(seed: number): PpgSource
}

/**
 * A time function that starts counting at its first call: the board's clock (what sources
 * are asked at) does not start at zero on a restarted demo, the story should.
 */
function fromFirstCall(f: (sinceMs: number) => number): (tMs: number) => number {
  let t0: number | null = null
  return (tMs) => {
    if (t0 === null) t0 = tMs
    return f(tMs - t0)
  }
}

/** MIT-BIH replay when the shared data is present, else a synthetic rhythm of the same kind. */
function mitdbOr(record: string, fallback: ConstructorParameters<typeof EcgSynth>[0]) {
  return (seed: number, mitdbDir: string | null): EcgSource =>
    mitdbDir && existsSync(join(mitdbDir, `${record}.hea`))
      ? new MitdbReplay({ record: join(mitdbDir, record), scale: 0.7 })
      : new EcgSynth({ ...fallback, seed })
}

const steady = (spo2: number, bpm: number) => (seed: number): PpgSource => new PpgModel({ seed, spo2, bpm })

export const WARD: PatientScenario[] = [
  { name: 'Ada Lovelace', bed: 'Bed 1', story: 'sinus rhythm, 72 bpm, SpO2 98 %', profile: 'se',
    ecg: (seed) => new EcgSynth({ seed, heartRateBpm: 72 }), ppg: steady(98, 72) },
  { name: 'Ben Okafor', bed: 'Bed 2', story: 'MIT-BIH record 100 (normal sinus rhythm, occasional APC)', profile: 'se',
    ecg: mitdbOr('100', { heartRateBpm: 75 }), ppg: steady(97, 75) },
  { name: 'Cleo Marsh', bed: 'Bed 3', story: 'SpO2 falling from 97 % to 84 % over four minutes (alarm below 90 %)', profile: 'se',
    ecg: (seed) => new EcgSynth({ seed, heartRateBpm: 88 }),
    ppg: (seed) => new PpgModel({ seed, bpm: 88, spo2: fromFirstCall((ms) => Math.max(84, 97 - (13 * ms) / 240_000)) }) },
  { name: 'Dev Patel', bed: 'Bed 4', story: 'atrial fibrillation: irregularly irregular rhythm, no P waves', profile: 'bare',
    ecg: (seed) => new EcgSynth({ seed, heartRateBpm: 105, af: true }), ppg: steady(95, 105) },
  { name: 'Eve Santos', bed: 'Bed 5', story: 'MIT-BIH record 103 (sinus rhythm)', profile: 'bare',
    ecg: mitdbOr('103', { heartRateBpm: 70 }), ppg: steady(96, 70) },
  { name: 'Finn Berg', bed: 'Bed 6', story: 'sinus bradycardia, 56 bpm', profile: 'se',
    ecg: (seed) => new EcgSynth({ seed, heartRateBpm: 56, hrvStdBpm: 1 }), ppg: steady(96, 56) },
  { name: 'Gus Moreau', bed: 'Bed 7', story: 'MIT-BIH record 105 (ventricular ectopy, noisy lead)', profile: 'se',
    ecg: mitdbOr('105', { heartRateBpm: 80, pvcRate: 0.1 }), ppg: steady(95, 80) },
  { name: 'Hana Sato', bed: 'Bed 8', story: 'sinus tachycardia, 112 bpm', profile: 'bare',
    ecg: (seed) => new EcgSynth({ seed, heartRateBpm: 112 }), ppg: steady(97, 112) },
]
