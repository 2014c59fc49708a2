/**
 * Heart rate as displayed (issue 16, item 2): EcgMonitor's rate once a second against the
 * reference beats averaged the same way (signal/hr-series.ts), with ANSI/AAMI EC13's tolerance
 * max(5 bpm, 10 %); its plausible range; and `mhealth ecg hr` / `ecg score --hr` as users and
 * the held-out checks call them.
 */
import t from 'tap'
import { join } from 'node:path'
import { readAnnotations, readRecord, BEAT_CODES } from '../../datasets/wfdb.ts'
import { EcgMonitor } from '../../signal/ecg.ts'
import { displayedHr, referenceHr, scoreHr, vfSeconds } from '../../signal/hr-series.ts'
import { vfEpisodes } from '../../signal/score.ts'
import { runCli } from '../helpers/cli.ts'
import { dataDir as sharedData } from './data.ts'

const mitdb = join(sharedData, 'ecg', 'mitdb')
const DS1 = ['100', '101', '103', '105', '106', '108', '109', '112', '114', '115', '116', '118', '119', '122', '124', '201', '203', '205', '207', '208', '209', '215', '220', '223', '230']

function scoreRecord(rec: string) {
  const path = join(mitdb, rec)
  const r = readRecord(path)
  const ann = readAnnotations(path)
  const beats = ann.filter((a) => BEAT_CODES.has(a.code)).map((a) => a.sample)
  const shown = displayedHr(r.samples[0], r.fs)
  const ref = referenceHr(beats, r.fs, shown.length)
  return { shown, ref, score: scoreHr(shown, ref, { exclude: vfSeconds(vfEpisodes(ann, r.samples[0].length), r.fs) }) }
}

t.test('DS1: the displayed rate is within max(5 bpm, 10 %) in >= 97 % of seconds, with a number in >= 95 % of them', async (t) => {
  let seconds = 0, shown = 0, within = 0
  for (const rec of DS1) {
    const s = scoreRecord(rec).score
    seconds += s.seconds; shown += s.shown; within += s.within
  }
  t.ok(within / seconds >= 0.97, `within tolerance: ${((100 * within) / seconds).toFixed(2)} % of ${seconds} s`)
  t.ok(shown / seconds >= 0.95, `a number shown: ${((100 * shown) / seconds).toFixed(2)} %`)
})

t.test('bigeminy and trigeminy (records 119, 208): never a halved rate', async (t) => {
  for (const rec of ['119', '208']) {
    const { shown, ref } = scoreRecord(rec)
    let halved = 0
    for (const s of shown) {
      const x = ref[s.t - 1]
      if (s.t > 10 && s.hr !== null && x !== null && x !== undefined && s.hr < 0.7 * x) halved++
    }
    t.equal(halved, 0, `${rec}: no second shows under 70 % of the reference rate`)
  }
})

t.test('a rate outside 20-300 bpm is never shown; a steady rhythm is', async (t) => {
  const fs = 250
  const beatsAt = (bpm: number, seconds: number) => {
    const m = new EcgMonitor({ fs, adcMin: -100000, adcMax: 100000 })
    const period = Math.round((60 / bpm) * fs)
    let shown: number | undefined
    for (let i = 0; i < seconds * fs; i++) {
      // a narrow QRS-like spike on a flat line, with a little noise
      const k = i % period
      m.push(k < 8 ? 1200 * Math.sin((Math.PI * k) / 8) : Math.round(10 * Math.sin(i)), false)
      shown = m.heartRate()
    }
    return shown
  }
  const at60 = beatsAt(60, 20)
  t.ok(at60 !== undefined && Math.abs(at60 - 60) < 1.5, `60 bpm shown as ${at60}`)
  t.equal(beatsAt(12, 60), undefined, '12 bpm: no number (below 20)')
})

t.test('mhealth ecg hr prints one line per second: T HR QUALITY', async (t) => {
  const r = await runCli(['ecg', 'hr', '--wfdb', join(sharedData, 'ecg', 'wfdb-sample', '100s')])
  t.equal(r.code, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  t.equal(lines.length, 60, 'the 60 s sample record: 60 lines')
  t.ok(lines.every((l, i) => new RegExp(`^${i + 1} (-|\\d+(\\.\\d)?) (\\d|[1-9]\\d|100)$`).test(l)), 'T HR QUALITY, T counting from 1, HR a number or -')
  const late = lines.slice(10).map((l) => Number(l.split(' ')[1]))
  t.ok(late.every((hr) => hr > 60 && hr < 90), `record 100 runs at about 75 bpm: ${late.slice(0, 5).join(' ')}...`)
  const bad = await runCli(['ecg', 'hr', '--wfdb', join(sharedData, 'ecg', 'nope')])
  t.equal(bad.code, 1)
  t.notMatch(bad.stderr, /\n\s+at /, 'no stack trace')
  const none = await runCli(['ecg', 'hr'])
  t.equal(none.code, 2)
  t.match(none.stderr, /--wfdb is required/)
})

t.test('mhealth ecg score --hr adds HR ok and HR shown', async (t) => {
  const r = await runCli(['ecg', 'score', '--hr', '--wfdb', join(mitdb, '100'), '--json'])
  t.equal(r.code, 0, r.stderr)
  const row = JSON.parse(r.stdout)
  t.ok(row.hr.seconds > 1700 && row.hr.within / row.hr.seconds > 0.99, `record 100: ${row.hr.within}/${row.hr.seconds}`)
  const table = await runCli(['ecg', 'score', '--hr', '--wfdb', join(mitdb, '100')])
  t.match(table.stdout, /record\s+TP\s+FN\s+FP\s+Se\s+\+P\s+HR ok\s+HR shown/)
})
