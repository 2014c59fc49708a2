/**
 * Firmware benchmark on the virtual board: `npx tsx bench/firmware.ts [--seconds 60]`.
 *
 * Runs the firmware (SE profile and bare profile) on a fully wired rig
 * (hardware-sim/rig.ts) streaming to the real gateway, and prints
 *  1. bundle bytes and JsVars (loaded, steady state after collection);
 *  2. frame bytes per frame and per second, as stored by the gateway;
 *  3. per-second CPU cost of each stage (sample, frame, sign, send, glue), counted as
 *     JavaScript statements executed by an instrumented copy of the same bundle, with the
 *     CPU share this means at assumed Espruino speeds (10k / 50k / 100k statements/s,
 *     the same scale as bench/signal.ts); native calls (SHA-256, I2C, flash) are not counted;
 *  4. sampling jitter and missed samples: what the virtual board measured (its timers fire
 *     exactly on time, so this shows the firmware's own bookkeeping is right) and the
 *     estimate for a real interpreter: the longest busy stretch (statements run within one
 *     virtual millisecond) delays the next 250 Hz tick by that many statements / speed.
 */
import * as acorn from 'acorn'
import * as walk from 'acorn-walk'
import { buildBundle } from '../firmware/build/bundle.ts'
import { estimateMemory } from '../hardware-sim/bundle-memory.ts'
import { createBoardRig, provisionRig } from '../hardware-sim/rig.ts'
import { startRealGateway } from '../testing/real-gateway.ts'

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}
const SECONDS = arg('--seconds', 60)
const STAGES = ['sample', 'frame', 'sign', 'send', 'glue'] as const
const STAGE_OF: Record<string, number> = {
  'firmware/sampler.ts': 0, 'firmware/drivers/ad8232.ts': 0, 'firmware/drivers/max30102.ts': 0,
  'firmware/framer.ts': 1, 'protocol/portable/cbor.ts': 1, 'protocol/portable/frame.ts': 1, 'protocol/portable/pack.ts': 1, 'protocol/portable/bytes.ts': 1,
  'firmware/signer.ts': 2, 'protocol/portable/cose.ts': 2, 'protocol/portable/hash.ts': 2, 'firmware/drivers/atecc608.ts': 2, 'firmware/crc16.ts': 2, 'protocol/portable/auth-token.ts': 2,
  'firmware/mqtt.ts': 3, 'firmware/mqtt-codec.ts': 3, 'firmware/uplink.ts': 3, 'firmware/store.ts': 3, 'firmware/http-time.ts': 3, 'firmware/bytes.ts': 3,
}
const SPEEDS = [10_000, 50_000, 100_000]

/**
 * The unminified bundle with `__S[stage]++` before every statement that sits in a block,
 * the stage taken from esbuild's `// path.ts` module markers.
 */
async function instrumentedBundle(): Promise<string> {
  const code = (await buildBundle({ minify: false })).code
  const marks: { pos: number; stage: number }[] = []
  const re = /^\s*\/\/ ((?:firmware|protocol)\/[\w/.-]+\.ts)$/gm
  for (let m = re.exec(code); m; m = re.exec(code)) marks.push({ pos: m.index, stage: STAGE_OF[m[1]!] ?? 4 })
  const stageAt = (pos: number): number => {
    let s = 4
    for (const m of marks) if (m.pos <= pos) s = m.stage
    return s
  }
  const ast = acorn.parse(code, { ecmaVersion: 2020 })
  const inserts: { pos: number; text: string }[] = []
  walk.fullAncestor(ast, (node: acorn.Node, _st: unknown, anc: acorn.Node[]) => {
    const parent = anc[anc.length - 2]
    if (!parent || !/Statement$|Declaration$/.test(node.type)) return
    if (node.type === 'FunctionDeclaration' || node.type === 'ClassDeclaration' || node.type === 'BlockStatement') return
    if (parent.type !== 'BlockStatement' && parent.type !== 'Program' && parent.type !== 'SwitchCase') return
    if (parent.type === 'Program') return // the wrapper call itself
    inserts.push({ pos: node.start, text: `__S[${stageAt(node.start)}]++;` })
  })
  inserts.sort((a, b) => b.pos - a.pos)
  let out = code
  for (const i of inserts) out = out.slice(0, i.pos) + i.text + out.slice(i.pos)
  return 'var __S=new Uint32Array(5);\n' + out
}

interface Run {
  profile: string
  perSec: number[]
  worstMs: number
  worstMsStages: number[]
  frames: number
  bytesPerFrame: number
  bytesPerSec: number
  missed: number
  maxLateMs: number
  overruns: number
  seconds: number
}

