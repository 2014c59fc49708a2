/**
 * Rhythm analysis (signal/rhythm.ts) through the streaming chain the gateway runs
 * (signal/record-run.ts): rate limits, asystole, VF on the Creighton VF record, NOISE on NSTDB
 * noise, and AF and VT scored against the MIT-BIH rhythm annotations we have. The issue's
 * targets for unseen patients (AF time Se and +P >= 90 %, >= 80 % of VT episodes found, at most
 * one false VT episode per 2 hours) are todos where DS1 does not reach them.
 */
import t from 'tap'
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { readRecord, readAnnotations } from '../../datasets/wfdb.ts'
import { DS1_RECORDS } from '../../datasets/aami.ts'
import { EcgSynth } from '../../hardware-sim/signals/ecg-synth.ts'
import { runChain, type ChainOptions } from '../../signal/record-run.ts'
import { RhythmAnalyzer, type RhythmEpisode } from '../../signal/rhythm.ts'
import { scoreDuration, scoreRhythm } from '../../signal/score-rhythm.ts'
import { vfEpisodes } from '../../signal/score.ts'
import { dataDir as sharedData } from './data.ts'

const FS = 250
const show = (eps: RhythmEpisode[], fs: number) => eps.map((e) => `${(e.start / fs).toFixed(1)}-${(e.end / fs).toFixed(1)} ${e.label}`).join(', ') || 'none'

/** ECGSYN in microvolts at 250 Hz; samples in [from, to) seconds replaced by `flat` (a still line with a little noise). */
function synth(bpm: number, seconds: number, pause?: [number, number]): Int16Array {
  const s = new EcgSynth({ seed: 2, heartRateBpm: bpm })
  const x = new Int16Array(FS * seconds)
  for (let i = 0; i < x.length; i++) {
    const paused = pause && i >= pause[0] * FS && i < pause[1] * FS
    x[i] = paused ? ((i * 7919) % 11) - 5 : Math.round(s.mv(i * 4) * 1000)
  }
  return x
}

const labels = (x: Int16Array, o?: ChainOptions) => runChain(x, FS, o).episodes

t.test('rate limits: BRADY under 50, TACHY over 120 bpm (defaults), none at 72; the limits are options', async (t) => {
  const slow = labels(synth(40, 60))
  t.ok(slow.length === 1 && slow[0]!.label === 'BRADY' && slow[0]!.start <= 10 * FS && slow[0]!.end === 60 * FS, `40 bpm: ${show(slow, FS)}`)
  const fast = labels(synth(150, 60))
  t.ok(fast.length === 1 && fast[0]!.label === 'TACHY' && fast[0]!.start <= 10 * FS, `150 bpm: ${show(fast, FS)}`)
  t.same(labels(synth(72, 60)), [], '72 bpm: no episode')
  t.same(labels(synth(40, 60), { bradyBpm: 35 }), [], '40 bpm with a 35 bpm limit: no episode')
  t.equal(labels(synth(72, 60), { tachyBpm: 60 })[0]?.label, 'TACHY', '72 bpm with a 60 bpm limit: TACHY')
  t.throws(() => new RhythmAnalyzer({ fs: FS, bradyBpm: 100, tachyBpm: 90 }), /bradyBpm < tachyBpm/)
})

t.test('asystole: no QRS for 4 s or more with the leads on, from the last beat to the next', async (t) => {
  const eps = labels(synth(72, 40, [15, 25]))
  const a = eps.filter((e) => e.label === 'ASYSTOLE')
  t.equal(a.length, 1, show(eps, FS))
  t.ok(a[0]!.start > 13.5 * FS && a[0]!.start <= 15 * FS, `starts at the last beat (${(a[0]!.start / FS).toFixed(2)} s)`)
  t.ok(a[0]!.end >= 25 * FS && a[0]!.end < 26.5 * FS, `ends at the first beat after it (${(a[0]!.end / FS).toFixed(2)} s)`)
  t.notOk(eps.some((e) => e.label === 'VF' || e.label === 'VT' || e.label === 'AF'), 'no other call')
  t.same(labels(synth(72, 40, [15, 18])).filter((e) => e.label === 'ASYSTOLE'), [], 'a 3 s pause is no asystole')
})

t.test('leads off end every episode: nothing is judged across missing signal', async (t) => {
  const got: RhythmEpisode[] = []
  const r = new RhythmAnalyzer({ fs: FS, onEpisode: (e) => got.push(e) })
  for (let i = 0; i < 8 * FS; i++) r.push(0, true)
  for (let s = 1; s <= 8; s++) r.second(undefined, 0)
  t.equal(r.active(), 'ASYSTOLE', 'a flat line with the leads on: asystole')
  for (let i = 0; i < FS; i++) r.push(0, false)
  t.equal(r.active(), '', 'leads off: nothing active')
  t.equal(got.length, 1, 'the asystole episode ended where the leads came off')
  t.equal(got[0]!.end, 8 * FS)
})

