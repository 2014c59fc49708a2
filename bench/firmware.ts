/**
 * Firmware budgets on the virtual board whose clock charges ESP32 time (issue 24):
 *
 *   npx tsx bench/firmware.ts [--seconds 60] [--profiles se,bare] [--settings off,low,central,high]
 *                             [--fleet 100] [--fleet-seconds 10] [--overhead-seconds 20]
 *
 * For each firmware configuration available, side by side in one run:
 * - today's per-sample pipeline: the frozen bundle of hardware-sim/cost/baseline.ts (AD8232 by
 *   analogRead on a 250 Hz timer, MAX30102 polled every 100 ms);
 * - this checkout's firmware: the MAX30003 and MAX30102 FIFOs drained in bursts, with its defaults.
 * Each runs on a fully wired rig against the real gateway (in this process), for each signing
 * profile and cost setting, for N virtual seconds after connecting, and the table gives: ms per
 * callback (mean and longest, and which), ms of ESP32 time per board-second and the share of
 * one core, ECG and PPG samples lost, windows overrun, frame bytes per second.
 *
 * Then what the simulator itself costs: the host time of the same board with the cost metered
 * (every callback instrumented and charged, at a negligible µs per unit so it runs the same
 * callbacks) against cost off; and the same for a fleet of boards (offline, advanced in
 * lockstep like hardware-sim/fleet), also at the central setting. Each part prints its own
 * table as soon as it is done. Runs in about two to three minutes on one free core.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildBundle } from '../firmware/build/bundle.ts'
import { estimateMemory } from '../hardware-sim/bundle-memory.ts'
import { createBoardRig, provisionRig, samplesLost, type BoardRig, type BoardRigOptions, type RigStatus } from '../hardware-sim/rig.ts'
import { perSampleBundle, PER_SAMPLE_FIRMWARE } from '../hardware-sim/cost/baseline.ts'
import { CostModel, NATIVE_COSTS, type NativeCosts } from '../hardware-sim/cost/model.ts'
import type { CostOption, CostReport } from '../hardware-sim/board/board.ts'
import { startRealGateway, type RealGateway } from '../testing/real-gateway.ts'

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1]! : dflt
}
const num = (name: string, dflt: number): number => {
  const v = Number(arg(name, String(dflt)))
  if (!(v > 0)) throw new RangeError(`${name}: expected a number > 0, got ${arg(name, '')}`)
  return v
}
const SECONDS = num('--seconds', 60)
const PROFILES = arg('--profiles', 'se,bare').split(',') as Array<'se' | 'bare'>
const SETTINGS = arg('--settings', 'off,low,central,high').split(',') as Array<'off' | 'low' | 'central' | 'high'>
const FLEET = num('--fleet', 100)
const FLEET_SECONDS = num('--fleet-seconds', 10)
const OVERHEAD_SECONDS = num('--overhead-seconds', 20)
const ROUNDS = 3
for (const p of PROFILES) if (p !== 'se' && p !== 'bare') throw new RangeError(`--profiles: expected se and/or bare, got ${p}`)
for (const s of SETTINGS) if (!['off', 'low', 'central', 'high'].includes(s)) throw new RangeError(`--settings: expected off, low, central, high, got ${s}`)

interface Pipeline {
  name: string
  bundle: string
}

async function pipelines(): Promise<Pipeline[]> {
  const out: Pipeline[] = [{ name: `per-sample AD8232 (frozen ${PER_SAMPLE_FIRMWARE.commit.slice(0, 7)})`, bundle: perSampleBundle() }]
  out.push({ name: 'MAX30003 FIFO (this checkout)', bundle: (await buildBundle()).code })
  return out
}

interface Budget {
  pipeline: string
  profile: string
  setting: string
  connected: boolean
  report: CostReport | null
  ecgLost: number
  ppgLost: number
  overruns: number
  frames: number
  signErrors: number
  bytesPerSec: number
  hostMsPerSecond: number
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r))
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** mhStatus() from the board, or an error that says what the board printed last. */
function statusOf(rig: BoardRig): RigStatus {
  const s = rig.status()
  if (!s) throw new Error(`mhStatus() did not answer: ${rig.lines.slice(-6).join(' | ')}`)
  return s
}

/** Advances `ms` virtual ms in 10 ms steps, letting the gateway's socket I/O in between. */
async function stream(rig: BoardRig, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 10) {
    rig.board.advance(10)
    await tick()
    // A collection every virtual second: between host turns this short V8 frees too little, and
    // the board's JsVar estimate would count the garbage as an out-of-memory (firmware-costs.ts).
    if (t % 1000 === 990) await rig.board.collect()
  }
}

