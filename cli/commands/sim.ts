import { readFileSync } from 'node:fs'
import { print, wantsHelp, type CliIO, type Command } from '../command.ts'
import { parseCli, stringOpt, requireOpt, intOpt, numOpt, choiceOpt, type Parsed } from '../args.ts'
import { CliError, UsageError } from '../errors.ts'
import { adminToken } from './provision.ts'
import { DEFAULTS } from '../../firmware/config.ts'
import type { DeviceView } from '../../protocol/node/admin-client.ts'

const RUN_USAGE = `Usage: mhealth sim --devices N --gateway URL (--data DIR | --admin-token T)
                   [--mqtt-port P] [--source synthetic|mitdb:RECORD] [--speed X] [--seed S]
                   [--profiles mixed|se|bare] [--seconds S] [--fault SPEC]... [--scenarios FILE]
                   [--state DIR] [--mitdb DIR] [--cost off|low|central|high]
       mhealth sim record --devices N --seconds S --out DIR [--source ...] [--seed S] [--speed X] [--fault SPEC]...
       mhealth sim attack ATTACK --gateway URL --mqtt-port P (--data DIR | --admin-token T)

Runs N virtual ESP32 boards, each booting the real firmware bundle (built once, as
'mhealth firmware build' does), provisions each with the gateway as 'mhealth provision'
does (admin API at URL, token from DIR/admin.token or --admin-token) and streams until
Ctrl-C (or --seconds of simulated time). Even boards have an ATECC608 (ES256), odd ones
are bare (HMAC) unless --profiles says otherwise.

Options:
  --devices N        number of boards (1..5000)
  --gateway URL      gateway HTTP API, e.g. http://127.0.0.1:8081
  --mqtt-port P      gateway MQTT port (default ${DEFAULTS.mqttPort})
  --source S         ECG: synthetic (ECGSYN-like model, default), mitdb:RECORD (MIT-BIH replay) or
                     ec13:NAME (ANSI/AAMI EC13 test waveform: 3a 3b 3c 3d tall-t step-120 step-40)
  --speed X          virtual seconds per real second, at most (default 1); lowered automatically
                     while the gateway falls behind
  --seed S           base seed: keys of the secure elements and the signal models (default: random)
  --seconds S        stop after S simulated seconds (default: until Ctrl-C)
  --fault SPEC       TARGET:KIND[=ARG]@START[+DURATION], repeatable; e.g.
                       dev0:wifi-drop@10s+30s    all:gateway-restart@20s+5s
                       dev1:clock-skew=+90s@5s   dev2:flash-full@0s+60s   dev3:brown-out=0.5@15s
                       dev4-7:i2c-gone=ppg@10s+20s   dev5:lead-off@30s+10s
  --scenarios FILE   JSON {"<board index>": {heartRateBpm, spo2, spo2Trajectory: [[s, %], ...],
                     arrhythmia: "af"|"pvc", leadOff: [[from_s, to_s]], fingerOff, source}, ...}
  --state DIR        keep the boards' flash and secure-element state here (default: a temp dir)
  --cost SETTING     charge every callback the time an ESP32 would spend in it (the cost model of
                     docs/hardware-sim-cost.md: low, central or high; default off, callbacks take
                     no virtual time); the summary then gives each board's share of one ESP32
                     core, the longest callback and the sensor samples lost to FIFO overflows

Progress (every second): simulated time, devices connected, frames made, sent and
acknowledged (totals and per second), frames waiting in the boards' flash, speed.
When no board has connected after 10 simulated seconds, a warning on stderr says so
(usually --mqtt-port is not the gateway's MQTT port).
Long runs at speed X: the boards' clocks run X times faster than the gateway's, so frame
times drift ahead by (X-1) x elapsed real time; the gateway refuses frames more than its
futureSkewMs (default 5 min) ahead.`

const RECORD_USAGE = `Usage: mhealth sim record --devices N --seconds S --out DIR [--source synthetic|mitdb:RECORD]
                          [--seed S] [--speed X] [--profiles mixed|se|bare] [--fault SPEC]... [--scenarios FILE]

Runs N boards with the real firmware for S simulated seconds against a local stand-in
gateway (no real gateway needed) and writes every frame they send to DIR/<deviceId>/<seq>.cose,
and DIR/devices.json: [{index, id, profile, publicKey (hex, SE) or secret (hex, bare),
patient, source, frames}]. Check any frame with
  mhealth frame verify DIR/<id>/<seq>.cose --key <publicKey or secret>
--speed defaults to 50 (as fast as the host allows up to that).`

