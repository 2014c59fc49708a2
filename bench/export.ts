/**
 * What the largest FHIR export does to everyone else on the gateway, side by side in one
 * run (issue 19): /healthz latency, boards' PUBACK latency, frames acknowledged per second
 * and the gateway's event-loop delay, first with no export, then while one patient's
 * largest allowed export (24 h) is read as fast as the client can.
 *
 * The gateway (real ledger in a temp dir, dashboard mounted) runs in this process with
 * `--hours` of 1-second frames per patient written straight into its ledger; the clients
 * (a /healthz prober every 20 ms, `--boards` boards publishing a frame a second over MQTT,
 * the export reader) run in a child process, so their own work is not counted as the gateway's.
 *
 *   npx tsx bench/export.ts [--quick] [--hours 24] [--patients 3] [--boards 20] [--idle-s 15]
 *
 * --quick: 2 h per patient, 10 boards, 5 s without export (the export is then 2 h, not 24 h).
 */
import { fork } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { request, Agent } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import mqtt, { type MqttClient } from 'mqtt'
import { resolveConfig } from '../gateway/config.ts'
import { startGateway } from '../gateway/gateway.ts'
import { silentLogger } from '../gateway/log.ts'
import { patientIdFromPublicKey } from '../ledger/consent.ts'
import { generateKey } from '../protocol/node/keys.ts'
import { signAuthToken, signFrame, type DeviceSigningKey } from '../protocol/node/sign.ts'
import { syntheticPayload } from '../protocol/node/synthetic.ts'
import { toHex, fromHex } from '../protocol/portable/bytes.ts'
import { mountDashboard } from '../dashboard/mount.ts'
import { fillLedger, ledgerOf } from '../testing/ledger-frames.ts'
import { table } from './harness.ts'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    hours: { type: 'string' },
    patients: { type: 'string', default: '3' },
    boards: { type: 'string' },
    'idle-s': { type: 'string' },
    clients: { type: 'boolean', default: false },
  },
})

type Phase = 'idle' | 'export'
interface ClientConfig {
  base: string
  mqttUrl: string
  username: string
  password: string
  exportPath: string
  boards: { id: string; secret: string }[]
  idleS: number
}
interface Sample {
  phase: Phase
  ms: number
}
interface ClientResults {
  healthz: Sample[]
  puback: Sample[]
  /** Seconds each phase lasted. */
  seconds: Record<Phase, number>
  export: { status: number; bytes: number; firstByteMs: number; totalMs: number; complete: boolean }
}
type Msg = { type: 'phase'; phase: Phase } | { type: 'done'; results: ClientResults } | { type: 'config'; config: ClientConfig }

const USER = { username: 'bench-clinician', password: 'bench-clinician-pw' }
const ADMIN = { username: 'bench-admin', password: 'bench-admin-pw' }

// ---------------------------------------------------------------- the gateway side