async function runBudget(gw: RealGateway, p: Pipeline, profile: 'se' | 'bare', setting: Budget['setting'], seed: number): Promise<Budget> {
  // Provisioning is a factory step: done on the board without the cost (at the high cost
  // today's firmware cannot personalise its SE: building its CRC table after the wake outlasts
  // the ATECC608's 1.3 s watchdog), then the same board (flash and SE state) boots with it.
  const dir = mkdtempSync(join(tmpdir(), 'mh-bench-fw-'))
  const factory = await createBoardRig({ dir, seed, se: profile === 'se', bundle: p.bundle, cost: 'off' })
  try {
    await provisionRig(factory, { gatewayUrl: gw.httpUrl, adminToken: gw.adminToken, mqttPort: gw.mqttPort, profile, patient: 'bench' })
  } finally {
    factory.close()
  }
  const rig = await createBoardRig({ dir, seed, se: profile === 'se', bundle: p.bundle, cost: setting as CostOption })
  try {
    const { board } = rig
    // Connect (WiFi, time, MQTT) and settle; a board too busy to connect in 30 virtual s is measured offline.
    for (let i = 0; i < 600 && !rig.status()?.connected; i++) {
      board.advance(50)
      await sleep(2)
    }
    await stream(rig, 2000)
    const s0 = statusOf(rig)
    rig.costReport({ reset: true })
    const h0 = performance.now()
    await stream(rig, SECONDS * 1000)
    const hostMs = performance.now() - h0
    const s1 = statusOf(rig)
    const report = rig.costReport()
    const l0 = samplesLost(s0)
    const l1 = samplesLost(s1)
    return {
      pipeline: p.name, profile, setting, connected: !!s1.connected, report,
      ecgLost: l1.ecg - l0.ecg, ppgLost: l1.ppg - l0.ppg, overruns: (s1.sampler?.overruns ?? 0) - (s0.sampler?.overruns ?? 0),
      frames: s1.stats.frames - s0.stats.frames, signErrors: s1.stats.signErrors - s0.stats.signErrors, bytesPerSec: (s1.stats.bytes - s0.stats.bytes) / SECONDS, hostMsPerSecond: hostMs / SECONDS,
    }
  } finally {
    rig.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

const f1 = (n: number): string => n.toFixed(1)
const pct = (n: number): string => `${(100 * n).toFixed(1)} %`

function printBudgets(rows: Budget[]): void {
  console.log(`\n### Budgets: ${SECONDS} virtual s per run after connecting, real gateway, ESP32 time charged by the cost model`)
  console.log('(A share of 100 % means the core never caught up: callbacks ran back to back, late, and the lost samples say how far behind it fell. Cost "off" is the virtual board without charged time.)\n')
  console.log('| pipeline | profile | cost | ms per callback, mean | longest callback, ms | longest is | ms per board-second | share of one core | ECG lost | PPG lost | windows overrun | frames | sign errors | frame B/s | online |')
  console.log('|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|')
  for (const b of rows) {
    const r = b.report
    const count = r ? r.callbacks.reduce((n, c) => n + c.count, 0) : 0
    const longest = r ? r.callbacks.reduce((m, c) => (c.maxUs > m.maxUs ? c : m), { name: '-', maxUs: 0 }) : null
    const cells = r
      ? [f1(count ? r.busyUs / 1000 / count : 0), f1(longest!.maxUs / 1000), '`' + longest!.name + '`', f1(r.busyUs / 1000 / (r.elapsedMs / 1000)), pct(r.share)]
      : ['-', '-', '-', '-', '-']
    console.log(`| ${b.pipeline} | ${b.profile} | ${b.setting} | ${cells.join(' | ')} | ${b.ecgLost} | ${b.ppgLost} | ${b.overruns} | ${b.frames} | ${b.signErrors} | ${Math.round(b.bytesPerSec)} | ${b.connected ? 'yes' : 'no'} |`)
  }
  const central = rows.filter((b) => b.setting === 'central' && b.report)
  if (central.length) {
    console.log('\nDearest callbacks at the central cost (ESP32 ms: count, mean, longest, total per board-second):')
    for (const b of central) {
      console.log(`- ${b.pipeline}, ${b.profile}:`)
      for (const c of b.report!.callbacks.slice(0, 12)) console.log(`  - \`${c.name}\`: ${c.count}×, mean ${f1(c.meanUs / 1000)}, longest ${f1(c.maxUs / 1000)}, ${f1(c.totalUs / 1000 / (b.report!.elapsedMs / 1000))} ms/s`)
    }
  }
}

/**
 * A cost model that meters everything and charges (next to) nothing, bus wire time included:
 * the board runs the same callbacks at the same times as with the cost off, and pays for the
 * instrumentation and the metering.
 */
class FreeModel extends CostModel {
  constructor() {
    const native = Object.fromEntries(Object.keys(NATIVE_COSTS).map((k) => [k, 0])) as unknown as NativeCosts
    super('central', { usPerUnit: 1e-9, callbackUnits: 0, nativeCallUnits: 0, native })
  }
  override i2cUs(): number {
    return 0
  }
  override spiUs(): number {
    return 0
  }
}
const freeModel = (): CostModel => new FreeModel()

function offlineConfig(i: number): BoardRigOptions['config'] {
  return { id: `benchbenchbench${String(i).padStart(2, '0')}`.slice(0, 17), profile: 'bare', secret: '11'.repeat(32), gw: { host: '127.0.0.1', mqttPort: 1, httpPort: 1 } }
}

/** Host ms per virtual second of one offline board, and the ECG ticks it ran (to check both runs did the same work). */
async function hostCost(bundle: string, cost: CostOption, seconds: number): Promise<{ msPerSecond: number; ticks: number }> {
  const rig = await createBoardRig({ seed: 9, se: false, cost, bundle, config: offlineConfig(0) })
  try {
    for (let t = 0; t < 3000; t += 100) rig.board.advance(100)
    const t0 = rig.status()!.sampler?.ticks ?? 0
    const h0 = performance.now()
    for (let t = 0; t < seconds * 1000; t += 100) rig.board.advance(100)
    const ms = performance.now() - h0
    return { msPerSecond: ms / seconds, ticks: (rig.status()!.sampler?.ticks ?? 0) - t0 }
  } finally {
    rig.close()
  }
}

/** A fleet of `n` offline boards advanced in lockstep 100 ms slices (as hardware-sim/fleet does): host ms per board per virtual second. */
async function fleetCost(bundle: string, cost: CostOption, n: number, seconds: number): Promise<number> {
  const rigs: BoardRig[] = []
  try {
    for (let i = 0; i < n; i++) rigs.push(await createBoardRig({ id: `dev${i}`, seed: 100 + i, se: false, battery: false, cost, bundle, config: offlineConfig(i) }))
    // Warm: every board streaming, V8 done optimising the hot paths.
    for (let t = 0; t < 2000; t += 100) {
      for (const r of rigs) r.board.advance(100)
      await tick()
    }
    const h0 = performance.now()
    for (let t = 0; t < seconds * 1000; t += 100) {
      for (const r of rigs) r.board.advance(100)
      await tick()
    }
    return (performance.now() - h0) / n / seconds
  } finally {
    for (const r of rigs) r.close()
  }
}

async function main(): Promise<void> {
  const started = performance.now()
  const list = await pipelines()

  console.log('### Bundles')
  console.log('| pipeline | bundle bytes | JsVars loaded | JsVars steady (after GC) | JsVars peak within 1 s | of |')
  console.log('|---|---:|---:|---:|---:|---:|')
  for (const p of list) {
    const mem = await estimateMemory(p.bundle)
    console.log(`| ${p.name} | ${Buffer.byteLength(p.bundle, 'latin1')} | ${mem.loaded} | ${mem.steady} | ${mem.peak} | ${mem.total} |`)
  }

  const gw = await startRealGateway()
  const rows: Budget[] = []
  try {
    let seed = 40
    for (const p of list) for (const profile of PROFILES) for (const setting of SETTINGS) rows.push(await runBudget(gw, p, profile, setting, seed++))
  } finally {
    await gw.close()
  }
  printBudgets(rows)

  // Host timings on a shared machine are noisy: the modes alternate and each keeps its best run.
  const base = list[0]!
  const modes: Array<[string, () => CostOption]> = [
    ['off', () => 'off'],
    ['metered, ~0 µs/unit (same callbacks as off)', freeModel],
    ['central (the board saturated: fewer, longer callbacks)', () => 'central'],
  ]
  console.log(`\n### What the simulator costs the host (one board, offline, ${OVERHEAD_SECONDS} virtual s, ${base.name}; best of ${ROUNDS} alternated runs)`)
  const single = new Map<string, { msPerSecond: number; ticks: number }>()
  for (let i = 0; i < ROUNDS; i++) {
    for (const [name, cost] of modes) {
      const r = await hostCost(base.bundle, cost(), OVERHEAD_SECONDS)
      const prev = single.get(name)
      if (!prev || r.msPerSecond < prev.msPerSecond) single.set(name, r)
    }
  }
  const offMs = single.get('off')!.msPerSecond
  console.log('| cost | host ms per virtual s | ECG ticks run | vs off |')
  console.log('|---|---:|---:|---:|')
  for (const [name] of modes) {
    const r = single.get(name)!
    console.log(`| ${name} | ${f1(r.msPerSecond)} | ${r.ticks} | ${(r.msPerSecond / offMs).toFixed(2)} |`)
  }

  console.log(`\n### A fleet of ${FLEET} boards (offline, lockstep 100 ms slices, ${FLEET_SECONDS} virtual s; off and metered best of 2 alternated runs)`)
  const fleet = new Map<string, number>()
  for (const [name, cost] of [...modes.slice(0, 2), ...modes.slice(0, 2), modes[2]!]) {
    const v = await fleetCost(base.bundle, cost(), FLEET, FLEET_SECONDS)
    fleet.set(name, Math.min(v, fleet.get(name) ?? Infinity))
  }
  const fOff = fleet.get('off')!
  console.log('| cost | host ms per board per virtual s | virtual/real for the fleet | vs off |')
  console.log('|---|---:|---:|---:|')
  for (const [name] of modes) {
    const v = fleet.get(name)!
    console.log(`| ${name} | ${v.toFixed(2)} | ${(1000 / (v * FLEET)).toFixed(1)}× | ${(v / fOff).toFixed(2)} |`)
  }
  console.log(`\n(bench ran ${((performance.now() - started) / 1000).toFixed(0)} s)`)
}

await main()
