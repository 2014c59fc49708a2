/**
 * Signal-processing benchmark: `npx tsx bench/signal.ts [--quick]`.
 *
 * Prints
 *  1. QRS detection on MIT-BIH 100, 101, 103, 105 (EC57, 150 ms, whole record):
 *     TP/FN/FP, Se, +P per record and gross, and Node throughput;
 *  2. the same with NSTDB `ma` and `bw` noise mixed at 6 dB (and 0 dB);
 *  3. SpO2 and pulse-rate errors on simulator signals (clean, motion bursts,
 *     mild continuous motion), per SpO2 level;
 *  4. BIDMC 01–05 pulse-rate MAE against the monitor's PULSE numerics;
 *  5. board cost: JavaScript statements and AST nodes executed per second of
 *     signal (counted by instrumenting the compiled library) and typed-array
 *     memory, with the JsVar estimate and the ESP32 headroom this implies.
 */
import { join, dirname } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as esbuild from 'esbuild'
import * as acorn from 'acorn'
import * as walk from 'acorn-walk'
import { readRecord, readAnnotations, BEAT_CODES } from '../datasets/wfdb.ts'
import { readBidmcNumerics, readBidmcSignals } from '../datasets/bidmc.ts'
import { QrsDetector } from '../signal/qrs.ts'
import { PpgMonitor, type PpgReading } from '../signal/ppg.ts'
import { scoreBeats } from '../signal/score.ts'
import { mixNoise } from '../hardware-sim/signals/noise.ts'
import { PpgModel, renderPpg, type MotionOptions } from '../hardware-sim/signals/ppg.ts'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const data = [process.env.MHEALTH_SHARED_DATA ?? '', join(root, '..', 'shared', 'data'), join(root, '..', '..', 'shared', 'data')].find((p) => p && existsSync(p))
if (!data) throw new Error('shared data folder not found; set MHEALTH_SHARED_DATA')
const mitdb = join(data, 'ecg', 'mitdb')
const RECORDS = ['100', '101', '103', '105']
const pct = (x: number): string => (100 * x).toFixed(2)

function detect(x: ArrayLike<number>, fs: number): number[] {
  const out: number[] = []
  const d = new QrsDetector({ fs, onBeat: (r) => out.push(r) })
  for (let i = 0; i < x.length; i++) d.push(x[i])
  d.finish()
  return out
}

function refBeats(rec: string): number[] {
  return readAnnotations(join(mitdb, rec)).filter((a) => BEAT_CODES.has(a.code)).map((a) => a.sample)
}

function table(title: string, mix?: (rec: string, x: Int16Array, ref: number[]) => Int16Array): void {
  console.log(`\n${title}`)
  console.log('| record | TP | FN | FP | Se % | +P % | Node samples/s |')
  console.log('|---|---:|---:|---:|---:|---:|---:|')
  let tp = 0, fn = 0, fp = 0
  for (const rec of RECORDS) {
    const r = readRecord(join(mitdb, rec))
    const ref = refBeats(rec)
    const x = mix ? mix(rec, r.samples[0], ref) : r.samples[0]
    const t0 = process.hrtime.bigint()
    const det = detect(x, r.fs)
    const ns = Number(process.hrtime.bigint() - t0)
    const s = scoreBeats(ref, det, { tolerance: Math.round(0.15 * r.fs) })
    tp += s.tp; fn += s.fn; fp += s.fp
    console.log(`| ${rec} | ${s.tp} | ${s.fn} | ${s.fp} | ${pct(s.se)} | ${pct(s.ppv)} | ${((x.length / ns) * 1e9 / 1e6).toFixed(1)} M |`)
  }
  console.log(`| gross | ${tp} | ${fn} | ${fp} | ${pct(tp / (tp + fn))} | ${pct(tp / (tp + fp))} | |`)
}

function noiseTables(): void {
  for (const nz of ['ma', 'bw']) {
    const noise = readRecord(join(data!, 'ecg', 'nstdb', nz))
    for (const [snr, protocol] of [[6, 'nst'], [6, 'continuous'], [0, 'continuous']] as const) {
      table(`### NSTDB ${nz} at ${snr} dB, ${protocol === 'nst' ? 'nst protocol (clean 5 min, then 2 min noisy / 2 min clean)' : 'noise over the whole record'}`, (rec, x, ref) =>
        mixNoise(x, noise.samples[0], { fs: 360, snrDb: snr, beats: ref, cleanGain: 200, noiseGain: noise.signals[0].gain, protocol }).samples)
    }
  }
}

