/**
 * `mhealth ecg score`: runs each record through the gateway's streaming ECG
 * chain and scores it against the record's reference annotations: QRS
 * detection beat by beat (EC57, 150 ms), and on request the displayed heart
 * rate second by second (EC13 tolerance), the beat classes (EC57 VEB and
 * SVEB), AF time and VT episodes. With several records, also the gross totals.
 */
import { print, type Command } from '../command.ts'
import { numOpt, parseCli, stringOpt, choiceOpt } from '../args.ts'
import { CliError, UsageError } from '../errors.ts'
import { channelHelp, channelOpt, load, recordHelp } from './ecg-record.ts'

const pct = (x: number): string => (Number.isNaN(x) ? '-' : (100 * x).toFixed(2) + '%')
const ratio = (a: number, b: number): number => (b > 0 ? a / b : NaN)

interface Row {
  record: string
  tp: number
  fn: number
  fp: number
  se: number
  ppv: number
  hr?: { seconds: number; shown: number; within: number }
  classes?: { veb: { tp: number; fn: number; fp: number; se: number; ppv: number }; sveb: { tp: number; fn: number; fp: number; se: number; ppv: number } }
  rhythm?: { afSeconds: number; afCalledSeconds: number; afBothSeconds: number; afSe: number; afPpv: number; vtEpisodes: number; vtFound: number; vtFalse: number; hours: number }
}

export const scoreCmd: Command = {
  name: 'score',
  summary: 'score the chain against the .atr reference: QRS (TP FN FP Se +P), and --hr, --classes, --rhythm',
  usage: [
    'Usage: mhealth ecg score --wfdb PATH/RECORD [--wfdb PATH/RECORD2 ...] [options]',
    '',
    'Detects beats and matches them with the reference annotations (beat codes only;',
    'rhythm, noise and comment annotations are ignored). Ventricular flutter and',
    'fibrillation episodes (VFON [ to VFOFF ]) are left out, references and detections',
    'alike, as EC57 and WFDB bxb do. With several records, also prints the gross totals.',
    '',
    recordHelp + ' (repeatable)',
    channelHelp,
    '  --annotator NAME     reference annotation file extension (default atr)',
    '  --tolerance-ms MS    match window either side (default 150)',
    '  --noise PATH/RECORD  add an NSTDB noise record (e.g. nstdb/ma) before detecting',
    '  --snr DB             noise level as signal-to-noise ratio in dB (default 6)',
    '  --protocol P         nst (5 min clean, then 2 min noisy/clean; default) or continuous',
    '  --hr                 also score the heart rate shown each second (ecg hr) against the',
    '                       reference beats averaged the same way: HR ok = seconds within',
    '                       max(5 bpm, 10 %) (ANSI/AAMI EC13), HR shown = seconds with a number,',
    '                       both over the seconds with a reference rate, after the first 10 s',
    '  --classes            also score beat classes (ecg detect --classes) per EC57: VEB and',
    '                       SVEB Se and +P over the matched beats (Q reference beats left out;',
    '                       a missed beat counts against its class; F called V is no false VEB)',
    '  --rhythm             also score rhythm (ecg rhythm) against the reference rhythm',
    '                       annotations: AF Se/+P by time ("(AFIB" episodes), VT episodes found',
    '                       ("(VT") and false VT episodes (VT called inside a reference',
    '                       flutter/fibrillation episode is not counted either way)',
    '  --all                all of --hr, --classes and --rhythm',
    '  --json               print JSON instead of a table',
  ].join('\n'),
  async run(argv, io) {
    const p = parseCli(argv, {
      wfdb: { type: 'string', multiple: true },
      channel: { type: 'string' },
      annotator: { type: 'string' },
      'tolerance-ms': { type: 'string' },
      noise: { type: 'string' },
      snr: { type: 'string' },
      protocol: { type: 'string' },
      json: { type: 'boolean' },
      hr: { type: 'boolean' },
      classes: { type: 'boolean' },
      rhythm: { type: 'boolean' },
      all: { type: 'boolean' },
    })
    const paths = (p.values.wfdb as string[] | undefined) ?? []
    if (paths.length === 0) throw new UsageError('--wfdb is required')
    const channel = channelOpt(p)
    const tolMs = numOpt(p, 'tolerance-ms', 150, 0, 1000)
    const snr = numOpt(p, 'snr', 6, -30, 60)
    const protocol = choiceOpt(p, 'protocol', ['nst', 'continuous'] as const, 'nst')
    const annotator = stringOpt(p, 'annotator') ?? 'atr'
    const noisePath = stringOpt(p, 'noise')
    const withHr = !!p.values.hr || !!p.values.all
    const withClasses = !!p.values.classes || !!p.values.all
    const withRhythm = !!p.values.rhythm || !!p.values.all
    const { readAnnotations, readRecord, BEAT_CODES, WfdbError } = await import('../../datasets/wfdb.ts')
    const { aamiClass } = await import('../../datasets/aami.ts')
    const { scoreBeats, vfEpisodes } = await import('../../signal/score.ts')
    const { referenceHr, scoreHr, vfSeconds } = await import('../../signal/hr-series.ts')
    const { scoreClasses } = await import('../../signal/score-classes.ts')
    const { scoreRhythm } = await import('../../signal/score-rhythm.ts')
    const { runChain } = await import('../../signal/record-run.ts')
    let noise: { samples: Int16Array; gain: number } | undefined
    if (noisePath) {
      try {
        const nr = readRecord(noisePath)
        const c = Math.min(channel ?? 0, nr.nsig - 1)
        noise = { samples: nr.samples[c]!, gain: nr.signals[c]!.gain }
      } catch (err) {
        if (err instanceof WfdbError) throw new CliError(err.message)
        throw err
      }
    }
    const rows: Row[] = []
    for (const path of paths) {
      const rec = await load(path, channel)
      let ann: ReturnType<typeof readAnnotations>
      try {
        ann = readAnnotations(path, annotator)
      } catch (err) {
        if (err instanceof WfdbError) throw new CliError(err.message)
        throw err
      }
      const ref = ann.filter((a) => BEAT_CODES.has(a.code)).map((a) => a.sample)
      const vf = vfEpisodes(ann, rec.samples.length)
      let samples = rec.samples
      if (noise) {
        const { mixNoise } = await import('../../hardware-sim/signals/noise.ts')
        samples = mixNoise(samples, noise.samples, { fs: rec.fs, snrDb: snr, beats: ref, cleanGain: rec.gain, noiseGain: noise.gain, protocol }).samples
      }
      const run = runChain(samples, rec.fs)
      const tol = Math.round((tolMs / 1000) * rec.fs)
      const s = scoreBeats(ref, run.beats, { tolerance: tol, exclude: vf })
      const row: Row = { record: rec.name, tp: s.tp, fn: s.fn, fp: s.fp, se: s.se, ppv: s.ppv }
      if (withHr) row.hr = scoreHr(run.hr, referenceHr(ref, rec.fs, run.hr.length), { exclude: vfSeconds(vf, rec.fs) })
      if (withClasses) {
        const refClasses = ann.filter((a) => aamiClass(a.code) !== undefined).map((a) => ({ sample: a.sample, cls: aamiClass(a.code)! }))
        const c = scoreClasses(refClasses, run.classes, tol, vf)
        row.classes = { veb: c.veb, sveb: c.sveb }
      }
      if (withRhythm) {
        const end = samples.length
        const { af, vt } = scoreRhythm(ann, run.episodes, end, rec.fs)
        row.rhythm = {
          afSeconds: af.reference / rec.fs, afCalledSeconds: af.called / rec.fs, afBothSeconds: af.both / rec.fs,
          afSe: ratio(af.both, af.reference), afPpv: ratio(af.both, af.called),
          vtEpisodes: vt.reference, vtFound: vt.found, vtFalse: vt.falseCalls, hours: end / rec.fs / 3600,
        }
      }
      rows.push(row)
    }
    if (rows.length > 1) rows.push(gross(rows))
    if (p.values.json) {
      print(io, JSON.stringify(rows.length === 1 ? rows[0] : rows))
      return 0
    }
    print(io, table(rows, withHr, withClasses, withRhythm))
    return 0
  },
}

