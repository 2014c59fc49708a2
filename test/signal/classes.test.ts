/**
 * Beat classes (signal/beat-class.ts) on the MIT-BIH records we have, scored per EC57 through
 * the streaming chain the gateway runs (signal/record-run.ts). The model was trained on DS1, so
 * DS1 figures are optimistic: the floors below guard against regressions, and the issue's
 * targets for unseen patients (VEB Se and +P >= 90 %, SVEB Se >= 70 %, +P >= 50 %) are todos
 * where DS1 does not reach them yet. scripts/train-beat-model.ts --check proves the shipped
 * model is what training on DS1 gives.
 */
import t from 'tap'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { readRecord, readAnnotations } from '../../datasets/wfdb.ts'
import { aamiClass, DS1_RECORDS } from '../../datasets/aami.ts'
import { runChain } from '../../signal/record-run.ts'
import { scoreClasses, addClassScores, type ClassScore } from '../../signal/score-classes.ts'
import { vfEpisodes } from '../../signal/score.ts'
import { BeatClassifier, type BeatClass } from '../../signal/beat-class.ts'
import { dataDir as sharedData } from './data.ts'
import { repoRoot } from '../helpers/cli.ts'

const mitdb = join(sharedData, 'ecg', 'mitdb')
const pct = (x: number) => (100 * x).toFixed(2) + ' %'

function score(rec: string): ClassScore {
  const path = join(mitdb, rec)
  const r = readRecord(path)
  const run = runChain(r.samples[0]!, r.fs)
  const ann = readAnnotations(path)
  const ref = ann.filter((a) => aamiClass(a.code) !== undefined).map((a) => ({ sample: a.sample, cls: aamiClass(a.code)! }))
  return scoreClasses(ref, run.classes, Math.round(0.15 * r.fs), vfEpisodes(ann, r.samples[0]!.length))
}

t.test('DS1 gross VEB and SVEB (EC57, 150 ms, VF episodes left out)', async (t) => {
  let total: ClassScore | undefined
  for (const rec of DS1_RECORDS) {
    const s = score(rec)
    total = total ? addClassScores(total, s) : s
  }
  const v = total!.veb
  const s = total!.sveb
  t.comment(`VEB Se ${pct(v.se)} +P ${pct(v.ppv)} (TP ${v.tp} FN ${v.fn} FP ${v.fp}); SVEB Se ${pct(s.se)} +P ${pct(s.ppv)} (TP ${s.tp} FN ${s.fn} FP ${s.fp})`)
  t.ok(v.se >= 0.9 && v.ppv >= 0.83, `VEB Se ${pct(v.se)} >= 90 %, +P ${pct(v.ppv)} >= 83 %`)
  t.ok(s.se >= 0.45 && s.ppv >= 0.65, `SVEB Se ${pct(s.se)} >= 45 %, +P ${pct(s.ppv)} >= 65 %`)
  t.ok(v.ppv >= 0.9, 'VEB +P >= 90 % (target)', { todo: v.ppv >= 0.9 ? undefined : `DS1 VEB +P is ${pct(v.ppv)}` })
  t.ok(s.se >= 0.7, 'SVEB Se >= 70 % (target)', { todo: s.se >= 0.7 ? undefined : `DS1 SVEB Se is ${pct(s.se)}: an S beat that is not early looks normal by RR and QRS alone` })
})

t.test('100, 103 and 105 (DS2 records, never trained on): no false V beyond a handful', async (t) => {
  for (const rec of ['100', '103', '105']) {
    const s = score(rec)
    const fpPerHour = s.veb.fp / 0.5
    t.comment(`${rec}: VEB TP ${s.veb.tp} FN ${s.veb.fn} FP ${s.veb.fp}; SVEB TP ${s.sveb.tp} FN ${s.sveb.fn} FP ${s.sveb.fp}`)
    // 105's noise bursts are taken for odd-shaped beats: it is the worst, at ~80 false V an hour
    t.ok(fpPerHour <= (rec === '105' ? 100 : 4), `${rec}: ${fpPerHour} false V per hour`)
  }
})

t.test('the classifier: one beat late, the first beat of a run judged by shape, finish() and reset()', async (t) => {
  const got: Array<[number, BeatClass]> = []
  const fs = 250
  const c = new BeatClassifier({ fs, onClass: (r, cls) => got.push([r, cls]) })
  // a regular train of identical narrow beats, every 0.8 s
  const beatAt = (i: number) => 100 + i * 200
  let next = 0
  for (let i = 0; i < 250 * 8; i++) {
    const k = Math.round((i - 100) / 200)
    const d = i - beatAt(k)
    c.push(k >= 0 && Math.abs(d) <= 5 ? 1000 - 180 * Math.abs(d) : 0)
    // the detector reports a beat ~0.3 s after its R
    if (i === beatAt(next) + 75) {
      c.beat(beatAt(next), next === 0 ? 0 : 200)
      next++
    }
  }
  t.equal(got.length, next - 1, 'every beat but the last is classified when the next arrives')
  t.same(got[0], [100, 'N'], 'the first beat: no rhythm yet, its shape is the dominant one')
  t.ok(got.every((g) => g[1] === 'N'), 'a regular train of one shape is all N')
  c.finish()
  t.equal(got.length, next, 'finish() classifies the last')
  t.equal(c.counts[0], next, 'counts: N')
  c.reset()
  t.equal(got.length, next, 'reset() after finish() emits nothing twice')
})

t.test('the shipped model is what scripts/train-beat-model.ts gives from DS1', async (t) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'scripts', 'train-beat-model.ts'), '--check', '--data', mitdb], { encoding: 'utf8', cwd: repoRoot })
  t.equal(r.status, 0, r.stderr.split('\n').slice(-3).join(' '))
  t.match(r.stderr, /trained on the even records, scored on the others: VEB Se [\d.]+ \+P [\d.]+, SVEB Se [\d.]+ \+P [\d.]+/)
})