async function runGateway(): Promise<void> {
  const hours = Number(args.hours ?? (args.quick ? 2 : 24))
  const nPatients = Number(args.patients)
  const nBoards = Number(args.boards ?? (args.quick ? 10 : 20))
  const idleS = Number(args['idle-s'] ?? (args.quick ? 5 : 15))
  const dir = mkdtempSync(join(tmpdir(), 'mh-bench-export-'))
  const gw = await startGateway(resolveConfig({ dataDir: dir, mqttPort: 'auto', mqttsPort: 0, wsPort: 0, httpPort: 'auto', logLevel: 'error' }), { log: silentLogger })
  try {
    gw.registry.addUser(USER.username, 'clinician', USER.password)
    gw.registry.addUser(ADMIN.username, 'admin', ADMIN.password)
    const patients = Array.from({ length: nPatients }, () => {
      const k = generateKey('ed25519') as { privateKey: Uint8Array; publicKey: Uint8Array }
      return { id: patientIdFromPublicKey(k.publicKey), key: k }
    })
    const dash = await mountDashboard(gw, { patientKeys: Object.fromEntries(patients.map((p) => [p.id, p.key])) })
    for (const p of patients) await dash.deps.grantConsent({ userId: ADMIN.username, role: 'admin' }, p.id, USER.username, 'live', null)

    // History straight into the ledger (after mounting: the dashboard's backfill never reads it).
    const toMs = Date.now() - 60_000
    const fromMs = toMs - hours * 3600_000
    const count = hours * 3600
    const started = performance.now()
    for (const p of patients) {
      const board = generateKey('hmac') as DeviceSigningKey & { type: 'hmac' }
      gw.registry.register({ id: board.id, profile: 'bare', secret: board.secret, patient: p.id })
      await fillLedger(ledgerOf(gw), board, { fromMs, count })
    }
    console.log(`ledger: ${nPatients} patients × ${hours} h of 1-second frames (${(nPatients * count).toLocaleString('en-US')} frames) written in ${((performance.now() - started) / 1000).toFixed(1)} s`)

    // Let the ledger seal and index that history before anything is measured.
    await ledgerOf(gw).cutBlock()
    await sleep(2000)

    const live = Array.from({ length: nBoards }, (_, i) => {
      const k = generateKey('hmac') as DeviceSigningKey & { type: 'hmac' }
      gw.registry.register({ id: k.id, profile: 'bare', secret: k.secret, patient: patients[i % nPatients].id })
      return { id: k.id, secret: toHex(k.secret) }
    })
    const config: ClientConfig = {
      base: `http://127.0.0.1:${gw.ports.http}`,
      mqttUrl: `mqtt://127.0.0.1:${gw.ports.mqtt}`,
      ...USER,
      exportPath: `/api/dash/patients/${patients[0].id}/fhir?from=${fromMs}&to=${fromMs + hours * 3600_000}`,
      boards: live,
      idleS,
    }

    // The gateway's own event-loop delay, per phase.
    const loop = monitorEventLoopDelay({ resolution: 1 })
    loop.enable()
    const loopBy: Partial<Record<Phase, { p99: number; max: number }>> = {}
    let phase: Phase | null = null
    const endPhase = (): void => {
      if (phase) loopBy[phase] = { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 }
      loop.reset()
    }
    const child = fork(fileURLToPath(import.meta.url), ['--clients'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const results = await new Promise<ClientResults>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`the clients' process exited with ${code} before reporting`)))
      child.on('message', (m: Msg) => {
        if (m.type === 'phase') {
          endPhase()
          phase = m.phase
        } else if (m.type === 'done') resolve(m.results)
      })
      child.send({ type: 'config', config } satisfies Msg)
    })
    endPhase()
    loop.disable()
    report(results, loopBy, { hours, nBoards, count })
  } finally {
    await gw.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]
}

function report(r: ClientResults, loop: Partial<Record<Phase, { p99: number; max: number }>>, o: { hours: number; nBoards: number; count: number }): void {
  const rows: (string | number)[][] = []
  for (const phase of ['idle', 'export'] as const) {
    const h = r.healthz.filter((s) => s.phase === phase).map((s) => s.ms)
    const a = r.puback.filter((s) => s.phase === phase).map((s) => s.ms)
    const label = phase === 'idle' ? 'no export' : `during the ${o.hours} h export`
    rows.push([label, String(h.length), pct(h, 50), pct(h, 99), Math.max(...h), String(a.length), pct(a, 50), pct(a, 99), Math.max(...a), a.length / r.seconds[phase], loop[phase]?.p99 ?? NaN, loop[phase]?.max ?? NaN])
  }
  console.log(`\n${o.nBoards} boards publishing 1 frame/s each (QoS 1); /healthz probed every 20 ms; times in ms`)
  console.log(table(['', 'healthz n', 'p50', 'p99', 'max', 'PUBACK n', 'p50', 'p99', 'max', 'acked/s', 'loop p99', 'loop max'], rows))
  const e = r.export
  const mb = e.bytes / 1e6
  console.log(`\nexport: HTTP ${e.status}, ${o.count.toLocaleString('en-US')} frames, ${mb.toFixed(1)} MB in ${(e.totalMs / 1000).toFixed(1)} s (${(mb / (e.totalMs / 1000)).toFixed(1)} MB/s), first byte after ${e.firstByteMs.toFixed(0)} ms, ${e.complete ? 'a complete Bundle' : 'INCOMPLETE'}`)
}

// ---------------------------------------------------------------- the clients' side