const ATTACK_USAGE = `Usage: mhealth sim attack ATTACK --gateway URL [--mqtt-port P] (--data DIR | --admin-token T)

Registers two devices with the gateway (an attacker and a victim) and runs one hostile
attack against it, printing what the gateway did (CONNACK code, PUBACKs, NACK reasons).
ATTACK: tampered, replay, forged-id, stale-token, replayed-token, malformed, oversized,
wrong-topic, flood, or all.`

const runOptions = {
  devices: { type: 'string' }, gateway: { type: 'string' }, 'mqtt-port': { type: 'string' }, data: { type: 'string' },
  'admin-token': { type: 'string' }, source: { type: 'string' }, speed: { type: 'string' }, seed: { type: 'string' },
  seconds: { type: 'string' }, fault: { type: 'string', multiple: true }, scenarios: { type: 'string' }, state: { type: 'string' },
  profiles: { type: 'string' }, mitdb: { type: 'string' }, out: { type: 'string' }, cost: { type: 'string' },
} as const

const adminTokenOf = (p: Parsed): Promise<string> =>
  adminToken(stringOpt(p, 'admin-token'), stringOpt(p, 'data'), 'provisioning needs the gateway admin token: pass --admin-token T or --data GATEWAY_DATA_DIR')

async function commonFleetOptions(p: Parsed) {
  const { parseFault, FaultSpecError } = await import('../../hardware-sim/fleet/faults.ts')
  const { parseSource, validateScenario, ScenarioError } = await import('../../hardware-sim/fleet/scenario.ts')
  const devices = intOpt(p, 'devices', 0, 1, 5000)
  if (devices === 0) throw new UsageError('--devices is required')
  const source = stringOpt(p, 'source') ?? 'synthetic'
  const faultsRaw = (p.values.fault as string[] | undefined) ?? []
  try {
    parseSource(source)
    const faults = faultsRaw.map(parseFault)
    let scenarios: Record<number, object> | undefined
    const file = stringOpt(p, 'scenarios')
    if (file) {
      let raw: unknown
      try {
        raw = JSON.parse(readFileSync(file, 'utf8'))
      } catch (e) {
        throw new CliError(`--scenarios ${file}: ${(e as Error).message}`)
      }
      if (typeof raw !== 'object' || raw === null) throw new CliError(`--scenarios ${file}: expected a JSON object keyed by board index`)
      scenarios = {}
      for (const [k, v] of Object.entries(raw)) {
        if (!/^\d+$/.test(k) || Number(k) >= devices) throw new CliError(`--scenarios ${file}: key '${k}' is not a board index 0..${devices - 1}`)
        scenarios[Number(k)] = validateScenario(v, `${file}[${k}]`)
      }
    }
    return {
      devices, source, faults, scenarios,
      seed: intOpt(p, 'seed', (Date.now() % 1_000_000_000) >>> 0, 0, 2 ** 32 - 1),
      profiles: choiceOpt(p, 'profiles', ['mixed', 'se', 'bare'] as const, 'mixed'),
      mitdbDir: stringOpt(p, 'mitdb'),
      state: stringOpt(p, 'state'),
    }
  } catch (e) {
    if (e instanceof FaultSpecError || e instanceof ScenarioError) throw new UsageError(e.message)
    throw e
  }
}

/**
 * A board is up within a few simulated seconds of boot (WiFi, then MQTT). None after this
 * long, and a few real seconds for the sockets, means they cannot reach the broker at all:
 * most often --mqtt-port is not the gateway's MQTT port.
 */
const NO_CONNECT_WARN = { virtualMs: 10_000, realMs: 3_000 }