t.test('VF: the Creighton record cu01 (sinus, then VF from 214 s to the end)', async (t) => {
  const path = join(sharedData, 'ecg', 'cudb', 'cu01')
  const r = readRecord(path)
  const run = runChain(r.samples[0]!, r.fs)
  const vf = run.episodes.filter((e) => e.label === 'VF')
  const ref = vfEpisodes(readAnnotations(path), r.samples[0]!.length).map(([start, end]) => ({ start, end }))
  const d = scoreDuration(ref, vf)
  t.comment(`VF called ${(d.called / r.fs).toFixed(0)} s, of the reference's ${(d.reference / r.fs).toFixed(0)} s: ${(d.both / r.fs).toFixed(0)} s`)
  t.ok(d.both / d.reference >= 0.5, `VF over at least half the VF time (${((100 * d.both) / d.reference).toFixed(0)} %)`)
  t.ok(vf.length > 0 && vf[0]!.start >= 200 * r.fs && vf[0]!.start <= 230 * r.fs, `first VF call at ${(vf[0]!.start / r.fs).toFixed(0)} s (onset 214 s)`)
  t.notOk(run.episodes.some((e) => e.end < 212 * r.fs && e.label !== 'TACHY'), `before the onset: ${show(run.episodes.filter((e) => e.end < 212 * r.fs), r.fs)}`)
})

t.test('no VF called on any MIT-BIH record we have but 207 (ventricular flutter)', async (t) => {
  for (const rec of ['100', '103', '105', ...DS1_RECORDS]) {
    if (rec === '207') continue
    const r = readRecord(join(sharedData, 'ecg', 'mitdb', rec))
    const vf = runChain(r.samples[0]!, r.fs).episodes.filter((e) => e.label === 'VF')
    t.equal(vf.length, 0, `${rec}: ${show(vf, r.fs)}`)
  }
})

t.test('NSTDB noise alone (muscle, electrode motion, baseline wander): NOISE, never a rhythm call', async (t) => {
  for (const n of ['ma', 'bw']) {
    const r = readRecord(join(sharedData, 'ecg', 'nstdb', n))
    const eps = runChain(r.samples[0]!, r.fs).episodes
    const calls = eps.filter((e) => e.label === 'AF' || e.label === 'VT' || e.label === 'VF')
    t.same(calls, [], `${n}: no AF, VT or VF (${show(calls, r.fs)})`)
    if (n === 'ma') t.ok(eps.some((e) => e.label === 'NOISE'), `${n}: NOISE called (${eps.filter((e) => e.label === 'NOISE').length} episodes)`)
  }
})

t.test('DS1: AF time and VT episodes against the rhythm annotations', async (t) => {
  let afRef = 0, afCalled = 0, afBoth = 0, vtRef = 0, vtFound = 0, vtFalse = 0, hours = 0
  for (const rec of DS1_RECORDS) {
    const path = join(sharedData, 'ecg', 'mitdb', rec)
    const r = readRecord(path)
    const x = r.samples[0]!
    const ann = readAnnotations(path)
    const run = runChain(x, r.fs)
    const { af, vt } = scoreRhythm(ann, run.episodes, x.length, r.fs)
    afRef += af.reference; afCalled += af.called; afBoth += af.both
    vtRef += vt.reference; vtFound += vt.found; vtFalse += vt.falseCalls
    hours += x.length / r.fs / 3600
  }
  const se = afBoth / afRef, ppv = afBoth / afCalled
  t.comment(`AF time Se ${(100 * se).toFixed(1)} % +P ${(100 * ppv).toFixed(1)} %; VT episodes found ${vtFound} of ${vtRef}, ${vtFalse} false in ${hours.toFixed(1)} h`)
  t.ok(se >= 0.9 && ppv >= 0.6, 'AF Se >= 90 %, +P >= 60 %')
  t.ok(vtFound >= 18 && vtFalse <= 8, 'VT: 18 or more episodes found, 8 or fewer false')
  t.ok(ppv >= 0.9, 'AF +P >= 90 % (target)', { todo: ppv >= 0.9 ? undefined : `${(100 * ppv).toFixed(1)} %: RR irregularity alone also calls frequent ectopy (201, 207) and flutter with varying block (203)` })
  t.ok(vtFound >= 0.8 * vtRef, 'VT found >= 80 % (target)', { todo: vtFound >= 0.8 * vtRef ? undefined : `${vtFound}/${vtRef}: runs with V beats called N or S, and slow VT (223) under the 100 bpm the definition asks` })
  t.ok(vtFalse <= hours / 2, 'at most 1 false VT per 2 hours (target)', { todo: vtFalse <= hours / 2 ? undefined : `${vtFalse} in ${hours.toFixed(1)} h` })
})

t.test('CinC 2017 (30-60 s single-lead records): AF is called in most AF records and few others', async (t) => {
  const dir = join(sharedData, 'ecg', 'cinc2017', 'training2017')
  const rows = readFileSync(join(dir, 'REFERENCE-v3.dev.csv'), 'utf8').trim().split(/\r?\n/).map((l) => l.split(','))
  const called: Record<string, [number, number]> = {}
  for (const [rec, label] of rows) {
    const r = readRecord(join(dir, rec!))
    const af = runChain(r.samples[0]!, r.fs, { minAfSeconds: 10 }).episodes.some((e) => e.label === 'AF')
    const c = (called[label!] ??= [0, 0])
    c[0]++
    if (af) c[1]++
  }
  t.comment(Object.entries(called).map(([k, [n, a]]) => `${k}: AF in ${a} of ${n}`).join('; '))
  t.ok(called.A![1] / called.A![0] >= 0.55, 'AF called in 55 % or more of the AF records')
  t.ok(called.N![1] / called.N![0] <= 0.03, 'and in 3 % or fewer of the normal ones')
})
