/**
 * `mhealth ecg detect|hr|rhythm|score`: a WFDB record fed sample by sample
 * through the gateway's streaming ECG chain (signal/ecg.ts: QRS detection,
 * heart rate, beat classes, rhythm), printing what it found, or scoring it
 * against the record's reference annotations (ecg-score.ts).
 */
import { group, type Command } from '../command.ts'
import { numOpt, parseCli, stringOpt } from '../args.ts'
import { UsageError } from '../errors.ts'
import { scoreCmd } from './ecg-score.ts'
import { channelHelp, channelOpt, load, recordHelp } from './ecg-record.ts'

const detectCmd: Command = {
  name: 'detect',
  summary: 'print detected R-peak sample indices of a WFDB record, one per line (--classes: with N S V F Q)',
  usage: [
    'Usage: mhealth ecg detect --wfdb PATH/RECORD [--channel N] [--classes]',
    '',
    'Prints R-peak sample indices at the record\'s own sample rate, one per line. With',
    '--classes each line is SAMPLE CLASS, CLASS one of the ANSI/AAMI EC57 classes N (normal,',
    'bundle branch block), S (supraventricular ectopic), V (ventricular ectopic), F (fusion),',
    'Q (unclassifiable: the first beat after a gap, before there is a rhythm to judge it by).',
    '',
    recordHelp,
    channelHelp,
    '  --classes            print each beat\'s class',
  ].join('\n'),
  async run(argv, io) {
    const p = parseCli(argv, { wfdb: { type: 'string' }, channel: { type: 'string' }, classes: { type: 'boolean' } })
    const path = stringOpt(p, 'wfdb')
    if (!path) throw new UsageError('--wfdb is required')
    const rec = await load(path, channelOpt(p))
    const { runChain } = await import('../../signal/record-run.ts')
    const run = runChain(rec.samples, rec.fs)
    const lines = p.values.classes ? run.classes.map((b) => `${b.sample} ${b.cls}`) : run.beats.map(String)
    io.stdout.write(lines.length ? lines.join('\n') + '\n' : '')
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
    const rec = await load(path, channelOpt(p))
    const { runChain } = await import('../../signal/record-run.ts')
    const lines = runChain(rec.samples, rec.fs).hr.map((s) => `${s.t} ${s.hr === null ? '-' : s.hr.toFixed(1)} ${s.quality}`)
    io.stdout.write(lines.length ? lines.join('\n') + '\n' : '')
    return 0
  },
}

const rhythmCmd: Command = {
  name: 'rhythm',
  summary: 'print rhythm episodes: START END LABEL (AF VT VF ASYSTOLE BRADY TACHY NOISE)',
  usage: [
    'Usage: mhealth ecg rhythm --wfdb PATH/RECORD [--channel N] [options]',
    '',
    'Feeds the record sample by sample through the gateway\'s streaming ECG chain and prints one',
    'line per rhythm episode, in order of start: START END LABEL, START and END in seconds from',
    'the start of the record (two decimals). LABEL is one of:',
    '  AF        atrial fibrillation: irregularly irregular RR intervals (V beats left out),',
    '            episodes of at least --min-af seconds',
    '  VT        ventricular tachycardia: 3 or more V beats in a row at 100 bpm or faster',
    '  VF        ventricular fibrillation or flutter: no organised QRS, a 2-9 Hz oscillation',
    '            (VF filter leakage under 0.406 for 4 s)',
    '  ASYSTOLE  no QRS for 4 s or more with the leads on',
    '  BRADY     displayed rate under --brady for 5 s or more',
    '  TACHY     displayed rate over --tachy for 5 s or more',
    '  NOISE     signal too poor to judge (quality under 25 for 5 s while beats still come);',
    '            no AF, VT or VF episode starts in noise',
    'Episodes of different labels may overlap (a TACHY inside an AF episode).',
    '',
    recordHelp,
    channelHelp,
    '  --brady BPM          bradycardia limit (default 50)',
    '  --tachy BPM          tachycardia limit (default 120)',
    '  --min-af S           shortest AF episode reported, seconds (default 30)',
  ].join('\n'),
  async run(argv, io) {
    const p = parseCli(argv, { wfdb: { type: 'string' }, channel: { type: 'string' }, brady: { type: 'string' }, tachy: { type: 'string' }, 'min-af': { type: 'string' } })
    const path = stringOpt(p, 'wfdb')
    if (!path) throw new UsageError('--wfdb is required')
    const bradyBpm = numOpt(p, 'brady', 50, 1, 300)
    const tachyBpm = numOpt(p, 'tachy', 120, 1, 400)
    if (!(bradyBpm < tachyBpm)) throw new UsageError(`--brady must be below --tachy, got ${bradyBpm} and ${tachyBpm}`)
    const minAfSeconds = numOpt(p, 'min-af', 30, 0, 3600)
    const rec = await load(path, channelOpt(p))
    const { runChain } = await import('../../signal/record-run.ts')
    const run = runChain(rec.samples, rec.fs, { bradyBpm, tachyBpm, minAfSeconds })
    const lines = run.episodes.map((e) => `${(e.start / rec.fs).toFixed(2)} ${(e.end / rec.fs).toFixed(2)} ${e.label}`)
    io.stdout.write(lines.length ? lines.join('\n') + '\n' : '')
    return 0
  },
}

export const command: Command = group('ecg', 'ECG beats, classes, heart rate and rhythm on WFDB records (the gateway\'s streaming code)', [detectCmd, hrCmd, rhythmCmd, scoreCmd])