function fmtTick(s: { virtualMs: number; devices: number; connected: number; frames: number; published: number; acked: number; backlog: number; speed: number }, prev: { published: number; acked: number; realMs: number } | null, realMs: number): string {
  const dt = prev ? (realMs - prev.realMs) / 1000 : 0
  const rate = (n: number, p: number | undefined) => (prev && dt > 0 ? `(+${Math.round((n - (p ?? 0)) / dt)}/s)` : '')
  return `t=${(s.virtualMs / 1000).toFixed(1)}s up ${s.connected}/${s.devices} frames ${s.frames} sent ${s.published} ${rate(s.published, prev?.published)} acked ${s.acked} ${rate(s.acked, prev?.acked)} backlog ${s.backlog} speed ${Math.round(s.speed * 10) / 10}x`
}

/** The --cost summary: the boards' share of an ESP32 core, the longest callback, samples lost. */
function fmtCost(c: { setting: string; shares: number[]; longest: { ms: number; board: number; name: string }; samplesLost: number }): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)} %`
  const mean = c.shares.reduce((a, b) => a + b, 0) / c.shares.length
  return `esp32 (cost ${c.setting}): ${pct(Math.min(...c.shares))} to ${pct(Math.max(...c.shares))} of a core (mean ${pct(mean)}); ` +
    `longest callback ${c.longest.ms.toFixed(1)} ms (dev${c.longest.board} ${c.longest.name}); samples lost ${c.samplesLost}`
}

async function runFleet(argv: string[], io: CliIO): Promise<number> {
  const p = parseCli(argv, runOptions)
  const c = await commonFleetOptions(p)
  const gateway = requireOpt(p, 'gateway')
  let url: URL
  try {
    url = new URL(gateway)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme')
  } catch {
    throw new UsageError(`--gateway: expected the gateway's HTTP URL like http://127.0.0.1:8081, got '${gateway}'`)
  }
  const mqttPort = intOpt(p, 'mqtt-port', DEFAULTS.mqttPort, 1, 65535)
  const speed = numOpt(p, 'speed', 1, 0.01, 1000)
  const seconds = numOpt(p, 'seconds', 0, 0)
  const cost = choiceOpt(p, 'cost', ['off', 'low', 'central', 'high'] as const, 'off')
  const token = await adminTokenOf(p)
  // The admin API answers before we build boards: a wrong URL or token fails fast.
  const { AdminClient, AdminApiError, GatewayUnreachableError } = await import('../../protocol/node/admin-client.ts')
  try {
    await new AdminClient(url, token).list()
  } catch (e) {
    if (e instanceof GatewayUnreachableError) throw new CliError(`cannot reach the gateway at ${gateway}: ${e.reason}`)
    if (e instanceof AdminApiError && (e.status === 401 || e.status === 403)) throw new CliError(`the gateway at ${gateway} refused the admin token (HTTP ${e.status})`)
    if (e instanceof AdminApiError) throw new CliError(`the gateway at ${gateway} answered HTTP ${e.status} to the admin API`)
    throw e
  }

  const { Fleet } = await import('../../hardware-sim/fleet/fleet.ts')
  const api = new AdminClient(url, token)
  const startedMs = Date.now()
  io.stderr.write(`building the firmware and provisioning ${c.devices} boards (seed ${c.seed})...\n`)
  let lastShown = 0
  let fleet: Awaited<ReturnType<typeof Fleet.start>> | null = null
  let interrupted = false
  // Installed before provisioning, so a Ctrl-C then still ends in the clean-up below (a second one kills).
  const onSig = () => {
    interrupted = true
    io.stderr.write('stopping...\n')
    fleet?.stop()
  }
  process.once('SIGINT', onSig)
  process.once('SIGTERM', onSig)
  try {
    fleet = await Fleet.start({
      devices: c.devices, gateway: { httpUrl: url.origin, adminToken: token, mqttPort, mqttHost: url.hostname }, source: c.source, seed: c.seed, speed,
      profiles: c.profiles, scenarios: c.scenarios as never, faults: c.faults, dir: c.state, mitdbDir: c.mitdbDir, cost,
      onProvisioned: (n, total) => {
        if (n === total || Date.now() - lastShown > 1000) {
          lastShown = Date.now()
          io.stderr.write(`provisioned ${n}/${total}\n`)
        }
      },
    }).catch((e: Error) => {
      throw new CliError(e.message)
    })
    if (!interrupted) await streamFleet(fleet, io, { seconds, url, mqttPort })
  } finally {
    process.off('SIGINT', onSig)
    process.off('SIGTERM', onSig)
    await fleet?.close()
    // Without --state the boards' keys die with their temp dir: leave no device behind that
    // nothing can ever use (with --state the next run resumes them under the same IDs).
    if (!c.state) await retireSimDevices(api, io, (d) => SIM_PATIENT(c.seed).test(d.patient) && d.createdMs >= startedMs - CLOCK_SLACK_MS)
  }
  return 0
}