const PPG_FS = 100

function ppgSweep(label: string, motion: MotionOptions | undefined, seconds: number): void {
  console.log(`\n### SpO2 and pulse rate, ${label} (${seconds} s per case, pulse 40–180 bpm, readings after 15 s)`)
  console.log('| SpO2 % | SpO2 Arms % | bias % | SpO2 reported | pulse max abs err bpm | pulse MAE bpm | pulse reported |')
  console.log('|---:|---:|---:|---:|---:|---:|---:|')
  let se = 0, sn = 0, tot = 0, pn = 0, pmax = 0, psum = 0
  for (const spo2 of [70, 75, 80, 85, 90, 95, 100]) {
    let e2 = 0, eb = 0, n = 0, total = 0, p = 0, pm = 0, ps = 0
    for (const bpm of [40, 60, 90, 120, 150, 180]) {
      const model = new PpgModel({ seed: spo2 * 1000 + bpm, spo2, bpm, motion })
      const sig = renderPpg(model, { fs: PPG_FS, seconds, noiseSeed: spo2 * 1000 + bpm })
      const rs: PpgReading[] = []
      const mon = new PpgMonitor({ fs: PPG_FS, onReading: (r) => rs.push(r) })
      for (let i = 0; i < sig.ir.length; i++) mon.push(sig.red[i], sig.ir[i])
      for (const r of rs) {
        if (r.at < 15 * PPG_FS) continue
        total++
        if (r.spo2 !== undefined) {
          e2 += (r.spo2 - spo2) ** 2
          eb += r.spo2 - spo2
          n++
        }
        if (r.pulseRate !== undefined) {
          const err = Math.abs(r.pulseRate - model.trueRate(((r.at - 8 * PPG_FS) * 1000) / PPG_FS, (r.at * 1000) / PPG_FS)!)
          p++
          ps += err
          if (err > pm) pm = err
        }
      }
    }
    se += e2; sn += n; tot += total; pn += p; psum += ps
    if (pm > pmax) pmax = pm
    const f = (v: number, d = 2): string => (Number.isFinite(v) ? v.toFixed(d) : '–')
    console.log(`| ${spo2} | ${f(Math.sqrt(e2 / n))} | ${f(eb / n)} | ${((100 * n) / total).toFixed(0)} % | ${p ? f(pm) : '–'} | ${f(ps / p)} | ${((100 * p) / total).toFixed(0)} % |`)
  }
  console.log(`| all | ${sn ? Math.sqrt(se / sn).toFixed(2) : '–'} | | ${((100 * sn) / tot).toFixed(0)} % | ${pn ? pmax.toFixed(2) : '–'} | ${pn ? (psum / pn).toFixed(2) : '–'} | ${((100 * pn) / tot).toFixed(0)} % |`)
}

function bidmcTable(): void {
  const dir = join(data!, 'ppg', 'bidmc', 'bidmc_csv')
  console.log('\n### BIDMC pulse rate from PLETH (125 Hz) vs monitor PULSE numerics')
  console.log('| record | MAE bpm | max abs err bpm | windows with a rate |')
  console.log('|---|---:|---:|---:|')
  let s = 0, c = 0
  for (let rec = 1; rec <= 5; rec++) {
    const pleth = readBidmcSignals(dir, rec).columns['PLETH']
    const pulse = readBidmcNumerics(dir, rec).columns['PULSE']
    let e = 0, n = 0, w = 0, mx = 0
    const mon = new PpgMonitor({
      fs: 125,
      // PLETH is normalised, not ADC counts: no finger-off level, no clipping
      minDc: 1,
      fullScale: Infinity,
      onReading: (r) => {
        const ref = pulse[Math.floor(r.at / 125) - 1]
        if (r.at < 10 * 125 || !Number.isFinite(ref)) return
        w++
        if (r.pulseRate === undefined) return
        const err = Math.abs(r.pulseRate - ref)
        e += err
        n++
        if (err > mx) mx = err
      },
    })
    for (let i = 0; i < pleth.length; i++) mon.push(10 - pleth[i], 10 - pleth[i])
    s += e; c += n
    console.log(`| bidmc_${String(rec).padStart(2, '0')} | ${(e / n).toFixed(2)} | ${mx.toFixed(1)} | ${n}/${w} |`)
  }
  console.log(`| all | ${(s / c).toFixed(2)} | | |`)
}

