/**
 * Trains the beat-class model (signal/beat-model.ts) on the MIT-BIH DS1
 * records only: the streaming chain the gateway runs (QRS detector, then
 * signal/beat-class.ts's features) over each record, each detected beat
 * labelled with the EC57 class of the reference beat within 150 ms, then a
 * softmax regression over N, S and V with class weights (S and V are rare),
 * fitted by full-batch Adam from zero: deterministic, the same file every run.
 * Also prints a two-fold estimate across patients (train on half the DS1
 * records, score on the other half), the honest figure for unseen patients.
 *
 * Run: npx tsx scripts/train-beat-model.ts [--data DIR] [--out FILE] [--check]
 */
import { writeFileSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { readRecord, readAnnotations } from '../datasets/wfdb.ts'
import { aamiClass, DS1_RECORDS } from '../datasets/aami.ts'
import { QrsDetector } from '../signal/qrs.ts'
import { BeatClassifier, FEATURES, MODEL_CLASSES, svebPlausible, vebPlausible } from '../signal/beat-class.ts'
import { vfEpisodes } from '../signal/score.ts'

const ITERATIONS = 400
const L2 = 1e-3
/** Class weight = (share of the class) ^ -WEIGHT_POWER: between unweighted (0) and balanced (1). */
const WEIGHT_POWER = 0.7

interface Sample { x: Float64Array; y: number; rec: string }

export function collect(dir: string, records: ReadonlyArray<string>, log: (s: string) => void): Sample[] {
  const out: Sample[] = []
  for (const rec of records) {
    const path = join(dir, rec)
    const r = readRecord(path)
    const x = r.samples[0]!
    const feats: Array<{ r: number; f: Float64Array }> = []
    const cl = new BeatClassifier({ fs: r.fs, onFeatures: (ri, f) => feats.push({ r: ri, f: Float64Array.from(f) }) })
    const d = new QrsDetector({ fs: r.fs, onBeat: (ri, rr) => cl.beat(ri, rr) })
    for (let i = 0; i < x.length; i++) {
      cl.push(x[i]!)
      d.push(x[i]!)
    }
    d.finish()
    cl.finish()
    const all = readAnnotations(path)
    const vf = vfEpisodes(all, x.length)
    const ann = all.filter((a) => aamiClass(a.code) !== undefined)
    const tol = Math.round(0.15 * r.fs)
    let j = 0
    let n = 0
    for (const b of feats) {
      if (vf.some(([a, e]) => b.r >= a && b.r < e)) continue
      while (j < ann.length && ann[j]!.sample < b.r - tol) j++
      if (j >= ann.length || Math.abs(ann[j]!.sample - b.r) > tol) continue
      const y = MODEL_CLASSES.indexOf(aamiClass(ann[j]!.code)!)
      if (y < 0) continue
      out.push({ x: b.f, y, rec })
      n++
    }
    log(`${rec}: ${n} labelled beats`)
  }
  return out
}

export interface Model { mean: number[]; scale: number[]; weights: number[] }

export function train(data: ReadonlyArray<Sample>): Model {
  const D = FEATURES
  const K = MODEL_CLASSES.length
  const mean = new Array<number>(D).fill(0)
  const scale = new Array<number>(D).fill(1)
  for (let i = 1; i < D; i++) {
    let s = 0, s2 = 0
    for (const d of data) { s += d.x[i]!; s2 += d.x[i]! * d.x[i]! }
    mean[i] = s / data.length
    scale[i] = Math.sqrt(Math.max(0, s2 / data.length - mean[i]! * mean[i]!)) || 1
  }
  const X = data.map((d) => { const z = new Float64Array(D); z[0] = 1; for (let i = 1; i < D; i++) z[i] = (d.x[i]! - mean[i]!) / scale[i]!; return z })
  const count = new Array<number>(K).fill(0)
  for (const d of data) count[d.y]!++
  const cw = count.map((c) => Math.pow(data.length / (K * Math.max(1, c)), WEIGHT_POWER))
  let wsum = 0
  for (const d of data) wsum += cw[d.y]!
  const W = new Float64Array(K * D), m1 = new Float64Array(K * D), m2 = new Float64Array(K * D), G = new Float64Array(K * D), z = new Float64Array(K)
  for (let it = 1; it <= ITERATIONS; it++) {
    G.fill(0)
    for (let n = 0; n < X.length; n++) {
      const x = X[n]!, y = data[n]!.y
      let m = -Infinity
      for (let k = 0; k < K; k++) { let s = 0; for (let i = 0; i < D; i++) s += W[k * D + i]! * x[i]!; z[k] = s; if (s > m) m = s }
      let s = 0
      for (let k = 0; k < K; k++) { z[k] = Math.exp(z[k]! - m); s += z[k]! }
      for (let k = 0; k < K; k++) { const g = ((z[k]! / s - (k === y ? 1 : 0)) * cw[y]!) / wsum; for (let i = 0; i < D; i++) G[k * D + i] += g * x[i]! }
    }
    for (let j = 0; j < K * D; j++) {
      const g = G[j]! + (j % D ? L2 * W[j]! : 0)
      m1[j] = 0.9 * m1[j]! + 0.1 * g
      m2[j] = 0.999 * m2[j]! + 0.001 * g * g
      W[j] -= (0.05 * (m1[j]! / (1 - 0.9 ** it))) / (Math.sqrt(m2[j]! / (1 - 0.999 ** it)) + 1e-8)
    }
  }
  // fold the standardization's offset into the bias so inference is one dot product per class
  const weights = Array.from(W, (v) => +v.toPrecision(6))
  return { mean: mean.map((v) => +v.toPrecision(6)), scale: scale.map((v) => +v.toPrecision(6)), weights }
}

function predict(m: Model, x: Float64Array): number {
  let best = 0, bz = -Infinity
  for (let k = 0; k < MODEL_CLASSES.length; k++) {
    let s = m.weights[k * FEATURES]!
    for (let i = 1; i < FEATURES; i++) s += (m.weights[k * FEATURES + i]! * (x[i]! - m.mean[i]!)) / m.scale[i]!
    if (s > bz) { bz = s; best = k }
  }
  return best
}

/** The shipped decision: the model, then the S and V gates (beat-class.ts). */
function decide(m: Model, x: Float64Array): number {
  const k = predict(m, x)
  const c = MODEL_CLASSES[k]
  return (c === 'S' && !svebPlausible(x)) || (c === 'V' && !vebPlausible(x)) ? MODEL_CLASSES.indexOf('N') : k
}

function figures(m: Model, data: ReadonlyArray<Sample>): string {
  const M = MODEL_CLASSES.map(() => MODEL_CLASSES.map(() => 0))
  for (const d of data) M[d.y]![decide(m, d.x)]!++
  const pct = (a: number, b: number) => (b > 0 ? ((100 * a) / b).toFixed(1) : '-')
  const [N, S, V] = [0, 1, 2]
  return `VEB Se ${pct(M[V]![V]!, M[V]![N]! + M[V]![S]! + M[V]![V]!)} +P ${pct(M[V]![V]!, M[N]![V]! + M[S]![V]! + M[V]![V]!)}, ` +
    `SVEB Se ${pct(M[S]![S]!, M[S]![N]! + M[S]![S]! + M[S]![V]!)} +P ${pct(M[S]![S]!, M[N]![S]! + M[S]![S]! + M[V]![S]!)}`
}

export function modelSource(m: Model): string {
  return [
    '/**',
    ' * Weights of the beat-class model (beat-class.ts): a softmax over N, S, V of the',
    ' * standardized features ((f - mean) / scale; weights row per class, bias first).',
    ' * Generated by scripts/train-beat-model.ts from the MIT-BIH DS1 records only; do not edit by hand.',
    ' */',
    'export const BEAT_MODEL = {',
    `  classes: ${JSON.stringify(MODEL_CLASSES)},`,
    `  mean: ${JSON.stringify(m.mean)},`,
    `  scale: ${JSON.stringify(m.scale)},`,
    `  weights: ${JSON.stringify(m.weights)},`,
    '}',
    '',
  ].join('\n')
}

const HELP = `Usage: npx tsx scripts/train-beat-model.ts [--data DIR] [--out FILE] [--check]

Trains the beat-class model on the MIT-BIH DS1 records (inter-patient split) and
writes it as TypeScript. Prints a two-fold estimate across patients first.

  --data DIR   MIT-BIH folder (default ../shared/data/ecg/mitdb)
  --out FILE   where to write (default signal/beat-model.ts)
  --check      write nothing; exit 1 if the shipped model differs from a fresh training
`

async function main(): Promise<number> {
  let p
  try {
    p = parseArgs({ options: { data: { type: 'string' }, out: { type: 'string' }, check: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } })
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${HELP}`)
    return 2
  }
  if (p.values.help) { process.stdout.write(HELP); return 0 }
  const root = resolve(import.meta.dirname, '..')
  const dir = p.values.data ?? join(root, '..', 'shared', 'data', 'ecg', 'mitdb')
  const outFile = p.values.out ?? join(root, 'signal', 'beat-model.ts')
  const log = (s: string) => process.stderr.write(s + '\n')
  const data = collect(dir, DS1_RECORDS, log)
  const half = DS1_RECORDS.filter((_, i) => i % 2 === 0)
  for (const [name, tr] of [['even records', half], ['odd records', DS1_RECORDS.filter((r) => !half.includes(r))]] as const) {
    const m = train(data.filter((d) => tr.includes(d.rec)))
    log(`trained on the ${name}, scored on the others: ${figures(m, data.filter((d) => !tr.includes(d.rec)))}`)
  }
  const model = train(data)
  log(`trained on all of DS1, scored on DS1 (optimistic): ${figures(model, data)}`)
  const src = modelSource(model)
  if (p.values.check) {
    const same = readFileSync(outFile, 'utf8') === src
    log(same ? `${outFile} is what training gives` : `${outFile} differs from a fresh training`)
    return same ? 0 : 1
  }
  writeFileSync(outFile, src)
  log(`wrote ${outFile}`)
  return 0
}

if (import.meta.url === `file://${process.argv[1]}`) process.exit(await main())
