/**
 * False asystole, VT and VF alarms per hour on the MIT-BIH Arrhythmia Database records,
 * through the real chain and the real alarm engine: each record is fed to the gateway's
 * EcgMonitor one second at a time (as dashboard/vitals.ts feeds it a board's 1-second
 * frames; same monitor settings as signal/record-run.ts runChain), its rhythm call and rate
 * at the end of each second go to the AlarmEngine as a frame's findings, and every alarm
 * start is checked against the record's reference rhythm annotations.
 *
 * An alarm is true when the reference has that rhythm within the 10 s before its start
 * (VT: '(VT'; VF: '(VFL' / '(VF' or the '[' ']' flutter markers; asystole: '(ASYS', which
 * MIT-BIH never annotates, so every asystole alarm there is false); otherwise false.
 *
 *   npx tsx scripts/alarm-false-rates.ts [DIR]     (default /work/shared/data/ecg/mitdb)
 *
 * Prints a table per VT condition delay (0, 2 and 5 s; the engine's default is 2 s).
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { readRecord, readAnnotations, ecgChannel } from '../datasets/wfdb.ts'
import { EcgMonitor } from '../signal/ecg.ts'
import { rhythmIntervals } from '../signal/score-rhythm.ts'
import { vfEpisodes } from '../signal/score.ts'
import { AlarmEngine } from '../dashboard/alarm-engine.ts'
import type { FrameVitals } from '../dashboard/vitals.ts'

const dir = process.argv[2] ?? '/work/shared/data/ecg/mitdb'
const WATCHED = ['asystole', 'vt', 'vf'] as const
type Watched = (typeof WATCHED)[number]

interface Second {
  rhythm: string
  hr: number | undefined
  quality: number
}

interface RecordRun {
  name: string
  seconds: Second[]
  fs: number
  /** Reference intervals per watched condition, in samples. */
  ref: Record<Watched, Array<[number, number]>>
}

function chain(path: string): RecordRun {
  const rec = readRecord(path)
  const c = ecgChannel(rec)
  const x = rec.samples[c]!
  const fs = rec.fs
  const m = new EcgMonitor({ fs, adcMin: -2147483648, adcMax: 2147483647 })
  const per = Math.round(fs)
  const seconds: Second[] = []
  for (let i = 0; i < x.length; i++) {
    m.push(x[i]!, false)
    if ((i + 1) % per === 0) seconds.push({ rhythm: m.rhythmLabel(), hr: m.heartRate(), quality: m.quality() })
  }
  const ann = readAnnotations(path)
  const end = x.length
  const iv = (label: string): Array<[number, number]> => rhythmIntervals(ann, label, end).map((r) => [r.start, r.end] as [number, number])
  return {
    name: rec.record,
    seconds,
    fs,
    ref: { asystole: iv('(ASYS'), vt: iv('(VT'), vf: [...iv('(VFL'), ...iv('(VF'), ...vfEpisodes(ann, end)] },
  }
}

function alarms(r: RecordRun, vtDelayMs: number): { cond: Watched; t: number; truth: boolean }[] {
  const e = new AlarmEngine({ delayMs: { vt: vtDelayMs } })
  const out: { cond: Watched; t: number; truth: boolean }[] = []
  r.seconds.forEach((s, i) => {
    const t = (i + 1) * 1000
    // As vitals.ts: findings once the monitor has judged something (a rate shown or a rhythm called).
    const v: FrameVitals = {}
    if (s.hr !== undefined) v.hr = { value: s.hr, quality: s.quality, source: 'gateway' }
    if (s.rhythm !== '' || s.hr !== undefined) v.ecg = { rhythm: s.rhythm === '' ? null : (s.rhythm as never), pvcPerMin: 0, windowS: 60, quality: s.quality, at: t }
    for (const c of e.frame(t, { deviceId: r.name, patientId: r.name, vitals: v, flags: 0 })) {
      if (c.event.e !== 'start' || !(WATCHED as readonly string[]).includes(c.alarm.condition)) continue
      const cond = c.alarm.condition as Watched
      const hi = Math.round((t / 1000) * r.fs)
      const lo = hi - 10 * r.fs
      out.push({ cond, t, truth: r.ref[cond].some(([a, b]) => a < hi && b > lo) })
    }
  })
  return out
}

const names = [...new Set(readdirSync(dir).filter((f) => f.endsWith('.hea')).map((f) => f.slice(0, -4)))].sort()
const runs: RecordRun[] = []
for (const n of names) {
  try {
    runs.push(chain(join(dir, n)))
  } catch (err) {
    console.error(`${n}: skipped (${(err as Error).message})`)
  }
}
const hours = runs.reduce((a, r) => a + r.seconds.length, 0) / 3600
console.log(`${runs.length} records, ${hours.toFixed(2)} h of ECG (${dir})`)
for (const vtDelay of [0, 2000, 5000]) {
  const all = runs.flatMap((r) => alarms(r, vtDelay).map((a) => ({ ...a, record: r.name })))
  console.log(`\nVT condition delay ${vtDelay / 1000} s${vtDelay === 2000 ? ' (the default)' : ''}`)
  console.log('condition  alarms  true  false  false/h  ref episodes alarmed  records with false alarms')
  for (const c of WATCHED) {
    const a = all.filter((x) => x.cond === c)
    const f = a.filter((x) => !x.truth)
    const recs = [...new Set(f.map((x) => x.record))]
    // Reference episodes with an alarm starting inside them or within 10 s after their end.
    let eps = 0
    let hit = 0
    for (const r of runs) {
      for (const [lo, hi] of r.ref[c]) {
        eps++
        if (all.some((x) => x.record === r.name && x.cond === c && x.t / 1000 * r.fs >= lo && x.t / 1000 * r.fs < hi + 10 * r.fs)) hit++
      }
    }
    console.log(`${c.padEnd(9)}  ${String(a.length).padStart(6)}  ${String(a.length - f.length).padStart(4)}  ${String(f.length).padStart(5)}  ${(f.length / hours).toFixed(2).padStart(7)}  ${`${hit}/${eps}`.padStart(20)}  ${recs.join(' ') || '-'}`)
  }
}