// ---- cost on the board -------------------------------------------------------------

interface Counter { s: number; n: number }

/**
 * Compiles a signal module to plain JS (esbuild) and inserts a counter before
 * every statement (acorn): `s` counts statements executed, `n` the AST nodes
 * of their expressions (a proxy for interpreter work: Espruino walks the
 * source, so cost grows with the nodes it evaluates). Loop bodies also count
 * their test/update once per iteration.
 */
let instrumentedCount = 0
async function instrumented(entry: string): Promise<{ mod: Record<string, any>; counter: Counter }> {
  const cv = `__c${instrumentedCount++}`
  const out = await esbuild.build({ entryPoints: [join(root, entry)], bundle: true, format: 'esm', write: false, target: 'es2015' })
  const src = out.outputFiles[0].text
  const ast = acorn.parse(src, { ecmaVersion: 2022, sourceType: 'module' }) as any
  const inserts: Array<{ pos: number; text: string }> = []
  const weight = (node: any): number => {
    let k = 0
    walk.full(node, (n: any) => {
      if (n.type !== 'BlockStatement' && !/Function/.test(n.type)) k++
    }, undefined as any)
    return k
  }
  const ownWeight = (st: any): number => {
    switch (st.type) {
      case 'ExpressionStatement': return weight(st.expression)
      case 'VariableDeclaration': return weight(st)
      case 'ReturnStatement': return 1 + (st.argument ? weight(st.argument) : 0)
      case 'IfStatement': return 1 + weight(st.test)
      case 'ForStatement': return 1 + (st.init ? weight(st.init) : 0)
      case 'WhileStatement': case 'DoWhileStatement': return 1
      default: return 1
    }
  }
  const isStmt = (n: any): boolean => /Statement$|Declaration$/.test(n.type) && n.type !== 'FunctionDeclaration' && n.type !== 'ClassDeclaration' && n.type !== 'BlockStatement' && n.type !== 'ExportNamedDeclaration' && n.type !== 'ImportDeclaration'
  const count = (st: any): string => `${cv}.s++;${cv}.n+=${ownWeight(st)};`
  const loopExtra = (lp: any): string => {
    let k = 1
    if (lp.test) k += weight(lp.test)
    if (lp.update) k += weight(lp.update)
    return `${cv}.s++;${cv}.n+=${k};`
  }
  walk.ancestor(ast, {
    Statement(node: any, _state: unknown, anc: any[]) {
      const parent = anc[anc.length - 2]
      if (!parent) return
      const inBlock = parent.type === 'BlockStatement' || parent.type === 'Program' || parent.type === 'SwitchCase'
      if (!isStmt(node)) {
        if (node.type === 'BlockStatement' && /^(For|While|DoWhile)Statement$/.test(parent.type) && parent.body === node) inserts.push({ pos: node.start + 1, text: loopExtra(parent) })
        return
      }
      if (inBlock && parent.type !== 'Program') inserts.push({ pos: node.start, text: count(node) })
      else if (!inBlock) {
        // a single statement as if/loop body: wrap it so it can be counted
        const extra = /^(For|While|DoWhile)Statement$/.test(parent.type) ? loopExtra(parent) : ''
        inserts.push({ pos: node.start, text: '{' + extra + count(node) })
        inserts.push({ pos: node.end, text: '}' })
      }
    },
  } as any)
  inserts.sort((a, b) => b.pos - a.pos)
  let code = src
  for (const ins of inserts) code = code.slice(0, ins.pos) + ins.text + code.slice(ins.pos)
  const counter: Counter = { s: 0, n: 0 }
  ;(globalThis as any)[cv] = counter
  const dir = mkdtempSync(join(tmpdir(), 'sigbench-'))
  const file = join(dir, 'mod.mjs')
  writeFileSync(file, code)
  const mod = await import(pathToFileURL(file).href)
  return { mod, counter }
}

/** Bytes held in typed arrays reachable from an object's own fields, and the number of fields. */
function memory(obj: any): { bytes: number; arrays: number; fields: number; jsvars: number } {
  let bytes = 0, arrays = 0, fields = 0, jsvars = 0
  const seen = new Set<any>()
  const visit = (o: any): void => {
    if (!o || typeof o !== 'object' || seen.has(o)) return
    seen.add(o)
    for (const k of Object.keys(o)) {
      const v = o[k]
      fields++
      jsvars += 2 // property name + value
      if (ArrayBuffer.isView(v)) {
        bytes += v.byteLength
        arrays++
        jsvars += Math.ceil(v.byteLength / 12) + 1 // Espruino: flat string of 12 bytes per JsVar, plus the view
      } else if (v && typeof v === 'object' && !(typeof v === 'function')) visit(v)
    }
  }
  visit(obj)
  return { bytes, arrays, fields, jsvars }
}