async function runClients(): Promise<void> {
  const cfg = await new Promise<ClientConfig>((r) => process.once('message', (m: Msg) => m.type === 'config' && r(m.config)))
  const send = (m: Msg): void => void process.send!(m)
  const agent = new Agent({ keepAlive: true, maxSockets: 4 })
  const cookie = await login(cfg, agent)
  let phase: Phase = 'idle'
  let running = true
  const results: ClientResults = { healthz: [], puback: [], seconds: { idle: 0, export: 0 }, export: { status: 0, bytes: 0, firstByteMs: 0, totalMs: 0, complete: false } }

  const boards = await Promise.all(cfg.boards.map((b) => connectBoard(cfg.mqttUrl, { type: 'hmac', id: b.id, secret: fromHex(b.secret) })))
  // A first frame each: it starts the gateway's verify workers, which is not what is measured.
  let seq = 0
  await Promise.all(boards.map((b) => publish(b, seq)))
  seq++

  const boardLoops = boards.map(async (b, i) => {
    await sleep((1000 * i) / boards.length) // spread over the second, as real boards are
    for (let s = seq; running; s++) {
      const next = performance.now() + 1000
      const at = phase
      const start = performance.now()
      await publish(b, s)
      results.puback.push({ phase: at, ms: performance.now() - start })
      await sleep(next - performance.now())
    }
  })
  const prober = (async () => {
    while (running) {
      const next = performance.now() + 20
      const at = phase
      const start = performance.now()
      await get(cfg.base + '/healthz', agent)
      results.healthz.push({ phase: at, ms: performance.now() - start })
      await sleep(next - performance.now())
    }
  })()

  send({ type: 'phase', phase: 'idle' })
  const t0 = performance.now()
  await sleep(cfg.idleS * 1000)
  phase = 'export'
  send({ type: 'phase', phase: 'export' })
  const t1 = performance.now()
  results.export = await readExport(cfg.base + cfg.exportPath, cookie)
  running = false
  results.seconds = { idle: (t1 - t0) / 1000, export: (performance.now() - t1) / 1000 }
  await Promise.all([...boardLoops, prober])
  for (const b of boards) b.end(true)
  agent.destroy()
  send({ type: 'done', results })
  process.disconnect()
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)))
}

function connectBoard(url: string, key: DeviceSigningKey): Promise<MqttClient & { key: DeviceSigningKey }> {
  return new Promise((resolve, reject) => {
    const password = Buffer.from(signAuthToken(key, { iatMs: Date.now(), counter: 1 }))
    const c = mqtt.connect(url, { clientId: key.id, username: key.id, password, reconnectPeriod: 0, protocolVersion: 4 })
    c.once('connect', () => resolve(Object.assign(c, { key })))
    c.once('error', reject)
  })
}

function publish(b: MqttClient & { key: DeviceSigningKey }, seq: number): Promise<void> {
  const bytes = signFrame(b.key, syntheticPayload(b.key.id, { seconds: 1, seq, seed: 3, t0: Date.now() - 1000 }))
  return new Promise((resolve, reject) => b.publish(`mhealth/dev/${b.key.id}/frames`, Buffer.from(bytes), { qos: 1 }, (err) => (err ? reject(err) : resolve())))
}

function get(url: string, agent: Agent): Promise<void> {
  return new Promise((resolve, reject) => {
    const r = request(url, { agent }, (res) => {
      res.resume()
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${url}: HTTP ${res.statusCode}`))))
    })
    r.on('error', reject)
    r.end()
  })
}

async function login(cfg: ClientConfig, agent: Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ username: cfg.username, password: cfg.password })
    const r = request(cfg.base + '/api/dash/login', { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume()
      const c = res.headers['set-cookie']?.[0]
      res.on('end', () => (res.statusCode === 200 && c ? resolve(c.split(';')[0]) : reject(new Error(`login: HTTP ${res.statusCode}`))))
    })
    r.on('error', reject)
    r.end(body)
  })
}

/** Reads the export as fast as it comes, keeping only its size and its last bytes. */
function readExport(url: string, cookie: string): Promise<ClientResults['export']> {
  return new Promise((resolve, reject) => {
    const start = performance.now()
    let firstByteMs = 0
    let bytes = 0
    let tail = ''
    const r = request(url, { headers: { cookie }, agent: false }, (res) => {
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        if (bytes === 0) firstByteMs = performance.now() - start
        bytes += Buffer.byteLength(c)
        tail = (tail + c).slice(-200)
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, firstByteMs, totalMs: performance.now() - start, complete: /\],"id":"[0-9a-f-]{36}"\}\n$/.test(tail) }))
      res.on('error', reject)
    })
    r.on('error', reject)
    r.end()
  })
}

if (args.clients) await runClients()
else await runGateway()
