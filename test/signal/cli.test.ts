import t from 'tap'
import { readFileSync, writeFileSync, copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.ts'
import { dataDir as sharedData } from './data.ts'
import { tempDir } from '../helpers/tmp.ts'

const sample = join(sharedData, 'ecg', 'wfdb-sample', '100s')
const mitdb = join(sharedData, 'ecg', 'mitdb')

t.test('ecg --help and subcommand help', async (t) => {
  const r = await runCli(['ecg', '--help'])
  t.equal(r.code, 0)
  t.match(r.stdout, /detect/)
  t.match(r.stdout, /score/)
  const d = await runCli(['ecg', 'detect', '--help'])
  t.equal(d.code, 0)
  t.match(d.stdout, /--wfdb PATH\/RECORD/)
})

t.test('ecg detect prints one R-peak index per line at the record rate', async (t) => {
  const r = await runCli(['ecg', 'detect', '--wfdb', sample])
  t.equal(r.code, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  t.ok(lines.every((l) => /^\d+$/.test(l)), 'integers only')
  // 100s.atr: 74 beats in the first minute, first at sample 77 (360 Hz)
  t.ok(lines.length >= 73 && lines.length <= 75, `${lines.length} beats`)
  t.ok(Math.abs(Number(lines[0]) - 77) <= 5, `first beat at ${lines[0]}`)
})

t.test('ecg detect reads a CRLF header the same as LF', async (t) => {
  const dir = tempDir('ecg-crlf-')
  const hea = readFileSync(sample + '.hea', 'latin1').replace(/\r?\n/g, '\r\n')
  writeFileSync(join(dir, '100s.hea'), hea)
  copyFileSync(sample + '.dat', join(dir, '100s.dat'))
  copyFileSync(sample + '.atr', join(dir, '100s.atr'))
  const a = await runCli(['ecg', 'detect', '--wfdb', sample])
  const b = await runCli(['ecg', 'detect', '--wfdb', join(dir, '100s')])
  t.equal(b.code, 0, b.stderr)
  t.equal(b.stdout, a.stdout)
})

t.test('ecg score on a record prints TP, FN, FP, Se, +P', async (t) => {
  const r = await runCli(['ecg', 'score', '--wfdb', sample])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /record\s+TP\s+FN\s+FP\s+Se\s+\+P/)
  t.match(r.stdout, /100s\s+74\s+0\s+0\s+100\.00%\s+100\.00%/)
  const j = await runCli(['ecg', 'score', '--wfdb', sample, '--json'])
  t.same(JSON.parse(j.stdout), { record: '100s', tp: 74, fn: 0, fp: 0, se: 1, ppv: 1 })
})

t.test('ecg score over several mitdb records prints the gross line', async (t) => {
  const r = await runCli(['ecg', 'score', '--json', '--wfdb', join(mitdb, '100'), '--wfdb', join(mitdb, '105')])
  t.equal(r.code, 0, r.stderr)
  const rows = JSON.parse(r.stdout)
  t.equal(rows.length, 3)
  t.equal(rows[2].record, 'gross')
  t.equal(rows[2].tp, rows[0].tp + rows[1].tp)
  // 105 is the noisiest MIT-BIH record: its +P is 98.65 % (docs/signal.md).
  for (const row of rows) t.ok(row.se >= 0.985 && row.ppv >= 0.985, `${row.record} Se ${row.se} +P ${row.ppv}`)
})

t.test('ecg score with NSTDB noise mixed in', async (t) => {
  const r = await runCli(['ecg', 'score', '--json', '--wfdb', join(mitdb, '100'), '--noise', join(sharedData, 'ecg', 'nstdb', 'ma'), '--snr', '6'])
  t.equal(r.code, 0, r.stderr)
  const row = JSON.parse(r.stdout)
  t.ok(row.se > 0.97 && row.ppv > 0.97, `Se ${row.se} +P ${row.ppv}`)
})

t.test('usage errors exit 2, bad files exit 1, never a stack trace', async (t) => {
  for (const args of [['ecg', 'detect'], ['ecg', 'score'], ['ecg', 'detect', '--wfdb', sample, '--channel', 'x'], ['ecg', 'detect', '--wfdb', sample, '--channel', '5'], ['ecg', 'score', '--wfdb', sample, '--protocol', 'odd'], ['ecg', 'frob']]) {
    const r = await runCli(args)
    t.equal(r.code, 2, args.join(' ') + ': ' + r.stderr)
    t.notMatch(r.stderr, /\bat .*\.ts:\d+/)
  }
  const dir = tempDir('ecg-bad-')
  writeFileSync(join(dir, 'bad.hea'), 'bad 1 360 1000\nbad.dat 311 200 11 0 0 0 0 x\n')
  writeFileSync(join(dir, 'bad.dat'), Buffer.alloc(10))
  for (const path of [join(dir, 'missing'), join(dir, 'bad')]) {
    const r = await runCli(['ecg', 'detect', '--wfdb', path])
    t.equal(r.code, 1, r.stderr)
    t.match(r.stderr, /^mhealth: /)
    t.notMatch(r.stderr, /\bat .*\.ts:\d+/)
  }
  const r = await runCli(['ecg', 'score', '--wfdb', join(dir, 'bad')])
  t.equal(r.code, 1)
})

t.test('ecg detect --classes prints SAMPLE CLASS for the same beats as ecg detect', async (t) => {
  const plain = await runCli(['ecg', 'detect', '--wfdb', sample])
  const r = await runCli(['ecg', 'detect', '--classes', '--wfdb', sample])
  t.equal(r.code, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  t.ok(lines.every((l) => /^\d+ [NSVFQ]$/.test(l)), 'SAMPLE CLASS, CLASS one of N S V F Q')
  t.same(lines.map((l) => l.split(' ')[0]), plain.stdout.trim().split('\n'), 'the same beats, in order')
  // 100s: one minute of sinus rhythm (74 N beats, no ectopic beat in the reference)
  t.ok(lines.filter((l) => l.endsWith(' N')).length >= lines.length - 2, `mostly N: ${lines.map((l) => l.split(' ')[1]).join('')}`)
})

t.test('ecg rhythm prints START END LABEL in seconds; limits are options', async (t) => {
  const r = await runCli(['ecg', 'rhythm', '--wfdb', join(sharedData, 'ecg', 'cudb', 'cu01')])
  t.equal(r.code, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  t.ok(lines.every((l) => /^\d+\.\d\d \d+\.\d\d (AF|VT|VF|ASYSTOLE|BRADY|TACHY|NOISE)$/.test(l)), 'START END LABEL')
  t.ok(lines.some((l) => l.endsWith(' VF') && Number(l.split(' ')[0]) > 200), 'cu01: VF after its onset at 214 s')
  const starts = lines.map((l) => Number(l.split(' ')[0]))
  t.same(starts, [...starts].sort((a, b) => a - b), 'in order of start')
  t.equal((await runCli(['ecg', 'rhythm', '--wfdb', sample])).stdout, '', '100s: a minute of sinus rhythm, no episode')
  const slow = await runCli(['ecg', 'rhythm', '--wfdb', sample, '--tachy', '60'])
  t.match(slow.stdout, /^\d+\.\d\d \d+\.\d\d TACHY\n$/, '...but TACHY against a 60 bpm limit')
  const bad = await runCli(['ecg', 'rhythm', '--wfdb', sample, '--brady', '100', '--tachy', '50'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /--brady must be below --tachy/)
})

t.test('ecg score --all adds HR, VEB/SVEB and AF/VT columns (and fields in --json)', async (t) => {
  const r = await runCli(['ecg', 'score', '--all', '--wfdb', join(mitdb, '119')])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /record\s+TP\s+FN\s+FP\s+Se\s+\+P\s+HR ok\s+HR shown\s+VEB Se\s+VEB \+P\s+SVEB Se\s+SVEB \+P\s+AF Se\s+AF \+P\s+VT found\s+VT false/)
  const j = JSON.parse((await runCli(['ecg', 'score', '--json', '--classes', '--rhythm', '--wfdb', join(mitdb, '119')])).stdout)
  // 119: ventricular bigeminy and trigeminy, 444 V beats, no AF, no VT
  t.equal(j.classes.veb.tp + j.classes.veb.fn, 444, 'every reference V beat is scored')
  t.ok(j.classes.veb.se >= 0.95 && j.classes.veb.ppv >= 0.95, `119 VEB Se ${j.classes.veb.se} +P ${j.classes.veb.ppv}`)
  t.equal(j.rhythm.afSeconds, 0)
  t.equal(j.rhythm.vtEpisodes, 0)
  t.equal(j.hr, undefined, 'no HR without --hr')
})

t.test('bad records: a clear one-line error and exit 1 from every ecg command', async (t) => {
  const dir = tempDir('ecg-bad2-')
  // a header whose only signals are not ECG (NSTDB's noise record)
  const noise = join(sharedData, 'ecg', 'nstdb', 'ma')
  // a truncated .dat: the header promises 650000 samples
  writeFileSync(join(dir, '100.hea'), readFileSync(join(mitdb, '100.hea')))
  writeFileSync(join(dir, '100.dat'), readFileSync(join(mitdb, '100.dat')).subarray(0, 5000))
  for (const cmd of ['detect', 'hr', 'rhythm', 'score']) {
    for (const [path, why] of [[noise, /has no ECG signal \(its signals: noise1, noise2\)/], [join(dir, '100'), /header says 650000 samples, data file holds/], [join(dir, 'nope'), /cannot read WFDB header/]] as const) {
      const r = await runCli(['ecg', cmd, '--wfdb', path])
      t.equal(r.code, 1, `${cmd} ${path}: exit 1`)
      t.match(r.stderr, why)
      t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
      t.notMatch(r.stderr, /\bat .*\.ts:\d+/)
    }
  }
  const r = await runCli(['ecg', 'rhythm', '--wfdb', noise, '--channel', '0'])
  t.equal(r.code, 0, '--channel picks a signal anyway')
})
