/**
 * Gateway benchmark, side by side in one run against three brokers, each in its own
 * process on a free port, driven by the same real mqtt.js clients over real sockets
 * with the same pre-signed ES256 frames (1 s ECG 250 Hz + PPG 100 Hz windows):
 *
 *   gateway    our broker: authenticated devices, every frame decoded + verified,
 *              PUBACK only after the frame store fsynced it
 *   aedes      plain Aedes relaying the same PUBLISHes, no verification, no storage
 *   mosquitto  /usr/sbin/mosquitto relaying them (persistence off)
 *
 * Measured: closed-loop frames/s with N devices (each keeps a small window of
 * unacknowledged frames); publish-to-PUBACK p50/p99 at a fixed offered rate
 * (open loop: latency counts from the scheduled send time, so a stalled broker
 * cannot hide its queueing); RSS of the broker process with 1,000 devices connected
 * (each subscribed to its control topic, like a board), in a fresh process, then its peak
 * RSS and p99 while those devices stream one frame per second each (a ward's steady load).
 *
 * Run: npx tsx bench/gateway.ts [--devices 200] [--frames 20000] [--rate 2000]
 *        [--seconds 5] [--rss-devices 1000] [--stream-seconds 10] [--store ledger|file] [--only gateway,aedes,mosquitto]
 *        [--runtime tsx|bundle|both] [--verify pool|inline] [--window 8]
 *        [--cpu-prof DIR]   (writes a V8 CPU profile of each Node broker process)
 */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import mqtt, { type MqttClient } from 'mqtt'
import { table, fmt } from './harness.ts'
import { freePort } from '../testing/net.ts'

const self = fileURLToPath(import.meta.url)
const { values: args } = parseArgs({
  options: {
    serve: { type: 'string' },
    dir: { type: 'string' },
    store: { type: 'string', default: 'ledger' },
    devices: { type: 'string', default: '200' },
    frames: { type: 'string', default: '20000' },
    rate: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '5' },
    'rss-devices': { type: 'string', default: '1000' },
    'stream-seconds': { type: 'string', default: '10' },
    window: { type: 'string', default: '8' },
    only: { type: 'string', default: 'gateway,aedes,mosquitto' },
    'cpu-prof': { type: 'string' },
    // 'tsx' runs the brokers as `mhealth` does today (TypeScript loader in the process);
    // 'bundle' runs an esbuild bundle with plain node, as a packaged gateway would.
    runtime: { type: 'string', default: 'both' },
    // Gateway frame verification (config `verify`): inline | pool | auto; default: the gateway's default.
    verify: { type: 'string' },
    // Extra V8/Node flags for the Node brokers, e.g. --node-flags=--max-semi-space-size=1
    'node-flags': { type: 'string', default: '' },
  },
})

type Msg = { type: 'ready'; port: number } | { type: 'stats'; rss: number; heap: number; cpuUs: number; accepted: number; rejected: number; duplicate: number }

// ---------------------------------------------------------------- broker side (child)

async function serve(kind: string, dir: string): Promise<void> {
  let stats: () => Omit<Extract<Msg, { type: 'stats' }>, 'type' | 'rss' | 'heap' | 'cpuUs'>
  let close: () => Promise<void>
  let port: number
  if (kind === 'aedes') {
    const { Aedes } = await import('aedes')
    const broker = await Aedes.createBroker()
    const server = createServer(broker.handle)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    port = (server.address() as AddressInfo).port
    stats = () => ({ accepted: 0, rejected: 0, duplicate: 0 })
    close = () => new Promise((r) => server.close(() => broker.close(() => r())))
  } else {
    const { startGateway } = await import('../gateway/gateway.ts')
    const { resolveConfig } = await import('../gateway/config.ts')
    const { jsonLogger } = await import('../gateway/log.ts')
    const { protocolCodec } = await import('../gateway/protocol-codec.ts')
    const log = jsonLogger(process.stderr, 'warn')
    const openStore = args.store === 'file'
      ? async ({ dataDir }: { dataDir: string }) => new (await import('../testing/file-store.ts')).FileFrameStore(join(dataDir, 'frames.jsonl'))
      : async (ctx: { dataDir: string; identity: { keyFile: string; id: string } }) => {
          const { openLedgerStore, ledgerDirOf } = await import('../gateway/ledger-store.ts')
          return openLedgerStore({ dir: ledgerDirOf(ctx.dataDir), keyFile: ctx.identity.keyFile, producerId: ctx.identity.id })
        }
    const gw = await startGateway(
      resolveConfig({ dataDir: dir, mqttPort: 'auto', mqttsPort: 0, wsPort: 0, httpPort: 0, logLevel: 'warn', ...(args.verify ? { verify: args.verify as 'inline' | 'pool' | 'auto' } : {}) }),
      { codec: protocolCodec, log, openStore },
    )
    port = gw.ports.mqtt!
    const rejected = () => {
      const m = /mhealth_frames_rejected_total\{[^}]*\} (\d+)/g
      let n = 0
      for (const x of gw.metrics.registry.render().matchAll(m)) n += Number(x[1])
      return n
    }
    stats = () => ({ accepted: gw.metrics.framesAccepted.get(), rejected: rejected(), duplicate: gw.metrics.framesDuplicate.get() })
    close = () => gw.close()
  }
  const send = (m: Msg) => process.send!(m)
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stats') {
      const cpu = process.cpuUsage() // whole process, worker threads included; read before the gc below
      ;(globalThis as { gc?: () => void }).gc?.()
      const mu = process.memoryUsage()
      send({ type: 'stats', rss: mu.rss, heap: mu.heapUsed, cpuUs: cpu.user + cpu.system, ...stats() })
    } else if (m.type === 'stop') void close().finally(() => process.exit(0))
  })
  send({ type: 'ready', port })
}

