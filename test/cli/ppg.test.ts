/**
 * `mhealth ppg spo2` and `mhealth ppg calibrate` as a user runs them (the real binary, real
 * CSV files): the CLI contract of issue 17 (T SPO2 PR QUALITY lines, --summary, any rate from
 * 25 to 3200 Hz taken from t, one-line errors with exit 1), and a per-sensor calibration fitted
 * from recordings of a sensor whose curve is not the simulator's, then used.
 */
import t from 'tap'
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.ts'
import { tempDir } from '../helpers/tmp.ts'
import { realisticRecording, scenario, writeRecordingCsv } from '../../hardware-sim/signals/ppg-realistic.ts'

const dir = tempDir('mh-ppg-')

function record(name: string, o: { seconds: number; fs: number; spo2: number; seed: number; pulseRate?: number; jitter?: boolean }): string {
  const base = scenario('clean', { seconds: o.seconds, fs: o.fs, seed: o.seed })
  const artefacts = o.jitter === false ? { ...base.artefacts, jitter: false } : base.artefacts
  const r = realisticRecording({ ...base, artefacts, spo2: o.spo2, pulseRate: o.pulseRate ?? 75 })
  const path = join(dir, name)
  writeRecordingCsv(path, r)
  return path
}

const lineRe = /^(\d+(?:\.\d+)?) (-|\d+\.\d) (-|\d+\.\d) (\d+)$/