/** Fleet boards are registered for patients sim-<seed>-<index> (hardware-sim/fleet/fleet.ts). */
const SIM_PATIENT = (seed: number) => new RegExp(`^sim-${seed}-\\d+$`)
/** The gateway stamps createdMs with its own clock, which may trail ours a little. */
const CLOCK_SLACK_MS = 60_000

/**
 * Deletes (gateway/registry.ts: a tombstone that keeps the key, so their frames still verify)
 * the devices this run registered; says so on stderr. Failures are reported, not thrown:
 * the run's own outcome stands, and 'mhealth device delete' can finish the job.
 */
async function retireSimDevices(api: import('../../protocol/node/admin-client.ts').AdminClient, io: CliIO, mine: (d: DeviceView) => boolean): Promise<void> {
  try {
    const ids = (await api.list()).filter((d) => d.status !== 'deleted' && mine(d)).map((d) => d.id)
    for (const id of ids) await api.delete(id)
    if (ids.length) io.stderr.write(`deleted the ${ids.length} simulated devices from the gateway's registry (their frames stay in the ledger)\n`)
  } catch (e) {
    io.stderr.write(`warning: could not delete the simulated devices from the gateway: ${(e as Error).message}; remove them with 'mhealth device delete'\n`)
  }
}

async function streamFleet(fleet: import('../../hardware-sim/fleet/fleet.ts').Fleet, io: CliIO, o: { seconds: number; url: URL; mqttPort: number }): Promise<void> {
  const { seconds, url, mqttPort } = o
  let prev: { published: number; acked: number; realMs: number } | null = null
  let everConnected = false
  let warned = false
  const t0 = performance.now()
  print(io, `devices: ${fleet.boards.map((b) => `dev${b.index}=${b.id}(${b.profile})`).join(' ')}`)
  await fleet.run({
    untilMs: seconds > 0 ? seconds * 1000 : undefined,
    onTick: (s) => {
      const real = performance.now() - t0
      print(io, fmtTick(s, prev, real))
      everConnected ||= s.connected > 0
      if (!everConnected && !warned && s.virtualMs >= NO_CONNECT_WARN.virtualMs && real >= NO_CONNECT_WARN.realMs) {
        warned = true
        io.stderr.write(`warning: no board could connect to MQTT at ${url.hostname}:${mqttPort} after ${(s.virtualMs / 1000).toFixed(0)} simulated s; is --mqtt-port the gateway's MQTT port (its "ready" line lists it)?\n`)
      }
      prev = { published: s.published, acked: s.acked, realMs: real }
    },
  })
  // PUBACKs already on their way are counted before the summary (it then matches the gateway's store).
  await fleet.quiesce()
  const s = fleet.poll()
  for (const [t, d] of fleet.faultLog) print(io, `fault at ${(t / 1000).toFixed(1)}s: ${d}`)
  print(io, `done: ${fmtTick(s, null, 0)}; ${((performance.now() - t0) / 1000).toFixed(1)} s real`)
  const fc = fleet.cost()
  if (fc) print(io, fmtCost(fc))
}

