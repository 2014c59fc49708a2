/**
 * `mhealth ecg detect|score`: runs the board's streaming QRS detector over a
 * WFDB record and prints R-peak indices, or scores them against the record's
 * reference beats with the ANSI/AAMI EC57 150 ms match rule.
 */
import { group, print, type Command } from '../command.ts'
import { intOpt, numOpt, parseCli, stringOpt, choiceOpt } from '../args.ts'
import { CliError, UsageError } from '../errors.ts'

const recordHelp = '  --wfdb PATH/RECORD   WFDB record without extension (format 212 or 16; LF or CRLF header)'
const channelHelp = '  --channel N          signal number in the record (default 0)'

interface Loaded {
  name: string
  fs: number
  gain: number
  samples: Int16Array
}

async function load(path: string, channel: number): Promise<Loaded> {
  const { readRecord, WfdbError } = await import('../../datasets/wfdb.ts')
  try {
    const rec = readRecord(path)
    if (channel >= rec.nsig) throw new UsageError(`--channel must be below the record's ${rec.nsig} signal(s), got ${channel}`)
    return { name: rec.record, fs: rec.fs, gain: rec.signals[channel].gain, samples: rec.samples[channel] }
  } catch (err) {
    if (err instanceof WfdbError) throw new CliError(err.message)
    throw err
  }
}

async function detect(samples: Int16Array, fs: number): Promise<number[]> {
  const { QrsDetector } = await import('../../signal/qrs.ts')
  const out: number[] = []
  const d = new QrsDetector({ fs, onBeat: (r) => out.push(r) })
  for (let i = 0; i < samples.length; i++) d.push(samples[i])
  d.finish()
  return out
}

const detectCmd: Command = {
  name: 'detect',
  summary: 'print detected R-peak sample indices of a WFDB record, one per line',
  usage: ['Usage: mhealth ecg detect --wfdb PATH/RECORD [--channel N]', '', 'Prints R-peak sample indices at the record\'s own sample rate, one per line.', '', recordHelp, channelHelp].join('\n'),
  async run(argv, io) {
    const p = parseCli(argv, { wfdb: { type: 'string' }, channel: { type: 'string' } })
    const path = stringOpt(p, 'wfdb')
    if (!path) throw new UsageError('--wfdb is required')
    const rec = await load(path, intOpt(p, 'channel', 0, 0, 63))
    const beats = await detect(rec.samples, rec.fs)
    io.stdout.write(beats.length ? beats.join('\n') + '\n' : '')
    return 0
  },
}

const pct = (x: number): string => (Number.isNaN(x) ? '-' : (100 * x).toFixed(2) + '%')