function gross(rows: Row[]): Row {
  const sum = (f: (r: Row) => number) => rows.reduce((a, r) => a + f(r), 0)
  const tp = sum((r) => r.tp), fn = sum((r) => r.fn), fp = sum((r) => r.fp)
  const g: Row = { record: 'gross', tp, fn, fp, se: ratio(tp, tp + fn), ppv: ratio(tp, tp + fp) }
  if (rows[0]!.hr) g.hr = { seconds: sum((r) => r.hr!.seconds), shown: sum((r) => r.hr!.shown), within: sum((r) => r.hr!.within) }
  if (rows[0]!.classes) {
    const part = (k: 'veb' | 'sveb') => {
      const a = sum((r) => r.classes![k].tp), b = sum((r) => r.classes![k].fn), c = sum((r) => r.classes![k].fp)
      return { tp: a, fn: b, fp: c, se: ratio(a, a + b), ppv: ratio(a, a + c) }
    }
    g.classes = { veb: part('veb'), sveb: part('sveb') }
  }
  if (rows[0]!.rhythm) {
    const ref = sum((r) => r.rhythm!.afSeconds), called = sum((r) => r.rhythm!.afCalledSeconds), both = sum((r) => r.rhythm!.afBothSeconds)
    g.rhythm = {
      afSeconds: ref, afCalledSeconds: called, afBothSeconds: both, afSe: ratio(both, ref), afPpv: ratio(both, called),
      vtEpisodes: sum((r) => r.rhythm!.vtEpisodes), vtFound: sum((r) => r.rhythm!.vtFound), vtFalse: sum((r) => r.rhythm!.vtFalse), hours: sum((r) => r.rhythm!.hours),
    }
  }
  return g
}

function table(rows: Row[], hr: boolean, classes: boolean, rhythm: boolean): string {
  const head = ['record    TP     FN     FP     Se        +P']
  if (hr) head.push('    HR ok  HR shown')
  if (classes) head.push('   VEB Se   VEB +P  SVEB Se  SVEB +P')
  if (rhythm) head.push('    AF Se    AF +P  VT found  VT false')
  const lines = [head.join('')]
  for (const r of rows) {
    let l = `${r.record.padEnd(8)}${String(r.tp).padStart(6)} ${String(r.fn).padStart(6)} ${String(r.fp).padStart(6)}  ${pct(r.se).padStart(8)}  ${pct(r.ppv).padStart(8)}`
    if (r.hr) l += `  ${pct(r.hr.within / r.hr.seconds).padStart(8)}  ${pct(r.hr.shown / r.hr.seconds).padStart(8)}`
    if (r.classes) l += ` ${pct(r.classes.veb.se).padStart(8)} ${pct(r.classes.veb.ppv).padStart(8)} ${pct(r.classes.sveb.se).padStart(8)} ${pct(r.classes.sveb.ppv).padStart(8)}`
    if (r.rhythm) l += ` ${pct(r.rhythm.afSe).padStart(8)} ${pct(r.rhythm.afPpv).padStart(8)} ${`${r.rhythm.vtFound}/${r.rhythm.vtEpisodes}`.padStart(9)} ${String(r.rhythm.vtFalse).padStart(9)}`
    lines.push(l)
  }
  return lines.join('\n')
}
