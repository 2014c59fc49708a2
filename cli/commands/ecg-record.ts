/** The WFDB record the `mhealth ecg` commands read: which signal is the ECG, and clear errors for bad files. */
import { intOpt, stringOpt, type Parsed } from '../args.ts'
import { CliError, UsageError } from '../errors.ts'

export const recordHelp = '  --wfdb PATH/RECORD   WFDB record without extension (format 212 or 16; LF or CRLF header)'
export const channelHelp = '  --channel N          signal number in the record (default: the first ECG signal)'

export interface Loaded {
  name: string
  fs: number
  gain: number
  samples: Int16Array
}

/** A record's ECG signal; every problem with the files is a one-line CliError (exit 1). */
export async function load(path: string, channel: number | undefined): Promise<Loaded> {
  const { readRecord, ecgChannel, WfdbError } = await import('../../datasets/wfdb.ts')
  try {
    const rec = readRecord(path)
    if (channel !== undefined && channel >= rec.nsig) throw new UsageError(`--channel must be below the record's ${rec.nsig} signal(s), got ${channel}`)
    const c = channel ?? ecgChannel(rec)
    if (c < 0) throw new CliError(`record ${rec.record} has no ECG signal (its signals: ${rec.signals.map((s) => s.description || '?').join(', ')}); pick one with --channel N`)
    if (rec.samples[c]!.length === 0) throw new CliError(`record ${rec.record} holds no samples`)
    return { name: rec.record, fs: rec.fs, gain: rec.signals[c]!.gain, samples: rec.samples[c]! }
  } catch (err) {
    if (err instanceof WfdbError) throw new CliError(err.message)
    throw err
  }
}

/** --channel when given, else undefined (the first ECG signal). */
export function channelOpt(p: Parsed): number | undefined {
  return stringOpt(p, 'channel') === undefined ? undefined : intOpt(p, 'channel', 0, 0, 63)
}