async function runProfile(profile: 'se' | 'bare', code: string): Promise<Run> {
  const gw = await startRealGateway()
  const rig = await createBoardRig({ seed: profile === 'se' ? 31 : 32, se: profile === 'se', bundle: code })
  try {
    const { board } = rig
    await provisionRig(rig, { gatewayUrl: gw.httpUrl, adminToken: gw.adminToken, mqttPort: gw.mqttPort, profile, patient: 'bench' })
    board.boot()
    const S = board.repl('__S').value as Uint32Array
    // Warm-up: connect and reach steady streaming before counting.
    for (let i = 0; i < 200 && !rig.status()!.connected; i++) {
      board.advance(50)
      await new Promise((r) => setTimeout(r, 5))
    }
    for (let i = 0; i < 100; i++) {
      board.advance(20)
      await new Promise((r) => setImmediate(r))
    }
    const s0 = rig.status()!
    const stored0 = gw.store.frames.length
    const start = Array.from(S)
    let worstMs = 0
    let worstMsStages = [0, 0, 0, 0, 0]
    for (let ms = 0; ms < SECONDS * 1000; ms++) {
      const before = Array.from(S)
      board.advance(1)
      let n = 0
      for (let k = 0; k < 5; k++) n += S[k]! - before[k]!
      if (n > worstMs) {
        worstMs = n
        worstMsStages = before.map((b, k) => S[k]! - b)
      }
      // Let socket I/O through (PUBACKs, time answers) every 20 virtual ms.
      if (ms % 20 === 19) await new Promise((r) => setImmediate(r))
    }
    const perSec = start.map((v, k) => (S[k]! - v) / SECONDS)
    const s1 = rig.status()!
    const frames = gw.store.frames.slice(stored0)
    const bytes = frames.reduce((n, f) => n + f.bytes.length, 0)
    return {
      profile, perSec, worstMs, worstMsStages,
      frames: s1.stats.frames - s0.stats.frames,
      bytesPerFrame: frames.length ? bytes / frames.length : 0,
      bytesPerSec: (s1.stats.bytes - s0.stats.bytes) / SECONDS,
      missed: s1.sampler!.missed - s0.sampler!.missed,
      maxLateMs: s1.sampler!.maxLateMs,
      overruns: s1.sampler!.overruns - s0.sampler!.overruns,
      seconds: SECONDS,
    }
  } finally {
    rig.close()
    await gw.close()
  }
}

async function main(): Promise<void> {
  const built = await buildBundle()
  const mem = await estimateMemory(built.code)
  console.log('### Bundle')
  console.log(`| bundle bytes | JsVars loaded | JsVars steady (after GC) | JsVars peak within 1 s (garbage included) | of |`)
  console.log('|---:|---:|---:|---:|---:|')
  console.log(`| ${built.bytes} | ${mem.loaded} | ${mem.steady} | ${mem.peak} | ${mem.total} |`)
  const code = await instrumentedBundle()
  const runs: Run[] = []
  for (const p of ['se', 'bare'] as const) runs.push(await runProfile(p, code))

  console.log(`\n### Stream (${SECONDS} virtual s per profile, real gateway, 250 Hz ECG + 100 Hz PPG, 1 s frames)`)
  console.log('| profile | frames | bytes/frame | frame bytes/s | missed ECG samples (virtual board) | max tick lateness (virtual board) | window overruns |')
  console.log('|---|---:|---:|---:|---:|---:|---:|')
  for (const r of runs) console.log(`| ${r.profile} | ${r.frames} | ${Math.round(r.bytesPerFrame)} | ${Math.round(r.bytesPerSec)} | ${r.missed} | ${r.maxLateMs.toFixed(1)} ms | ${r.overruns} |`)

  console.log('\n### CPU per second of streaming, by stage (statements executed; native SHA-256/I2C/flash not counted)')
  console.log(`| profile | ${STAGES.join(' | ')} | total | CPU share at ${SPEEDS.map((s) => s / 1000 + 'k').join(' / ')} statements/s |`)
  console.log(`|---|${STAGES.map(() => '---:').join('|')}|---:|---:|`)
  for (const r of runs) {
    const tot = r.perSec.reduce((a, b) => a + b, 0)
    console.log(`| ${r.profile} | ${r.perSec.map((v) => Math.round(v).toLocaleString('en')).join(' | ')} | ${Math.round(tot).toLocaleString('en')} | ${SPEEDS.map((s) => ((100 * tot) / s).toFixed(1) + ' %').join(' / ')} |`)
  }

  console.log('\n### Sampling jitter estimate on a real interpreter (longest busy virtual millisecond)')
  console.log(`| profile | statements in the busiest ms | of which ${STAGES.join(' / ')} | tick delay at ${SPEEDS.map((s) => s / 1000 + 'k').join(' / ')} st/s | samples owed (4 ms period; recorded as missed) |`)
  console.log('|---|---:|---:|---:|---:|')
  for (const r of runs) {
    const delays = SPEEDS.map((s) => (1000 * r.worstMs) / s)
    console.log(`| ${r.profile} | ${r.worstMs} | ${r.worstMsStages.join(' / ')} | ${delays.map((d) => d.toFixed(1) + ' ms').join(' / ')} | ${delays.map((d) => Math.floor(d / 4)).join(' / ')} |`)
  }
}

await main()