async function record(argv: string[], io: CliIO): Promise<number> {
  const p = parseCli(argv, runOptions)
  const c = await commonFleetOptions(p)
  const seconds = numOpt(p, 'seconds', 0, 1, 24 * 3600)
  if (seconds === 0) throw new UsageError('--seconds is required')
  const out = requireOpt(p, 'out')
  const speed = numOpt(p, 'speed', 50, 0.01, 1000)
  const { startRecorder, writeDevicesJson } = await import('../../hardware-sim/fleet/recorder.ts')
  const { Fleet } = await import('../../hardware-sim/fleet/fleet.ts')
  const rec = await startRecorder(out)
  try {
    const fleet = await Fleet.start({
      devices: c.devices, gateway: { httpUrl: rec.httpUrl, adminToken: 'recorder', mqttPort: rec.mqttPort }, source: c.source, seed: c.seed, speed,
      profiles: c.profiles, scenarios: c.scenarios as never, faults: c.faults, dir: c.state, mitdbDir: c.mitdbDir,
    }).catch((e: Error) => {
      throw new CliError(e.message)
    })
    try {
      await fleet.run({ untilMs: seconds * 1000 })
      // Let frames already sent get their PUBACK (a few more simulated seconds at most).
      for (let i = 0; i < 100; i++) {
        const s = fleet.poll()
        if (s.backlog === 0 && s.connected === s.devices) break
        await fleet.advance(100)
      }
      const s = fleet.poll()
      await fleet.quiesce()
      const entries = fleet.boards.map((b) => {
        const d = rec.devices.get(b.id)!
        return { index: b.index, ...d, source: b.sources.summary.source, frames: rec.written.get(b.id) ?? 0 }
      })
      const path = writeDevicesJson(out, entries)
      print(io, `recorded ${rec.stats.frames} frames (${rec.stats.bytes} bytes) from ${c.devices} boards over ${seconds} simulated s into ${out}; ${path}`)
      if (rec.stats.invalid > 0) print(io, `warning: ${rec.stats.invalid} frames did not verify and were not written`)
      if (s.outOfMemory > 0) print(io, `warning: ${s.outOfMemory} boards ran out of memory`)
    } finally {
      await fleet.close()
    }
  } finally {
    await rec.close()
  }
  return 0
}

async function attack(argv: string[], io: CliIO): Promise<number> {
  const p = parseCli(argv, runOptions, { min: 1, max: 1, names: ['ATTACK'] })
  const { ATTACKS, runAttack } = await import('../../hardware-sim/faults/hostile.ts')
  const which = p.positionals[0]!
  if (which !== 'all' && !(ATTACKS as readonly string[]).includes(which)) throw new UsageError(`unknown attack '${which}' (expected one of ${ATTACKS.join(', ')}, all)`)
  const gateway = requireOpt(p, 'gateway')
  const mqttPort = intOpt(p, 'mqtt-port', DEFAULTS.mqttPort, 1, 65535)
  const token = await adminTokenOf(p)
  const { registerAttackers } = await import('../../hardware-sim/faults/hostile.ts')
  const u = new URL(gateway)
  const { AdminClient } = await import('../../protocol/node/admin-client.ts')
  const api = new AdminClient(gateway, token)
  // Ctrl-C: the attack in progress ends (its sockets close with the process) after the clean-up.
  let interrupted = false
  const onSig = () => {
    interrupted = true
    io.stderr.write('stopping...\n')
  }
  process.once('SIGINT', onSig)
  process.once('SIGTERM', onSig)
  const pair = await registerAttackers(gateway, token).catch((e: Error) => {
    process.off('SIGINT', onSig)
    process.off('SIGTERM', onSig)
    throw new CliError(e.message)
  })
  try {
    for (const a of which === 'all' ? ATTACKS : [which as (typeof ATTACKS)[number]]) {
      if (interrupted) break
      const r = await runAttack(a, { url: `mqtt://${u.hostname}:${mqttPort}`, key: pair.attacker, victimId: pair.victim.id, counter: pair.counter })
      print(io, JSON.stringify(r))
    }
  } finally {
    process.off('SIGINT', onSig)
    process.off('SIGTERM', onSig)
    // The two keys exist only in this process: their registrations would be active devices no one holds.
    const ids = new Set([pair.attacker.id, pair.victim.id])
    await retireSimDevices(api, io, (d) => ids.has(d.id))
  }
  return interrupted ? 130 : 0
}

export const command: Command = {
  name: 'sim',
  summary: 'run a fleet of virtual boards with the real firmware against a gateway (or record frames)',
  usage: RUN_USAGE,
  async run(argv, io) {
    const sub = argv[0]
    if (sub === 'record') {
      if (wantsHelp(argv)) return print(io, RECORD_USAGE), 0
      return record(argv.slice(1), io)
    }
    if (sub === 'attack') {
      if (wantsHelp(argv)) return print(io, ATTACK_USAGE), 0
      return attack(argv.slice(1), io)
    }
    if (wantsHelp(argv)) return print(io, RUN_USAGE), 0
    return runFleet(argv, io)
  },
}
