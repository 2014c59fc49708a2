/**
 * One simulated patient: the ECG and PPG sources a fleet board's sensors read, built from
 * a small declarative scenario (heart rate, SpO2 trajectory, arrhythmia, lead-off...).
 * Everything is deterministic given the seed. Times in a scenario are seconds of board time
 * since the fleet started (`t0Ms` maps them onto the board's own virtual clock).
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { EcgSynth } from '../signals/ecg-synth.ts'
import { MitdbReplay } from '../signals/mitdb-replay.ts'
import { Ec13Source, EC13_INFO, EC13_WAVEFORMS, parseEc13, type Ec13Waveform } from '../signals/ec13.ts'
import { PpgModel } from '../signals/ppg.ts'
import type { EcgSource, PpgSource } from '../signals/types.ts'

/**
 * `synthetic` (ECGSYN-like model), `mitdb:RECORD` (a MIT-BIH record replayed from its start, looping)
 * or `ec13:NAME` (an ANSI/AAMI EC13 test waveform, ../signals/ec13.ts: 3a, 3b, 3c, 3d, tall-t, step-120, step-40).
 */
export type SourceSpec = string

export interface PatientScenario {
  /** ECG source; default the fleet's. */
  source?: SourceSpec
  /** Mean heart rate, bpm (synthetic ECG and the PPG pulse); default 60..90 from the seed. */
  heartRateBpm?: number
  /** Constant SpO2 (%); default 97..99 from the seed. */
  spo2?: number
  /** SpO2 over time: [seconds, percent] points, linear in between, held after the last (e.g. [[0,97],[60,85]]). */
  spo2Trajectory?: Array<[number, number]>
  /** Synthetic ECG rhythm: 'af' (irregularly irregular, no P waves) or 'pvc' (10 % ventricular ectopics), or a PVC fraction. */
  arrhythmia?: 'af' | 'pvc' | { pvcRate: number }
  /** Electrodes off during these [fromS, toS) intervals. */
  leadOff?: Array<[number, number]>
  /** Finger off the pulse oximeter during these [fromS, toS) intervals. */
  fingerOff?: Array<[number, number]>
  /** IR perfusion index (default 0.02). */
  perfusionIndex?: number
}

export class ScenarioError extends Error {
  override name = 'ScenarioError'
}

/** Piecewise-linear SpO2 in percent at board time t (ms since t0). */
export function trajectoryAt(points: Array<[number, number]>, tS: number): number {
  if (points.length === 0) throw new ScenarioError('spo2Trajectory: expected at least one [seconds, percent] point')
  if (tS <= points[0]![0]) return points[0]![1]
  for (let i = 1; i < points.length; i++) {
    const [t1, v1] = points[i]!
    const [t0, v0] = points[i - 1]!
    if (tS <= t1) return t1 === t0 ? v1 : v0 + ((v1 - v0) * (tS - t0)) / (t1 - t0)
  }
  return points[points.length - 1]![1]
}

/** Checks a scenario read from a file or the command line; throws ScenarioError naming the field. */
export function validateScenario(s: unknown, where = 'scenario'): PatientScenario {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new ScenarioError(`${where}: expected an object, got ${JSON.stringify(s)}`)
  const o = s as Record<string, unknown>
  const known = ['source', 'heartRateBpm', 'spo2', 'spo2Trajectory', 'arrhythmia', 'leadOff', 'fingerOff', 'perfusionIndex']
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new ScenarioError(`${where}: unknown field '${k}' (expected one of ${known.join(', ')})`)
  const num = (k: string, lo: number, hi: number) => {
    if (o[k] === undefined) return
    if (typeof o[k] !== 'number' || !(o[k]! as number >= lo && (o[k] as number) <= hi)) throw new ScenarioError(`${where}.${k}: expected a number in ${lo}..${hi}, got ${JSON.stringify(o[k])}`)
  }
  num('heartRateBpm', 20, 250)
  num('spo2', 50, 100)
  num('perfusionIndex', 0.001, 0.2)
  if (o.source !== undefined) parseSource(o.source as string)
  const pairs = (k: string, lo: number, hi: number) => {
    const v = o[k]
    if (v === undefined) return
    if (!Array.isArray(v) || !v.every((p) => Array.isArray(p) && p.length === 2 && p.every((x) => typeof x === 'number' && Number.isFinite(x))))
      throw new ScenarioError(`${where}.${k}: expected [[a, b], ...] number pairs, got ${JSON.stringify(v)}`)
    for (const p of v as number[][]) if (p[1]! < lo || p[1]! > hi) throw new ScenarioError(`${where}.${k}: value ${p[1]} outside ${lo}..${hi}`)
  }
  pairs('spo2Trajectory', 50, 100)
  pairs('leadOff', 0, Infinity)
  pairs('fingerOff', 0, Infinity)
  const a = o.arrhythmia
  if (a !== undefined && a !== 'af' && a !== 'pvc' && !(typeof a === 'object' && a !== null && typeof (a as { pvcRate?: unknown }).pvcRate === 'number'))
    throw new ScenarioError(`${where}.arrhythmia: expected 'af', 'pvc' or {"pvcRate": 0..1}, got ${JSON.stringify(a)}`)
  return o as PatientScenario
}