async function cost(): Promise<void> {
  console.log('\n### Cost on the board (per second of signal, instrumented JS; Espruino estimate)')
  const q = await instrumented('signal/qrs.ts')
  const p = await instrumented('signal/ppg.ts')
  const rec = readRecord(join(mitdb, '100'))
  const x = rec.samples[0]
  // record 100 resampled to the board's 250 Hz
  const fs2 = 250
  const n2 = Math.floor(((x.length - 1) * fs2) / rec.fs)
  const y = new Int16Array(n2)
  for (let i = 0; i < n2; i++) {
    const pos = (i * rec.fs) / fs2
    const k = Math.floor(pos)
    y[i] = Math.round(x[k] + (x[k + 1] - x[k]) * (pos - k))
  }
  const rows: string[] = []
  const ASSUMED = [1e4, 5e4, 1e5]
  const line = (name: string, secs: number, c: Counter, mem: ReturnType<typeof memory>, peakPerSec: number): void => {
    const sps = c.s / secs
    const nps = c.n / secs
    const cpu = ASSUMED.map((a) => `${((100 * sps) / a).toFixed(0)} %`).join(' / ')
    rows.push(`| ${name} | ${Math.round(sps).toLocaleString('en')} | ${Math.round(peakPerSec).toLocaleString('en')} | ${Math.round(nps).toLocaleString('en')} | ${cpu} | ${mem.bytes} B in ${mem.arrays} typed arrays | ~${mem.jsvars} JsVars (${Math.round((mem.jsvars * 14) / 1024 * 10) / 10} KB) |`)
  }
  for (const [name, sig, fs] of [['QRS detector, 250 Hz (mitdb 100 resampled)', y, fs2], ['QRS detector, 360 Hz (mitdb 100)', x, rec.fs]] as const) {
    q.counter.s = q.counter.n = 0
    const d = new q.mod.QrsDetector({ fs, onBeat: () => {} })
    // worst one-second block as well as the mean
    let peak = 0
    let last = 0
    for (let i = 0; i < sig.length; i++) {
      d.push(sig[i])
      if ((i + 1) % fs === 0) {
        if (q.counter.s - last > peak) peak = q.counter.s - last
        last = q.counter.s
      }
    }
    line(name, sig.length / fs, q.counter, memory(d), peak)
  }
  {
    const model = new PpgModel({ seed: 1, spo2: 95, bpm: 75 })
    const sig = renderPpg(model, { fs: 100, seconds: 120 })
    p.counter.s = p.counter.n = 0
    const m = new p.mod.PpgMonitor({ fs: 100, onReading: () => {} })
    let peak = 0
    let last = 0
    for (let i = 0; i < sig.ir.length; i++) {
      m.push(sig.red[i], sig.ir[i])
      if ((i + 1) % 100 === 0) {
        if (p.counter.s - last > peak) peak = p.counter.s - last
        last = p.counter.s
      }
    }
    line('PPG monitor, 100 Hz red+IR', 120, p.counter, memory(m), peak)
  }
  console.log('| part | statements/s (mean) | statements in worst 1 s | AST nodes/s | CPU share if Espruino runs 10k / 50k / 100k statements/s | typed arrays | memory estimate |')
  console.log('|---|---:|---:|---:|---:|---:|---:|')
  for (const r of rows) console.log(r)
}

const quick = process.argv.includes('--quick')
console.log('## Signal-processing benchmark')
table('### QRS detection, MIT-BIH, channel 0 (MLII), EC57 150 ms, whole record')
if (!quick) noiseTables()
ppgSweep('clean', undefined, 45)
if (!quick) {
  ppgSweep('motion bursts (amplitude = pulse, 10 s every 30 s)', { amplitude: 0.02, intervals: [[10000, 20000], [40000, 50000]] }, 45)
  ppgSweep('mild continuous motion (a quarter of the pulse)', { amplitude: 0.005 }, 45)
  ppgSweep('heavy continuous motion (as large as the pulse)', { amplitude: 0.02 }, 45)
}
bidmcTable()
await cost()
