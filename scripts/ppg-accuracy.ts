/**
 * SpO2 accuracy as ISO 80601-2-61 reports it (Arms and bias in the 70-80, 80-90 and 90-100 %
 * bins, and the share of time with a reading), for the realistic finger model's scenarios in
 * spot checks and continuous monitoring, and pulse rate on BIDMC: the tables in
 * docs/signal.md. Prints Markdown.
 *
 *   npx tsx scripts/ppg-accuracy.ts [--fs 64]
 *
 * The simulator's truth is its own model, and the default curve was fitted to that model:
 * these figures measure the gates and the estimator, not a real sensor's calibration.
 */
import { parseArgs } from 'node:util'
import { join } from 'node:path'
import { PpgMonitor } from '../signal/ppg.ts'
import { runSpo2 } from '../signal/ppg-record.ts'
import { realisticRecording, scenario, type ScenarioName } from '../hardware-sim/signals/ppg-realistic.ts'
import { readBidmcNumerics, readBidmcSignals } from '../datasets/bidmc.ts'
import { existsSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const { values } = parseArgs({ options: { fs: { type: 'string', default: '64' }, help: { type: 'boolean' } } })
if (values.help) {
  console.log('Usage: npx tsx scripts/ppg-accuracy.ts [--fs HZ]\n\nPrints the SpO2 accuracy tables (ISO 80601-2-61 bins) and BIDMC pulse rate as Markdown.')
  process.exit(0)
}
const FS = Number(values.fs)
if (!(FS >= 25 && FS <= 3200)) {
  console.error(`--fs: expected 25 to 3200, got ${values.fs}`)
  process.exit(2)
}
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const sharedData = [process.env.MHEALTH_SHARED_DATA ?? '', join(root, '..', 'shared', 'data'), join(root, '..', '..', 'shared', 'data')].find((p) => p && existsSync(p))
if (!sharedData) throw new Error('shared data folder not found; set MHEALTH_SHARED_DATA')

type Bin = { n: number; got: number; se: number; bias: number }
const bins = (): Record<string, Bin> => ({ '70-80': { n: 0, got: 0, se: 0, bias: 0 }, '80-90': { n: 0, got: 0, se: 0, bias: 0 }, '90-100': { n: 0, got: 0, se: 0, bias: 0 } })
const binOf = (s: number): string => (s < 80 ? '70-80' : s < 90 ? '80-90' : '90-100')
const add = (b: Record<string, Bin>, truth: number, reading: number | undefined | null) => {
  const x = b[binOf(truth)]
  x.n++
  if (reading === undefined || reading === null) return
  x.got++
  x.se += (reading - truth) ** 2
  x.bias += reading - truth
}
const cell = (x: Bin) => (x.got ? `${Math.sqrt(x.se / x.got).toFixed(2)} / ${(x.bias / x.got >= 0 ? '+' : '') + (x.bias / x.got).toFixed(2)} / ${((100 * x.got) / x.n).toFixed(0)} %` : `- / - / 0 %`)
const total = (b: Record<string, Bin>): Bin => Object.values(b).reduce((a, x) => ({ n: a.n + x.n, got: a.got + x.got, se: a.se + x.se, bias: a.bias + x.bias }), { n: 0, got: 0, se: 0, bias: 0 })

const SATS = [70, 72, 74, 76, 78, 80, 82, 84, 86, 88, 90, 92, 94, 96, 98, 100]
const names: ScenarioName[] = ['clean', 'ambient', 'low-perfusion', 'motion', 'poor-contact']

console.log(`SpO2 on the realistic finger model at ${FS} Hz (default curve). Each cell: Arms / bias / share with a reading.\n`)
console.log('| scenario | mode | 70-80 % | 80-90 % | 90-100 % | all |')
console.log('|---|---|---|---|---|---|')
for (const name of names) {
  const spot = bins()
  for (const secs of [3, 5, 7]) {
    for (const spo2 of SATS) {
      for (const seed of [1, 2]) {
        const r = realisticRecording({ ...scenario(name, { seconds: secs, fs: FS, seed: seed * 7919 + spo2 * 13 + secs }), spo2, pulseRate: 55 + ((spo2 * 3 + seed * 17 + secs) % 70) })
        add(spot, spo2, runSpo2({ t: r.t, red: r.red, ir: r.ir, fs: r.fs }).spo2)
      }
    }
  }
  const cont = bins()
  for (const spo2 of SATS) {
    const r = realisticRecording({ ...scenario(name, { seconds: 60, fs: FS, seed: 31 * spo2 + 5 }), spo2, pulseRate: 55 + ((spo2 * 3) % 70) })
    let i = 0
    const m = new PpgMonitor({ fs: r.fs, onReading: (x) => { if (i >= 10 * r.fs) add(cont, spo2, x.spo2) } })
    for (i = 0; i < r.t.length; i++) m.push(r.red[i], r.ir[i])
  }
  for (const [mode, b] of [['spot 3-7 s', spot], ['continuous', cont]] as const) console.log(`| ${name} | ${mode} | ${cell(b['70-80'])} | ${cell(b['80-90'])} | ${cell(b['90-100'])} | ${cell(total(b))} |`)
}

const dir = join(sharedData, 'ppg', 'bidmc', 'bidmc_csv')
let e = 0, got = 0, n = 0
for (let rec = 1; rec <= 53; rec++) {
  let pleth: Float64Array, pulse: Float64Array
  try {
    pleth = readBidmcSignals(dir, rec).columns['PLETH']
    pulse = readBidmcNumerics(dir, rec).columns['PULSE']
  } catch {
    continue
  }
  const m = new PpgMonitor({ fs: 125, minDc: 1, fullScale: Infinity, onReading: (r) => {
    const ref = pulse[Math.floor(r.at / 125) - 1]
    if (r.at < 10 * 125 || !Number.isFinite(ref)) return
    n++
    if (r.pulseRate === undefined) return
    got++
    e += Math.abs(r.pulseRate - ref)
  } })
  for (let i = 0; i < pleth.length; i++) m.push(10 - pleth[i], 10 - pleth[i])
}
console.log(`\nPulse rate on the BIDMC records present (${dir}): MAE ${(e / got).toFixed(2)} bpm, a reading in ${((100 * got) / n).toFixed(1)} % of ${n} seconds (after the first 10 s of each record).`)