/** Parses a source spec; throws ScenarioError. */
export function parseSource(spec: string): { kind: 'synthetic' } | { kind: 'mitdb'; record: string } | { kind: 'ec13'; waveform: Ec13Waveform } {
  if (spec === 'synthetic') return { kind: 'synthetic' }
  const m = /^mitdb:([A-Za-z0-9_-]+)$/.exec(String(spec))
  if (m) return { kind: 'mitdb', record: m[1]! }
  const w = parseEc13(String(spec))
  if (w) return { kind: 'ec13', waveform: w }
  throw new ScenarioError(`source: expected synthetic or mitdb:RECORD or ec13:NAME (${EC13_WAVEFORMS.join(', ')}), got ${JSON.stringify(spec)}`)
}

/**
 * An ECG source whose lead-off can also be forced from outside (the lead-off fault), on
 * top of the scenario's own intervals.
 */
export class FaultableEcg implements EcgSource {
  private forced: Array<[number, number]> = []
  constructor(private readonly inner: EcgSource) {}
  mv(tMs: number): number {
    return this.inner.mv(tMs)
  }
  leadOff(tMs: number): boolean {
    for (const [a, b] of this.forced) if (tMs >= a && tMs < b) return true
    return this.inner.leadOff(tMs)
  }
  /** Electrodes off in [fromMs, toMs) of board time. */
  forceLeadOff(fromMs: number, toMs: number): void {
    this.forced.push([fromMs, toMs])
  }
}

export interface PatientSources {
  ecg: FaultableEcg
  ppg: PpgSource
  /** What the scenario resolved to (reported in devices.json and progress). */
  summary: { source: string; heartRateBpm: number; spo2: string; arrhythmia?: string }
}

/** The MIT-BIH directory in the shared data set (`../shared/data/ecg/mitdb` beside the checkout). */
export function defaultMitdbDir(): string {
  const here = new URL('.', import.meta.url).pathname
  for (let d = here; d !== '/'; d = join(d, '..')) {
    const c = join(d, 'shared', 'data', 'ecg', 'mitdb')
    if (existsSync(c)) return c
    if (join(d, '..') === d) break
  }
  return join(here, '..', '..', '..', 'shared', 'data', 'ecg', 'mitdb')
}

/**
 * Builds the sources of one patient. `t0Ms` is the board time at which the scenario's
 * second 0 falls; `seed` varies the defaults (rate, SpO2) and the models' noise.
 */
export function patientSources(s: PatientScenario, o: { seed: number; t0Ms: number; fleetSource: SourceSpec; mitdbDir?: string }): PatientSources {
  const seed = o.seed >>> 0
  const jitter = (k: number) => ((Math.imul(seed ^ k, 2654435761) >>> 0) % 1000) / 1000
  const spec = parseSource(s.source ?? o.fleetSource)
  // An EC13 waveform fixes the ECG's rate: the pulse follows it unless the scenario says otherwise.
  const hr = s.heartRateBpm ?? (spec.kind === 'ec13' ? EC13_INFO[spec.waveform].expectedBpm : Math.round(60 + 30 * jitter(1)))
  const ms = (iv: Array<[number, number]> | undefined) => (iv ?? []).map(([a, b]) => [o.t0Ms + a * 1000, o.t0Ms + b * 1000] as [number, number])
  let inner: EcgSource
  let arrhythmia: string | undefined
  if (spec.kind === 'synthetic') {
    const a = s.arrhythmia
    const pvcRate = a === 'pvc' ? 0.1 : typeof a === 'object' ? a.pvcRate : 0
    arrhythmia = a === 'af' ? 'af' : pvcRate > 0 ? `pvc ${pvcRate}` : undefined
    inner = new EcgSynth({ seed: seed * 7 + 9, heartRateBpm: hr, af: a === 'af', pvcRate, leadOff: ms(s.leadOff) })
  } else if (spec.kind === 'ec13') {
    inner = new Ec13Source(spec.waveform, { leadOff: ms(s.leadOff) })
    arrhythmia = `ec13:${spec.waveform}`
  } else {
    const path = join(o.mitdbDir ?? defaultMitdbDir(), spec.record)
    if (!existsSync(path + '.hea')) throw new ScenarioError(`source mitdb:${spec.record}: no record at ${path}.hea`)
    // 0.7: MIT-BIH R waves reach 2-3 mV; keep them inside the AD8232's output swing.
    inner = new MitdbReplay({ record: path, scale: 0.7, leadOff: ms(s.leadOff) })
    arrhythmia = `mitdb:${spec.record}`
  }
  const traj = s.spo2Trajectory
  const spo2Const = s.spo2 ?? Math.round(97 + 2 * jitter(2))
  const spo2 = traj ? (tMs: number) => trajectoryAt(traj, (tMs - o.t0Ms) / 1000) : spo2Const
  const ppg = new PpgModel({ seed: seed * 7 + 11, spo2, bpm: hr, perfusionIndex: s.perfusionIndex, fingerOff: ms(s.fingerOff) })
  return {
    ecg: new FaultableEcg(inner),
    ppg,
    summary: { source: spec.kind === 'synthetic' ? 'synthetic' : spec.kind === 'ec13' ? `ec13:${spec.waveform}` : `mitdb:${spec.record}`, heartRateBpm: hr, spo2: traj ? traj.map((p) => `${p[1]}%@${p[0]}s`).join('→') : `${spo2Const}%`, arrhythmia },
  }
}