t.test('spo2: one line per second, T SPO2 PR QUALITY, and --summary', async (t) => {
  const csv = record('spot88.csv', { seconds: 6, fs: 64, spo2: 88, seed: 11 })
  const r = await runCli(['ppg', 'spo2', '--csv', csv])
  t.equal(r.code, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  t.ok(lines.length >= 5 && lines.length <= 7, `${lines.length} lines for 6 s`)
  let last = 0
  for (const l of lines) {
    const m = lineRe.exec(l)
    t.ok(m, `line "${l}" is T SPO2 PR QUALITY`)
    if (!m) continue
    t.ok(Number(m[1]) > last, 'T increases')
    last = Number(m[1])
    if (m[2] !== '-') t.ok(Math.abs(Number(m[2]) - 88) <= 2, `SpO2 ${m[2]} (true 88)`)
  }
  t.ok(lines.filter((l) => l.split(' ')[1] !== '-').length >= 3, 'a number from 3 s on')
  const s = await runCli(['ppg', 'spo2', '--csv', csv, '--summary'])
  t.equal(s.code, 0, s.stderr)
  t.match(s.stdout, /^\d+\.\d \d+\.\d\n$/, 'one line: SPO2 PR')
  const [spo2, pr] = s.stdout.trim().split(' ').map(Number)
  t.ok(Math.abs(spo2 - 88) <= 1.5 && Math.abs(pr - 75) <= 5, `summary ${spo2} % ${pr} bpm (true 88 %, 75 bpm)`)
})

t.test('spo2: any rate from 25 to 3200 Hz, from t; other columns ignored', async (t) => {
  for (const fs of [25, 3200]) {
    // 2 ms of timestamp jitter is more than a 3200 Hz sample period: those stamps come from the chip's clock
    const csv = record(`fs${fs}.csv`, { seconds: 5, fs, spo2: 95, seed: fs, jitter: fs < 1000 })
    const r = await runCli(['ppg', 'spo2', '--csv', csv, '--summary'])
    t.equal(r.code, 0, r.stderr)
    t.ok(Math.abs(Number(r.stdout.split(' ')[0]) - 95) <= 2, `${fs} Hz: ${r.stdout.trim()}`)
  }
  // columns in another order, with extras, and a header in capitals
  const src = readFileSync(record('plain.csv', { seconds: 4, fs: 64, spo2: 93, seed: 5 }), 'utf8').trim().split('\n')
  const moved = ['IR,temp,T,Red'].concat(src.slice(1).map((l) => { const [tt, red, ir] = l.split(','); return `${ir},31.5,${tt},${red}` }))
  writeFileSync(join(dir, 'moved.csv'), moved.join('\n') + '\n')
  const r = await runCli(['ppg', 'spo2', '--csv', join(dir, 'moved.csv'), '--summary'])
  t.equal(r.code, 0, r.stderr)
  t.ok(Math.abs(Number(r.stdout.split(' ')[0]) - 93) <= 2, `columns found by name: ${r.stdout.trim()}`)
})

t.test('spo2: bad input is one line and exit 1; a wrong call is exit 2', async (t) => {
  const bad = (name: string, text: string) => {
    writeFileSync(join(dir, name), text)
    return join(dir, name)
  }
  const rows = (n: number, fs: number) => Array.from({ length: n }, (_, i) => `${(i / fs).toFixed(4)},80000,120000`).join('\n')
  const cases: Array<[string, string, RegExp]> = [
    ['nocol.csv', 't,red\n0,1\n', /header lacks column ir/],
    ['nan.csv', `t,red,ir\n${rows(100, 50)}\n2.1,abc,3\n`, /line 102: red is not a number/],
    ['back.csv', `t,red,ir\n0,1,1\n0.02,1,1\n0.01,1,1\n${rows(100, 50)}\n`, /line 4: t 0.01 does not increase/],
    ['short.csv', `t,red,ir\n${rows(90, 50)}\n`, /at least 2 s are needed/],
    ['slow.csv', `t,red,ir\n${rows(10, 2)}\n`, /sample rate 2\.0 Hz from t; expected 25 to 3200 Hz/],
    ['empty.csv', '', /empty file/],
  ]
  for (const [name, text, re] of cases) {
    const r = await runCli(['ppg', 'spo2', '--csv', bad(name, text)])
    t.equal(r.code, 1, `${name}: exit 1`)
    t.match(r.stderr, re, name)
    t.equal(r.stderr.trim().split('\n').length, 1, `${name}: one line`)
    t.equal(r.stdout, '', `${name}: nothing on stdout`)
  }
  const missing = await runCli(['ppg', 'spo2', '--csv', join(dir, 'nope.csv')])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /cannot read .*nope\.csv: ENOENT/)
  t.equal((await runCli(['ppg', 'spo2'])).code, 2, 'no --csv: usage error')
  t.equal((await runCli(['ppg', 'spo2', '--csv', 'x', '--bogus'])).code, 2, 'unknown option: usage error')
  const help = await runCli(['ppg', 'spo2', '--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /Usage: mhealth ppg spo2 --csv FILE \[--calibration CAL\.json\] \[--summary\]/)
})

/**
 * Another sensor: its reference oximeter says `other(s)` where the simulator's physics says s
 * (its LEDs' wavelengths differ: the same R means another saturation). Reads high with the
 * simulator's curve, as the issue found on real recordings.
 */
const other = (s: number): number => s - 4.9 - 0.12 * (96 - s)

function manifest(name: string, sats: number[], ref: (s: number) => number, seed: number): string {
  const lines = ['file,spo2']
  sats.forEach((s, i) => {
    const file = `${name}-${i}.csv`
    record(file, { seconds: 5 + (i % 3), fs: 64, spo2: s, seed: seed + i, pulseRate: 60 + ((i * 13) % 50) })
    lines.push(`${file},${ref(s).toFixed(1)}`)
  })
  const path = join(dir, `${name}.csv`)
  writeFileSync(path, lines.join('\n') + '\n')
  return path
}

t.test('calibrate: fits the sensor, prints Arms and leave-one-out Arms, and spo2 uses it', async (t) => {
  const sats = [98, 97, 95, 93, 91, 89, 87, 85, 83, 81, 79, 77, 75, 73]
  const m = manifest('fit', sats, other, 100)
  const cal = join(dir, 'cal.json')
  const r = await runCli(['ppg', 'calibrate', '--manifest', m, '--out', cal])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /recordings: 14 of 14 usable/)
  const arms = /Arms (\d+\.\d+) %\s+leave-one-out Arms (\d+\.\d+) %/.exec(r.stdout)
  t.ok(arms, r.stdout)
  t.ok(Number(arms![1]) <= 1.5 && Number(arms![2]) <= 2, `fit Arms ${arms![1]}, leave-one-out ${arms![2]}`)
  const file = JSON.parse(readFileSync(cal, 'utf8'))
  t.match(file, { format: 'mhealth-spo2-calibration/1', id: /^spo2cal-[0-9a-f]{16}$/, sensor: 'MAX30102', device: null, fit: { n: 14, degree: 1 } })
  t.ok(file.curve.b < 0, 'SpO2 falls as R rises')
  t.match(r.stdout, new RegExp(`id ${file.id}`))

  // New recordings of the same sensor: with its calibration they read its reference scale.
  let seDefault = 0, seCal = 0
  const held = [96, 90, 84, 78]
  for (const [i, s] of held.entries()) {
    const csv = record(`held-${i}.csv`, { seconds: 6, fs: 64, spo2: s, seed: 900 + i })
    const plain = Number((await runCli(['ppg', 'spo2', '--csv', csv, '--summary'])).stdout.split(' ')[0])
    const withCal = await runCli(['ppg', 'spo2', '--csv', csv, '--summary', '--calibration', cal])
    t.equal(withCal.code, 0, withCal.stderr)
    seDefault += (plain - other(s)) ** 2
    seCal += (Number(withCal.stdout.split(' ')[0]) - other(s)) ** 2
  }
  const a0 = Math.sqrt(seDefault / held.length), a1 = Math.sqrt(seCal / held.length)
  t.ok(a0 > 3 && a1 <= 2, `held-out recordings: Arms ${a0.toFixed(2)} % with the simulator's curve, ${a1.toFixed(2)} % with the calibration`)

  // --device: one device's calibration; the ID differs from the sensor model's.
  const devCal = join(dir, 'dev.json')
  const d = await runCli(['ppg', 'calibrate', '--manifest', m, '--out', devCal, '--device', 'se-0001'])
  t.equal(d.code, 0, d.stderr)
  const dev = JSON.parse(readFileSync(devCal, 'utf8'))
  t.match(dev, { sensor: null, device: 'se-0001' })
  t.not(dev.id, file.id)
  t.equal((await runCli(['ppg', 'calibrate', '--manifest', m, '--out', devCal, '--device', 'x', '--sensor', 'y'])).code, 2, '--device and --sensor together')

  // A calibration edited by hand is refused: its ID no longer names its curve.
  const edited = join(dir, 'edited.json')
  writeFileSync(edited, JSON.stringify({ ...file, curve: { ...file.curve, a: file.curve.a + 2 } }))
  const e = await runCli(['ppg', 'spo2', '--csv', join(dir, 'held-0.csv'), '--calibration', edited])
  t.equal(e.code, 1)
  t.match(e.stderr, /does not match its curve/)
})

t.test('calibrate refuses too few points, a narrow range, and a curve that rises with R, and writes nothing', async (t) => {
  const cases: Array<[string, number[], (s: number) => number, RegExp]> = [
    ['few', [98, 94, 90, 86, 82, 78], other, /6 usable points; at least 10 are needed/],
    ['narrow', [98, 97.5, 97, 96.5, 96, 95.5, 95, 94.5, 94, 93.5, 93], (s) => s, /spans only 93-98 %; at least 10 points/],
    ['rising', [98, 96, 94, 92, 90, 88, 86, 84, 82, 80, 78], (s) => 176 - s, /does not fall as R rises/],
  ]
  for (const [name, sats, ref, re] of cases) {
    const out = join(dir, `${name}.json`)
    const r = await runCli(['ppg', 'calibrate', '--manifest', manifest(name, sats, ref, 300), '--out', out])
    t.equal(r.code, 1, `${name}: exit 1`)
    t.match(r.stderr, re, name)
    t.notOk(existsSync(out), `${name}: no calibration written`)
  }
  writeFileSync(join(dir, 'badman.csv'), 'path,sat\nx.csv,90\n')
  const b = await runCli(['ppg', 'calibrate', '--manifest', join(dir, 'badman.csv'), '--out', join(dir, 'b.json')])
  t.equal(b.code, 1)
  t.match(b.stderr, /expected a header with file,spo2/)
  writeFileSync(join(dir, 'gone.csv'), 'file,spo2\n' + Array.from({ length: 12 }, (_, i) => `missing-${i}.csv,${80 + i}`).join('\n') + '\n')
  const g = await runCli(['ppg', 'calibrate', '--manifest', join(dir, 'gone.csv'), '--out', join(dir, 'g.json')])
  t.equal(g.code, 1)
  t.match(g.stdout, /left out missing-0\.csv: cannot read/, 'each recording left out is named, with why')
  t.match(g.stderr, /0 usable points/)
})
