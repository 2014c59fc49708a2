/**
 * `mhealth ppg spo2|calibrate`: red/IR recordings (CSV t,red,ir) through the
 * gateway's streaming pulse oximeter (signal/ppg.ts), and fitting a sensor's
 * R→SpO2 curve from recordings with a reference SpO2.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { group, print, type Command } from '../command.ts'
import { parseCli, requireOpt, stringOpt, choiceOpt } from '../args.ts'
import { CliError, UsageError } from '../errors.ts'

const csvHelp = [
  '  --csv FILE           CSV whose header includes t,red,ir (t in seconds, raw ADC counts; other',
  '                       columns are ignored); any sample rate from 25 to 3200 Hz, taken from t;',
  '                       at least 2 s',
].join('\n')

async function loadRecording(path: string) {
  const { parseRedIrCsv, RecordingError } = await import('../../signal/ppg-record.ts')
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    throw new CliError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
  }
  try {
    return parseRedIrCsv(text, path)
  } catch (e) {
    if (e instanceof RecordingError) throw new CliError(e.message)
    throw e
  }
}

async function loadCalibration(path: string | undefined) {
  if (!path) return undefined
  const { readCalibrationFile, CalibrationFileError } = await import('../../gateway/spo2-calibration.ts')
  try {
    return await readCalibrationFile(path)
  } catch (e) {
    if (e instanceof CalibrationFileError) throw new CliError(e.message)
    throw e
  }
}

const fmt = (x: number | undefined | null, d: number): string => (x === undefined || x === null ? '-' : x.toFixed(d))

const spo2Cmd: Command = {
  name: 'spo2',
  summary: 'SpO2 and pulse rate of a red/IR recording, once a second: T SPO2 PR QUALITY',
  usage: [
    'Usage: mhealth ppg spo2 --csv FILE [--calibration CAL.json] [--summary]',
    '',
    'Feeds the recording sample by sample through the streaming pulse oximeter the gateway runs',
    'on a board\'s frames, and prints one line per second of signal: T SPO2 PR QUALITY. T is',
    'seconds from the first sample to the end of what the line covers (a last line for a final',
    'part-second of at least 0.5 s); SPO2 in %, PR in bpm, one decimal, or - when the monitor',
    'withholds the number (too short, finger off, clipped, motion, low perfusion: quality under',
    '50); QUALITY is 0-100. A reading needs 2 s of signal (a spot check from 3 s); the window',
    'grows to 8 s.',
    '',
    csvHelp,
    '  --calibration FILE   the sensor\'s R->SpO2 curve from `mhealth ppg calibrate` (default: the',
    '                       simulator\'s curve, which is not a calibration of any real sensor)',
    '  --summary            print one line instead: SPO2 PR, the medians of the readings, or -',
  ].join('\n'),
  async run(argv, io) {
    const p = parseCli(argv, { csv: { type: 'string' }, calibration: { type: 'string' }, summary: { type: 'boolean' } })
    const path = stringOpt(p, 'csv')
    if (!path) throw new UsageError('--csv is required')
    const cal = await loadCalibration(stringOpt(p, 'calibration'))
    const rec = await loadRecording(path)
    const { runSpo2 } = await import('../../signal/ppg-record.ts')
    const run = runSpo2(rec, cal?.curve)
    if (p.values.summary) {
      print(io, `${fmt(run.spo2, 1)} ${fmt(run.pulseRate, 1)}`)
      return 0
    }
    const out = run.lines.map((l) => `${l.t} ${fmt(l.reading.spo2, 1)} ${fmt(l.reading.pulseRate, 1)} ${l.reading.quality}`)
    io.stdout.write(out.length ? out.join('\n') + '\n' : '')
    return 0
  },
}

interface ManifestRow {
  file: string
  spo2: number
  line: number
}

function parseManifest(text: string, path: string): ManifestRow[] {
  const lines = text.split(/\r?\n/)
  const head = (lines[0] ?? '').split(',').map((s) => s.trim().toLowerCase())
  const fi = head.indexOf('file')
  const si = head.indexOf('spo2')
  if (fi < 0 || si < 0) throw new CliError(`${path}: expected a header with file,spo2; got "${(lines[0] ?? '').trim().slice(0, 80)}"`)
  const rows: ManifestRow[] = []
  for (let k = 1; k < lines.length; k++) {
    if (lines[k].trim() === '') continue
    const cells = lines[k].split(',')
    const file = (cells[fi] ?? '').trim()
    const spo2 = Number((cells[si] ?? '').trim())
    if (file === '') throw new CliError(`${path}: line ${k + 1}: empty file name`)
    if (!((cells[si] ?? '').trim() !== '' && Number.isFinite(spo2) && spo2 > 0 && spo2 <= 100)) throw new CliError(`${path}: line ${k + 1}: spo2 "${(cells[si] ?? '').trim()}" is not a saturation in %`)
    rows.push({ file, spo2, line: k + 1 })
  }
  if (rows.length === 0) throw new CliError(`${path}: no rows under the header`)
  return rows
}

const calibrateCmd: Command = {
  name: 'calibrate',
  summary: "fit a sensor's R->SpO2 curve from recordings with a reference SpO2",
  usage: [
    'Usage: mhealth ppg calibrate --manifest M.csv --out CAL.json [--sensor MODEL | --device ID] [--degree 1|2]',
    '',
    'M.csv has the header file,spo2: one recording (CSV t,red,ir, as for `ppg spo2`; paths',
    'relative to the manifest) and the reference SpO2 (%) taken during it. Each recording is run',
    'through the streaming pulse oximeter; its ratio of ratios R is the median over the seconds',
    'good enough for SpO2 (a recording with none is left out, and said). The curve is fitted by',
    'least squares and written to CAL.json with an ID that names it; the command prints the fit\'s',
    'Arms and the leave-one-out Arms (each recording predicted by the curve fitted to the others:',
    'what to expect on new data).',
    '',
    'Refused, with the reasons: fewer than 10 usable recordings (15 for --degree 2), reference',
    'SpO2 spanning less than 10 points, or a curve that does not fall as R rises.',
    '',
    '  --manifest FILE      the recordings and their reference SpO2',
    '  --out FILE           where to write the calibration (JSON)',
    '  --sensor MODEL       the sensor model it calibrates (default MAX30102)',
    '  --device ID          or the one device it calibrates',
    '  --degree N           1: SpO2 = a + b*R (default); 2: adds c*R^2',
  ].join('\n'),
  async run(argv, io) {
    const p = parseCli(argv, { manifest: { type: 'string' }, out: { type: 'string' }, sensor: { type: 'string' }, device: { type: 'string' }, degree: { type: 'string' } })
    const manifest = requireOpt(p, 'manifest')
    const out = requireOpt(p, 'out')
    const degree = Number(choiceOpt(p, 'degree', ['1', '2'] as const, '1')) as 1 | 2
    const sensor = stringOpt(p, 'sensor')
    const device = stringOpt(p, 'device')
    if (sensor && device) throw new UsageError('give --sensor or --device, not both: a calibration belongs to a sensor model or to one device')
    let text: string
    try {
      text = await readFile(manifest, 'utf8')
    } catch (e) {
      throw new CliError(`cannot read ${manifest}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
    }
    const rows = parseManifest(text, manifest)
    const { runSpo2 } = await import('../../signal/ppg-record.ts')
    const { fitCalibration, CalibrationRefused } = await import('../../signal/ppg-calibration.ts')
    const { makeCalibrationFile } = await import('../../gateway/spo2-calibration.ts')
    const points: Array<{ ratio: number; spo2: number }> = []
    const skipped: string[] = []
    for (let k = 0; k < rows.length; k++) {
      const row = rows[k]
      const path = resolve(dirname(manifest), row.file)
      let rec
      try {
        rec = await loadRecording(path)
      } catch (e) {
        skipped.push(`${row.file}: ${(e as Error).message}`)
        continue
      }
      const ratio = runSpo2(rec).ratio
      if (ratio === null) skipped.push(`${row.file}: no second clean enough for SpO2`)
      else points.push({ ratio, spo2: row.spo2 })
      if (rows.length >= 20 && io.stderr && (k + 1) % 10 === 0) io.stderr.write(`  ${k + 1}/${rows.length} recordings\n`)
    }
    print(io, `recordings: ${points.length} of ${rows.length} usable`)
    for (const s of skipped) print(io, `  left out ${s}`)
    let fit
    try {
      fit = fitCalibration(points, degree)
    } catch (e) {
      if (e instanceof CalibrationRefused) throw new CliError(`calibration refused: ${e.reasons.join('; ')}`)
      throw e
    }
    const file = makeCalibrationFile(fit, device ? { sensor: null, device } : { sensor: sensor ?? 'MAX30102', device: null })
    try {
      await writeFile(out, JSON.stringify(file, null, 2) + '\n')
    } catch (e) {
      throw new CliError(`cannot write ${out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
    }
    const c = file.curve
    const curve = `SpO2 = ${c.a.toFixed(2)} ${c.b < 0 ? '-' : '+'} ${Math.abs(c.b).toFixed(2)}*R${degree === 2 ? ` ${c.c < 0 ? '-' : '+'} ${Math.abs(c.c).toFixed(3)}*R^2` : ''}`
    print(io, `fit: ${curve} over R ${fit.ratioRange[0].toFixed(3)}-${fit.ratioRange[1].toFixed(3)}, reference SpO2 ${fit.spo2Range[0]}-${fit.spo2Range[1]} %`)
    print(io, `Arms ${fit.arms.toFixed(2)} %  leave-one-out Arms ${fit.looArms.toFixed(2)} %  (n ${fit.n})`)
    print(io, `wrote ${out} (id ${file.id}, ${file.device ? 'device ' + file.device : 'sensor ' + file.sensor})`)
    return 0
  },
}

const installCmd: Command = {
  name: 'install',
  summary: "install a calibration in a gateway's data directory (applies within seconds, no restart)",
  usage: [
    'Usage: mhealth ppg calibration install --data DIR --file CAL.json',
    '',
    'Checks CAL.json (from `mhealth ppg calibrate`: its ID must match its curve) and copies it to',
    'DIR/calibrations/<id>.json. The gateway computes each device\'s SpO2 with the device\'s own',
    'calibration, else its sensor model\'s (MAX30102), else the simulator\'s curve', "(spo2cal-simulator); every SpO2 it computes names the calibration's ID. Installed files are",
    'kept: a past reading stays reproducible from the signed raw samples.',
    '',
    '  --data DIR    the gateway data directory',
    '  --file FILE   the calibration',
  ].join('\n'),
  async run(argv, io) {
    const p = parseCli(argv, { data: { type: 'string' }, file: { type: 'string' } })
    const data = requireOpt(p, 'data')
    const cal = (await loadCalibration(requireOpt(p, 'file')))!
    const { join } = await import('node:path')
    const { existsSync } = await import('node:fs')
    if (!existsSync(join(data, 'registry.sqlite')) && !existsSync(join(data, 'gateway.key'))) {
      throw new CliError(`${data} is not a gateway data directory (no registry.sqlite or gateway.key): wrong --data?`)
    }
    const { Spo2CalibrationDir } = await import('../../gateway/spo2-calibration-dir.ts')
    const path = new Spo2CalibrationDir(join(data, 'calibrations')).install(cal)
    print(io, `installed ${cal.id} (${cal.device ? 'device ' + cal.device : 'sensor ' + cal.sensor}) as ${path}`)
    return 0
  },
}

const listCmd: Command = {
  name: 'list',
  summary: "the calibrations installed in a gateway's data directory, as JSON lines",
  usage: [
    'Usage: mhealth ppg calibration list --data DIR',
    '',
    'One JSON object per line for each calibration that applies (the newest per device and per',
    'sensor model): {"id","sensor","device","curve","fit","createdAt"}.',
    '',
    '  --data DIR    the gateway data directory',
  ].join('\n'),
  async run(argv, io) {
    const p = parseCli(argv, { data: { type: 'string' } })
    const data = requireOpt(p, 'data')
    const { Spo2CalibrationDir } = await import('../../gateway/spo2-calibration-dir.ts')
    const { join } = await import('node:path')
    const warnings: string[] = []
    const list = new Spo2CalibrationDir(join(data, 'calibrations'), { warn: (m) => warnings.push(m) }).list()
    for (const w of warnings) io.stderr.write(`mhealth: skipped ${w}\n`)
    for (const c of list) print(io, JSON.stringify({ id: c.id, sensor: c.sensor, device: c.device, curve: c.curve, fit: c.fit, createdAt: c.createdAt }))
    return 0
  },
}

export const command: Command = group('ppg', 'SpO2 and pulse rate of red/IR recordings; per-sensor calibration', [
  spo2Cmd,
  calibrateCmd,
  group('calibration', "a gateway's installed SpO2 calibrations", [installCmd, listCmd], 'ppg'),
])