// ---------------------------------------------------------------- driver side (parent)

interface Target {
  name: string
  port: number
  pid: number
  stats(): Promise<Extract<Msg, { type: 'stats' }>>
  stop(): Promise<void>
}

/** utime + stime of a process in µs (clock ticks of 10 ms). */
function cpuOfPid(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(f[11]) + Number(f[12])) * 10_000
}

function rssOfPid(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : NaN
}

let bundled: string | null = null
/**
 * This file bundled the way `mhealth gateway` is (bin/bundle-cache.mjs: one ESM file, packages
 * external, the verify workers' entry beside it) and run with plain node, without the loader.
 */
async function bundle(): Promise<string> {
  const { cachedBundle } = await import('../bin/bundle-cache.mjs')
  const dir = await cachedBundle('gateway-bench', { 'gateway-bench': 'bench/gateway.ts', 'verify-worker-boot': 'gateway/verify-worker.ts' })
  return join(dir, 'gateway-bench.mjs')
}

async function startNode(kind: 'gateway' | 'aedes', dir: string, runtime: 'tsx' | 'bundle'): Promise<Target> {
  const execArgv = runtime === 'tsx' ? ['--import', 'tsx', '--expose-gc'] : ['--expose-gc']
  if (args['cpu-prof']) execArgv.push('--cpu-prof', `--cpu-prof-dir=${args['cpu-prof']}`)
  if (args['node-flags']) execArgv.push(...args['node-flags'].split(' ').filter(Boolean))
  const script = runtime === 'tsx' ? self : bundled!
  const child = fork(script, ['--serve', kind, '--dir', dir, '--store', args.store!], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${kind} exited with ${code} before it was ready`)))
    child.on('message', (m: Msg) => m.type === 'ready' && resolve(m.port))
  })
  child.removeAllListeners('exit')
  return {
    name: kind,
    port,
    pid: child.pid!,
    stats: () =>
      new Promise((resolve) => {
        const on = (m: Msg) => {
          if (m.type !== 'stats') return
          child.off('message', on)
          resolve(m)
        }
        child.on('message', on)
        child.send({ type: 'stats' })
      }),
    stop: () => stopChild(child, () => child.send({ type: 'stop' })),
  }
}

function stopChild(child: ChildProcess, ask: () => void): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve()
    const kill = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.once('exit', () => {
      clearTimeout(kill)
      resolve()
    })
    ask()
  })
}

async function startMosquitto(dir: string): Promise<Target> {
  const port = await freePort()
  const conf = join(dir, 'mosquitto.conf')
  // Relay only: no persistence, anonymous, Nagle off (as Node sockets used by the others), no queue caps in the way.
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'set_tcp_nodelay true', 'max_inflight_messages 0', 'max_queued_messages 10000', 'log_dest none', ''].join('\n'))
  const child = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] })
  for (let i = 0; ; i++) {
    try {
      const c = await connectOne(port, { clientId: 'probe' })
      await new Promise<void>((r) => c.end(true, {}, () => r()))
      break
    } catch (err) {
      if (i > 100) throw err
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  return {
    name: 'mosquitto',
    port,
    pid: child.pid!,
    stats: async () => ({ type: 'stats', rss: rssOfPid(child.pid!), heap: NaN, cpuUs: cpuOfPid(child.pid!), accepted: 0, rejected: 0, duplicate: 0 }),
    stop: () => stopChild(child, () => child.kill('SIGTERM')),
  }
}

function connectOne(port: number, o: { clientId: string; username?: string; password?: Buffer }): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { ...o, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 30_000, keepalive: 120, clean: true })
    c.once('connect', () => resolve(c))
    c.once('error', (e) => {
      c.end(true)
      reject(e)
    })
  })
}

interface Sim {
  key: DeviceSigningKey
  topic: string
  frames: Buffer[]
}

type DeviceSigningKey = import('../protocol/node/sign.ts').DeviceSigningKey

let tokenCounter = Date.now()
async function connectDevices(t: Target, sims: Sim[], subscribe: boolean): Promise<MqttClient[]> {
  const { signAuthToken } = await import('../protocol/node/sign.ts')
  const out: MqttClient[] = new Array(sims.length)
  let next = 0
  // Bounded concurrency: a ward's boards do not all reconnect in the same millisecond either.
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < sims.length) {
        const i = next++
        const k = sims[i]!.key
        const c = await connectOne(t.port, { clientId: k.id, username: k.id, password: Buffer.from(signAuthToken(k, { iatMs: Date.now(), counter: tokenCounter++ })) })
        ;(c.stream as { setNoDelay?: (b: boolean) => void }).setNoDelay?.(true)
        if (subscribe) await new Promise<void>((r, j) => c.subscribe(`mhealth/dev/${k.id}/control`, { qos: 1 }, (e) => (e ? j(e) : r())))
        out[i] = c
      }
    }),
  )
  return out
}

/** A phase that stalls (a broker stopped acknowledging) fails the bench instead of hanging it. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([p, new Promise<never>((_, j) => (timer = setTimeout(() => j(new Error(`${what}: no progress for ${ms / 1000} s`)), ms)))]).finally(() => clearTimeout(timer))
}

const endAll = (cs: MqttClient[]) => Promise.all(cs.map((c) => new Promise<void>((r) => c.end(false, {}, () => r()))))

/** Closed loop: every device keeps `window` frames unacknowledged until its share is sent. */
async function throughput(clients: MqttClient[], sims: Sim[], perDevice: number, window: number): Promise<{ fps: number; frames: number }> {
  const start = performance.now()
  await Promise.all(
    clients.map(
      (c, i) =>
        new Promise<void>((resolve, reject) => {
          const s = sims[i]!
          let sent = 0
          let acked = 0
          const pump = () => {
            while (sent < perDevice && sent - acked < window) {
              c.publish(s.topic, s.frames[sent++]!, { qos: 1 }, (err) => {
                if (err) return reject(err)
                if (++acked === perDevice) resolve()
                else pump()
              })
            }
          }
          pump()
        }),
    ),
  )
  const frames = clients.length * perDevice
  return { fps: (frames * 1000) / (performance.now() - start), frames }
}

/** Open loop at `rate` frames/s for `seconds`, round-robin over the devices; frames from index `from`. */
async function latency(clients: MqttClient[], sims: Sim[], from: number, rate: number, seconds: number): Promise<{ p50: number; p99: number; max: number; n: number }> {
  const total = Math.round(rate * seconds)
  const lat: number[] = []
  const start = performance.now() + 20
  let k = 0
  await new Promise<void>((resolve, reject) => {
    const tick = () => {
      const now = performance.now()
      // Send everything whose scheduled time has come (timers fire late; the schedule does not).
      while (k < total && start + (k * 1000) / rate <= now) {
        const due = start + (k * 1000) / rate
        const d = k % clients.length
        const f = sims[d]!.frames[from + Math.floor(k / clients.length)]!
        k++
        clients[d]!.publish(sims[d]!.topic, f, { qos: 1 }, (err) => {
          if (err) return reject(err)
          lat.push(performance.now() - due)
          if (lat.length === total) resolve()
        })
      }
      if (k < total) setTimeout(tick, 1)
    }
    setTimeout(tick, 20)
  })
  lat.sort((a, b) => a - b)
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!
  return { p50: q(0.5), p99: q(0.99), max: lat[lat.length - 1]!, n: lat.length }
}

async function main(): Promise<void> {
  const nDev = Number(args.devices)
  const nFrames = Number(args.frames)
  const rate = Number(args.rate)
  const seconds = Number(args.seconds)
  const rssDevices = Number(args['rss-devices'])
  const window = Number(args.window)
  const only = new Set(args.only!.split(','))
  if (only.has('mosquitto') && !existsSync('/usr/sbin/mosquitto')) {
    console.log('mosquitto not installed (/usr/sbin/mosquitto): skipping it (apt-get install -y mosquitto)')
    only.delete('mosquitto')
  }
  const perDevice = Math.ceil(nFrames / nDev)
  const latPerDevice = Math.ceil((rate * seconds) / nDev)

  const { generateKey } = await import('../protocol/node/keys.ts')
  const { signFrame } = await import('../protocol/node/sign.ts')
  const { syntheticPayload } = await import('../protocol/node/synthetic.ts')
  const { DeviceRegistry } = await import('../gateway/registry.ts')

  const tSign = performance.now()
  const keys = Array.from({ length: Math.max(nDev, rssDevices) }, () => generateKey('p256') as Extract<DeviceSigningKey, { type: 'p256' }>)
  const t0 = Date.now() - 3600_000
  const sims: Sim[] = keys.slice(0, nDev).map((key, d) => ({
    key,
    topic: `mhealth/dev/${key.id}/frames`,
    frames: Array.from({ length: perDevice + latPerDevice }, (_, i) => Buffer.from(signFrame(key, syntheticPayload(key.id, { seconds: 1, seq: i + 1, seed: d, t0: t0 + i * 1000 })))),
  }))
  // The RSS devices then stream as boards do, one frame per second each.
  const streamSeconds = Number(args['stream-seconds'])
  const rssSims: Sim[] = keys.slice(0, rssDevices).map((key, d) => ({
    key,
    topic: `mhealth/dev/${key.id}/frames`,
    frames: Array.from({ length: streamSeconds }, (_, i) => Buffer.from(signFrame(key, syntheticPayload(key.id, { seconds: 1, seq: perDevice + latPerDevice + i + 1, seed: d, t0: t0 + (perDevice + latPerDevice + i) * 1000 })))),
  }))
  const frameBytes = sims[0]!.frames[0]!.length
  console.log(`# Gateway benchmark (Node ${process.version}, ${(await import('node:os')).cpus().length} cores, store: ${args.store}, gateway verification: ${args.verify ?? 'default'})`)
  console.log(`# ${nDev} devices, ${perDevice * nDev} frames closed loop (window ${window}/device), then ${rate} frames/s for ${seconds} s; ES256 frames of ${frameBytes} B; RSS with ${rssDevices} devices`)
  const { loadavg } = await import('node:os')
  console.log(`# load average before: ${loadavg().map((x) => x.toFixed(2)).join(' ')} (other processes on this machine skew wall-clock figures; CPU us/frame does not depend on them)`)
  console.log(`# pre-signed ${sims.length * (perDevice + latPerDevice) + rssDevices * streamSeconds} frames and ${keys.length} keys in ${fmt((performance.now() - tSign) / 1000)} s\n`)

  const dirs: string[] = []
  const newDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'mh-bench-gw-'))
    dirs.push(d)
    const reg = new DeviceRegistry(join(d, 'registry.sqlite'))
    reg.db.transaction(() => {
      for (const k of keys) reg.register({ id: k.id, profile: 'se', publicKey: k.publicKey, patient: 'bench' })
    })()
    reg.close()
    return d
  }
  const runtimes: Array<'tsx' | 'bundle'> = args.runtime === 'both' ? ['tsx', 'bundle'] : [args.runtime as 'tsx' | 'bundle']
  if (runtimes.includes('bundle')) bundled = await bundle()
  const names: string[] = []
  for (const n of ['gateway', 'aedes']) if (only.has(n)) for (const r of runtimes) names.push(`${n}:${r}`)
  if (only.has('mosquitto')) names.push('mosquitto')
  const start = (name: string): Promise<Target> => {
    if (name === 'mosquitto') return startMosquitto(newDir())
    const [kind, runtime] = name.split(':') as ['gateway' | 'aedes', 'tsx' | 'bundle']
    return startNode(kind, newDir(), runtime)
  }

  const rows: Record<string, { cpuPerFrame: number; fps: number; p50: number; p99: number; max: number; rssIdle: number; rss1k: number; rssStream: number; p99Stream: number; note: string }> = {}
  try {
    for (const name of names) {
      // Throughput and latency on one broker process.
      const t = await start(name)
      const clients = await connectDevices(t, sims, true)
      const beforeTp = await t.stats()
      const tp = await within(throughput(clients, sims, perDevice, window), 180_000, `${name} throughput`)
      const afterTp = await t.stats()
      const lt = await within(latency(clients, sims, perDevice, rate, seconds), 60_000 + seconds * 1000, `${name} latency`)
      const after = await t.stats()
      await endAll(clients)
      await t.stop()
      let note = ''
      if (name.startsWith('gateway')) {
        const want = tp.frames + lt.n
        note = `${after.accepted} stored, ${after.rejected} rejected, ${after.duplicate} duplicate`
        if (afterTp.accepted !== tp.frames || after.accepted !== want) note += ` (EXPECTED ${want} stored)`
      }
      // RSS: a fresh process, idle, then with rssDevices connected and subscribed.
      const r = await start(name)
      const idle = (await r.stats()).rss
      const many = await connectDevices(r, rssSims, true)
      await new Promise((res) => setTimeout(res, 500))
      const loadedStats = await r.stats()
      const loaded = loadedStats.rss
      console.error(`  ${name}: ${rssDevices} devices: RSS ${fmt(loaded / 2 ** 20)} MB, V8 heap used ${fmt(loadedStats.heap / 2 ** 20)} MB`)
      // The same devices streaming one frame per second each: peak RSS sampled every 250 ms.
      let rssStream = loaded
      const sampler = setInterval(() => void r.stats().then((x) => (rssStream = Math.max(rssStream, x.rss)), () => {}), 250)
      const st = await within(latency(many, rssSims, 0, rssDevices, streamSeconds), 60_000 + streamSeconds * 1000, `${name} streaming`).finally(() => clearInterval(sampler))
      rssStream = Math.max(rssStream, (await r.stats()).rss)
      console.error(`  ${name}: ${rssDevices} devices streaming 1 frame/s for ${streamSeconds} s: peak RSS ${fmt(rssStream / 2 ** 20)} MB, p99 ${fmt(st.p99)} ms`)
      await endAll(many)
      await r.stop()
      rows[name] = { cpuPerFrame: (afterTp.cpuUs - beforeTp.cpuUs) / tp.frames, fps: tp.fps, p50: lt.p50, p99: lt.p99, max: lt.max, rssIdle: idle, rss1k: loaded, rssStream, p99Stream: st.p99, note }
      console.error(`  ${name} done`)
    }
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  }

  const MB = 1024 * 1024
  console.log(`# load average after: ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')}\n`)
  console.log(
    table(
      ['broker', 'frames/s (closed loop)', 'broker CPU us/frame', 'frames/s per core', `p50 ms @${rate}/s`, `p99 ms @${rate}/s`, 'max ms', 'RSS MB idle', `RSS MB ${rssDevices} dev`, `RSS MB ${rssDevices} dev streaming`, `p99 ms ${rssDevices} dev streaming`, 'notes'],
      Object.entries(rows).map(([n, r]) => [n.startsWith('gateway') ? `${n} (verify + store)` : `${n} (relay only)`, r.fps, r.cpuPerFrame, 1e6 / r.cpuPerFrame, r.p50, r.p99, r.max, r.rssIdle / MB, r.rss1k / MB, r.rssStream / MB, r.p99Stream, r.note]),
    ),
  )
  for (const r of runtimes) {
    const gn = `gateway:${r}`
    const g = rows[gn]
    if (!g) continue
    for (const other of [`aedes:${r}`, 'mosquitto']) {
      const o = rows[other]
      if (o) console.log(`${gn}/${other}: throughput ${fmt(g.fps / o.fps)}x, p99 ${fmt(g.p99 / o.p99)}x, RSS with ${rssDevices} devices ${fmt(g.rss1k / o.rss1k)}x`)
    }
    const mark = (ok: boolean) => (ok ? 'met' : 'MISSED')
    console.log(
      `${gn} targets: >= 10,000 frames/s verified and stored: ${fmt(g.fps)} (${mark(g.fps >= 10_000)}); p99 <= 50 ms at ${rate}/s: ${fmt(g.p99)} ms (${mark(g.p99 <= 50)}); RSS <= 150 MB with ${rssDevices} devices: ${fmt(g.rss1k / MB)} MB (${mark(g.rss1k <= 150 * MB)}), ${fmt(g.rssStream / MB)} MB while they stream 1 frame/s each (${mark(g.rssStream <= 150 * MB)})`,
    )
  }
}

if (args.serve) await serve(args.serve, args.dir!)
else await main()