const scoreCmd: Command = {
  name: 'score',
  summary: 'compare detections with the .atr reference beats (EC57, 150 ms): TP, FN, FP, Se, +P',
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
    })
    const paths = (p.values.wfdb as string[] | undefined) ?? []
    if (paths.length === 0) throw new UsageError('--wfdb is required')
    const channel = intOpt(p, 'channel', 0, 0, 63)
    const tolMs = numOpt(p, 'tolerance-ms', 150, 0, 1000)
    const snr = numOpt(p, 'snr', 6, -30, 60)
    const protocol = choiceOpt(p, 'protocol', ['nst', 'continuous'] as const, 'nst')
    const annotator = stringOpt(p, 'annotator') ?? 'atr'
    const noisePath = stringOpt(p, 'noise')
    const { readAnnotations, readRecord, BEAT_CODES, WfdbError } = await import('../../datasets/wfdb.ts')
    const { scoreBeats, vfEpisodes } = await import('../../signal/score.ts')
    let noise: { samples: Int16Array; gain: number } | undefined
    if (noisePath) {
      try {
        const nr = readRecord(noisePath)
        noise = { samples: nr.samples[Math.min(channel, nr.nsig - 1)], gain: nr.signals[Math.min(channel, nr.nsig - 1)].gain }
      } catch (err) {
        if (err instanceof WfdbError) throw new CliError(err.message)
        throw err
      }
    }
    const withHr = !!p.values.hr
    const { displayedHr, referenceHr, scoreHr, vfSeconds } = await import('../../signal/hr-series.ts')
    const rows: Array<{ record: string; tp: number; fn: number; fp: number; se: number; ppv: number; hr?: { seconds: number; shown: number; within: number } }> = []
    for (const path of paths) {
      const rec = await load(path, channel)
      let ref: number[]
      let vf: Array<[number, number]>
      try {
        const ann = readAnnotations(path, annotator)
        ref = ann.filter((a) => BEAT_CODES.has(a.code)).map((a) => a.sample)
        vf = vfEpisodes(ann, rec.samples.length)
      } catch (err) {
        if (err instanceof WfdbError) throw new CliError(err.message)
        throw err
      }
      let samples = rec.samples
      if (noise) {
        const { mixNoise } = await import('../../hardware-sim/signals/noise.ts')
        samples = mixNoise(samples, noise.samples, { fs: rec.fs, snrDb: snr, beats: ref, cleanGain: rec.gain, noiseGain: noise.gain, protocol }).samples
      }
      const det = await detect(samples, rec.fs)
      const s = scoreBeats(ref, det, { tolerance: Math.round((tolMs / 1000) * rec.fs), exclude: vf })
      const row: (typeof rows)[number] = { record: rec.name, tp: s.tp, fn: s.fn, fp: s.fp, se: s.se, ppv: s.ppv }
      if (withHr) {
        const shown = displayedHr(samples, rec.fs)
        row.hr = scoreHr(shown, referenceHr(ref, rec.fs, shown.length), { exclude: vfSeconds(vf, rec.fs) })
      }
      rows.push(row)
    }
    if (rows.length > 1) {
      const tp = rows.reduce((a, r) => a + r.tp, 0)
      const fn = rows.reduce((a, r) => a + r.fn, 0)
      const fp = rows.reduce((a, r) => a + r.fp, 0)
      const gross: (typeof rows)[number] = { record: 'gross', tp, fn, fp, se: tp / (tp + fn), ppv: tp / (tp + fp) }
      if (withHr) {
        const sum = (k: 'seconds' | 'shown' | 'within') => rows.reduce((a, r) => a + (r.hr ? r.hr[k] : 0), 0)
        gross.hr = { seconds: sum('seconds'), shown: sum('shown'), within: sum('within') }
      }
      rows.push(gross)
    }
    if (p.values.json) {
      print(io, JSON.stringify(rows.length === 1 ? rows[0] : rows))
      return 0
    }
    const lines = ['record    TP     FN     FP     Se        +P' + (withHr ? '    HR ok  HR shown' : '')]
    for (const r of rows) {
      const hr = r.hr ? `  ${pct(r.hr.within / r.hr.seconds).padStart(8)}  ${pct(r.hr.shown / r.hr.seconds).padStart(8)}` : ''
      lines.push(`${r.record.padEnd(8)}${String(r.tp).padStart(6)} ${String(r.fn).padStart(6)} ${String(r.fp).padStart(6)}  ${pct(r.se).padStart(8)}  ${pct(r.ppv).padStart(8)}${hr}`)
    }
    print(io, lines.join('\n'))
    return 0
  },
}

const hrCmd: Command = {
  name: 'hr',
  summary: 'print the heart rate a monitor shows, once a second: T HR QUALITY',
  usage: [
    'Usage: mhealth ecg hr --wfdb PATH/RECORD [--channel N]',
    '',
    'Feeds the record sample by sample through the gateway\'s streaming ECG monitor and prints',
    'one line per second of record time: T HR QUALITY. T is whole seconds from the start (the',
    'line shows what the monitor displays at T, every sample before it fed); HR is in bpm (the',
    'mean of the newest RR intervals spanning up to 10 s, 3 to 16 of them, one decimal), or -',
    'when a monitor shows no number (fewer than four beats since the start or since a gap in',
    'detection, no beat for 4 s, quality under 50, or a rate outside 20-300 bpm); QUALITY is',
    '0-100.',
    '',
    recordHelp,
    channelHelp,
  ].join('\n'),
  async run(argv, io) {
    const p = parseCli(argv, { wfdb: { type: 'string' }, channel: { type: 'string' } })
    const path = stringOpt(p, 'wfdb')
    if (!path) throw new UsageError('--wfdb is required')
    const rec = await load(path, intOpt(p, 'channel', 0, 0, 63))
    const { displayedHr } = await import('../../signal/hr-series.ts')
    const lines = displayedHr(rec.samples, rec.fs).map((s) => `${s.t} ${s.hr === null ? '-' : s.hr.toFixed(1)} ${s.quality}`)
    io.stdout.write(lines.length ? lines.join('\n') + '\n' : '')
    return 0
  },
}

export const command: Command = group('ecg', 'ECG beat detection and heart rate on WFDB records (the gateway\'s streaming code)', [detectCmd, hrCmd, scoreCmd])
