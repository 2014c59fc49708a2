/**
 * A fleet of virtual boards, each running the real built firmware bundle (hardware-sim/rig.ts),
 * provisioned with a gateway (or the recorder) the way `mhealth provision` does it, streaming
 * over real sockets, under one virtual clock.
 *
 * Scheduling: one loop advances every board in lockstep slices of virtual time (board.advance
 * is deterministic, and drains the socket I/O that arrived since), then yields to the event
 * loop so real I/O (the gateway, possibly in this process) runs. Virtual time is paced to
 * `speed` × real time; when the host cannot keep up the clock simply runs slower (no catch-up
 * bursts), and when the gateway falls behind (frames waiting for PUBACK pile up) a governor
 * lowers the speed towards 1 and raises it again once acknowledgements keep up.
 *
 * Faults (faults.ts) fire at their virtual times, between slices.
 */
import { mkdirSync, rmSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createBoardRig, provisionRig, registerBoard, firmwareBundle, samplesLost, type BoardRig, type Provisioned, type RigStatus } from '../rig.ts'
import type { CostOption } from '../board/board.ts'
import { CFG_FILE } from '../../firmware/config.ts'
import { fromHex } from '../../protocol/portable/bytes.ts'
import { registration } from '../../protocol/node/admin-client.ts'
import { patientSources, validateScenario, type PatientScenario, type PatientSources, type SourceSpec } from './scenario.ts'
import { faultTargets, faultTimeline, DEFAULT_DURATION, type Fault, type FaultAction } from './faults.ts'
import { FaultProxy } from '../faults/net-proxy.ts'

export interface FleetGateway {
  /** HTTP base URL: admin API (registration) and /api/time. */
  httpUrl: string
  adminToken: string
  mqttPort: number
  mqttHost?: string
}

export interface FleetOptions {
  devices: number
  gateway: FleetGateway
  /** Default ECG source for every board: 'synthetic' or 'mitdb:RECORD'. */
  source?: SourceSpec
  /** Base seed: board i gets seed mix(seed, i) for its SE key and signal models. Default 1. */
  seed?: number
  /** Virtual seconds per real second, at most (default 1). */
  speed?: number
  /** Which boards have a secure element: 'mixed' (even indexes SE, odd bare; default), 'se', 'bare', or a predicate. */
  profiles?: 'mixed' | 'se' | 'bare' | ((index: number) => 'se' | 'bare')
  /** Per-board patient scenarios, by board index. */
  scenarios?: Record<number, PatientScenario>
  faults?: Fault[]
  /** Put a TCP fault proxy between the boards and the gateway's MQTT port (implied by a gateway-restart fault). */
  proxy?: boolean
  /** Where boards keep flash and SE state; a temp dir removed by close() when omitted. */
  dir?: string
  mitdbDir?: string
  /** Patient ID registered for board i (default `sim-<seed>-<i>`). */
  patient?: (index: number) => string
  /** Extra mh.cfg fields for every board (ecgHz, windowS, ringSegments...). */
  firmwareConfig?: Record<string, unknown>
  /** Largest virtual step per loop iteration (default 100 ms). */
  sliceMs?: number
  /** Boards provisioned concurrently (default 16). */
  provisionConcurrency?: number
  /** Called as each board is provisioned. */
  onProvisioned?(n: number, total: number): void
  /** Firmware bundle text; default the one `mhealth firmware build` produces (built once per process). */
  bundle?: string
  /** Charge each board's callbacks the ESP32 time of the cost model (hardware-sim/cost); default the board's DEFAULT_COST. */
  cost?: CostOption
}

/** What the fleet's boards cost an ESP32 (FleetOptions.cost), over the run so far. */
export interface FleetCost {
  setting: string
  /** Share of one ESP32 core, per board (index order). */
  shares: number[]
  /** The longest callback of any board: ms, which board, which callback. */
  longest: { ms: number; board: number; name: string }
  /** ECG and PPG samples the boards' FIFOs overflowed (the firmware's own counters, all boots of this run). */
  samplesLost: number
}

export interface FleetBoard {
  index: number
  id: string
  profile: 'se' | 'bare'
  rig: BoardRig
  key: Provisioned['key']
  sources: PatientSources
  /** Board virtual time at fleet time 0. */
  baseMs: number
  /** Counters summed over the board's boots (mhStatus resets them at each boot). */
  totals: { frames: number; published: number; acked: number; nacks: number; connects: number; samplesLost: number }
  last: { boot: number; frames: number; published: number; acked: number; nacks: number; connects: number; samplesLost: number } | null
  status: RigStatus | null
}

export interface FleetStats {
  /** Fleet virtual ms since start. */
  virtualMs: number
  realMs: number
  devices: number
  connected: number
  frames: number
  published: number
  acked: number
  backlog: number
  /** Frames waiting in the flash of boards that are connected: grows when the gateway falls behind. */
  connectedBacklog: number
  nacks: number
  reboots: number
  outOfMemory: number
  /** Current speed target (the governor may hold it under the requested one). */
  speed: number
}

/**
 * A board from an earlier run (same `dir`): its flash already holds `mh.cfg` and, with an SE,
 * a personalised secure element. Keep its identity and counters (a fresh registration would
 * mean a new key), make sure the gateway knows it (409 = already registered), and point its
 * configuration at this gateway. Null when the board was never provisioned or changed profile.
 */
async function resumeRig(rig: BoardRig, profile: 'se' | 'bare', gw: FleetGateway, mqttPort: number, patient: string): Promise<Provisioned | null> {
  const r = rig.board.repl(`JSON.stringify(require("Storage").readJSON(${JSON.stringify(CFG_FILE)}, true) || null)`)
  const cfg = r.ok ? (JSON.parse(String(r.value)) as Provisioned['config'] | null) : null
  if (!cfg || typeof cfg.id !== 'string' || cfg.profile !== profile) return null
  let key: Provisioned['key']
  if (profile === 'se') key = { profile: 'se', publicKey: rig.readPublicKey() }
  else {
    if (typeof cfg.secret !== 'string') return null
    key = { profile: 'bare', secret: fromHex(cfg.secret) }
  }
  await registerBoard({ gatewayUrl: gw.httpUrl, adminToken: gw.adminToken }, registration(cfg.id, key, patient), cfg.id, true)
  const u = new URL(gw.httpUrl)
  const config = { ...cfg, gw: { ...cfg.gw, host: u.hostname, mqttPort, httpPort: Number(u.port || 80) } }
  rig.configure(config)
  return { id: cfg.id, profile, key, config }
}

/** The pump waits this many times the last collection's duration before the next (≤ 1/(1+F) of the time in GC). */
const GC_GAP_FACTOR = 4

const mix = (seed: number, i: number) => (Math.imul((seed >>> 0) ^ Math.imul(i + 1, 0x9e3779b1), 0x85ebca6b) >>> 0) % 1_000_000_007

export class Fleet {
  readonly boards: FleetBoard[] = []
  readonly proxy: FaultProxy | null
  /** Fleet virtual time (ms since start). */
  virtualMs = 0
  private timeline: FaultAction[]
  private nextFault = 0
  private speedTarget: number
  private readonly maxSpeed: number
  private running = false
  private stopRequested = false
  private realStart = 0
  private ownDir: boolean
  private gcTimer: NodeJS.Timeout | null = null
  private lastConnectedBacklog = 0
  /** Forced collections by the garbage pump and the real ms V8 spent in them (bench figures). */
  readonly gcStats = { count: 0, ms: 0 }
  /** Every fault applied, for reports and tests: [fleet ms, description]. */
  readonly faultLog: Array<[number, string]> = []

  private constructor(readonly opts: FleetOptions, readonly dir: string, proxy: FaultProxy | null) {
    this.proxy = proxy
    this.ownDir = !opts.dir
    this.maxSpeed = opts.speed ?? 1
    this.speedTarget = this.maxSpeed
    this.timeline = faultTimeline(opts.faults ?? [])
  }

  /** Builds, provisions and boots the boards. They do not run until run(). */
  static async start(opts: FleetOptions): Promise<Fleet> {
    if (!Number.isInteger(opts.devices) || opts.devices < 1) throw new RangeError(`devices: expected an integer >= 1, got ${opts.devices}`)
    if (opts.speed !== undefined && !(opts.speed > 0 && Number.isFinite(opts.speed))) throw new RangeError(`speed: expected a finite number > 0, got ${opts.speed}`)
    for (const [k, s] of Object.entries(opts.scenarios ?? {})) validateScenario(s, `scenario of dev${k}`)
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'mh-fleet-'))
    mkdirSync(dir, { recursive: true })
    const needProxy = opts.proxy || (opts.faults ?? []).some((f) => f.kind === 'gateway-restart')
    let proxy: FaultProxy | null = null
    if (needProxy) {
      proxy = new FaultProxy({ host: opts.gateway.mqttHost ?? '127.0.0.1', port: opts.gateway.mqttPort })
      await proxy.listen(0)
    }
    const fleet = new Fleet(opts, dir, proxy)
    try {
      await fleet.build()
    } catch (e) {
      await fleet.close()
      throw e
    }
    return fleet
  }

  private profileOf(i: number): 'se' | 'bare' {
    const p = this.opts.profiles ?? 'mixed'
    if (typeof p === 'function') return p(i)
    return p === 'mixed' ? (i % 2 === 0 ? 'se' : 'bare') : p
  }

  private async build(): Promise<void> {
    const o = this.opts
    const bundle = o.bundle ?? (await firmwareBundle())
    const seed = o.seed ?? 1
    const mqttPort = this.proxy ? this.proxy.port : o.gateway.mqttPort
    const conc = o.provisionConcurrency ?? 16
    let done = 0
    const one = async (i: number): Promise<void> => {
      const profile = this.profileOf(i)
      const bseed = mix(seed, i)
      // Scenario second 0 = board time 0; boards are advanced from there in lockstep.
      const sources = patientSources(o.scenarios?.[i] ?? {}, { seed: bseed, t0Ms: 0, fleetSource: o.source ?? 'synthetic', mitdbDir: o.mitdbDir })
      const rig = await createBoardRig({
        id: `dev${i}`, dir: join(this.dir, `dev${i}`), seed: bseed, se: profile === 'se', ecg: sources.ecg, ppg: sources.ppg,
        bundle, clock: Date.now(), gcPump: false, cost: this.opts.cost,
      })
      try {
        const patient = o.patient ? o.patient(i) : `sim-${seed}-${i}`
        const prov = (await resumeRig(rig, profile, o.gateway, mqttPort, patient)) ?? (await provisionRig(rig, {
          gatewayUrl: o.gateway.httpUrl, adminToken: o.gateway.adminToken, mqttPort, profile, patient, extra: o.firmwareConfig as never,
        }))
        this.boards[i] = {
          index: i, id: prov.id, profile, rig, key: prov.key, sources, baseMs: 0,
          totals: { frames: 0, published: 0, acked: 0, nacks: 0, connects: 0, samplesLost: 0 }, last: null, status: null,
        }
      } catch (e) {
        rig.close()
        throw new Error(`dev${i}: ${(e as Error).message}`)
      }
      o.onProvisioned?.(++done, o.devices)
    }
    let next = 0
    const workers = Array.from({ length: Math.min(conc, o.devices) }, async () => {
      while (next < o.devices) await one(next++)
    })
    const results = await Promise.allSettled(workers)
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined
    if (failed) throw failed.reason
    // All boards start together: their clocks line up at fleet time 0.
    for (const b of this.boards) {
      b.rig.board.boot()
      b.baseMs = b.rig.board.now
    }
  }

  /** What the boards cost an ESP32 so far (null when the fleet does not charge time); call after poll(). */
  cost(): FleetCost | null {
    const reports = this.boards.map((b) => b.rig.costReport())
    if (reports.some((r) => r === null)) return null
    // The boot script (the firmware's top level, run once as it boots) is not a callback of the
    // running board: it is left out of the share and of the longest callback.
    const boot = (name: string) => name === '.bootcde' || name === 'upload'
    let longest = { ms: 0, board: -1, name: '' }
    const shares: number[] = []
    for (let i = 0; i < reports.length; i++) {
      const r = reports[i]!
      let busyUs = r.busyUs
      for (const c of r.callbacks) {
        if (boot(c.name)) busyUs -= c.totalUs
        else if (c.maxUs / 1000 > longest.ms) longest = { ms: c.maxUs / 1000, board: this.boards[i]!.index, name: c.name }
      }
      shares.push(r.elapsedMs > 0 ? busyUs / 1000 / r.elapsedMs : 0)
    }
    return {
      setting: reports[0]?.setting ?? 'custom',
      shares,
      longest,
      samplesLost: this.boards.reduce((n, b) => n + b.totals.samplesLost, 0),
    }
  }

  /** Fleet-wide counters from the boards' own status (mhStatus), polled now. */
  poll(): FleetStats {
    let connected = 0
    let backlog = 0
    let reboots = 0
    let oom = 0
    let connectedBacklog = 0
    for (const b of this.boards) {
      let s: RigStatus | null = null
      try {
        s = b.rig.status()
      } catch {
        s = null
      }
      b.status = s
      if (b.rig.board.memory().outOfMemory) oom++
      if (!s || !s.up) continue
      const cur = {
        boot: s.boot ?? 0, frames: s.stats.frames, published: s.mqtt?.publishes ?? 0, acked: s.uplink?.acked ?? 0,
        nacks: s.stats.nacks, connects: s.mqtt?.connects ?? 0, samplesLost: lostTotal(s),
      }
      const prev = b.last && b.last.boot === cur.boot ? b.last : { boot: cur.boot, frames: 0, published: 0, acked: 0, nacks: 0, connects: 0, samplesLost: 0 }
      if (b.last && b.last.boot !== cur.boot) reboots++
      b.totals.frames += cur.frames - prev.frames
      b.totals.published += cur.published - prev.published
      b.totals.acked += cur.acked - prev.acked
      b.totals.nacks += cur.nacks - prev.nacks
      b.totals.connects += cur.connects - prev.connects
      b.totals.samplesLost += cur.samplesLost - prev.samplesLost
      b.last = cur
      if (s.connected) connected++
      backlog += s.backlog ?? 0
      if (s.connected) connectedBacklog += s.backlog ?? 0
    }
    const sum = (k: keyof FleetBoard['totals']) => this.boards.reduce((n, b) => n + b.totals[k], 0)
    return {
      virtualMs: this.virtualMs, realMs: this.running ? performance.now() - this.realStart : 0, devices: this.boards.length, connected,
      frames: sum('frames'), published: sum('published'), acked: sum('acked'), backlog, connectedBacklog, nacks: sum('nacks'), reboots, outOfMemory: oom, speed: this.speedTarget,
    }
  }

  /**
   * Runs until fleet time `untilMs` (virtual) or stop(). `onTick` gets fresh stats every
   * `pollMs` real ms (default 1000), which also drives the speed governor.
   */
  async run(o: { untilMs?: number; pollMs?: number; onTick?(s: FleetStats): void } = {}): Promise<FleetStats> {
    if (this.running) throw new Error('fleet is already running')
    this.running = true
    this.stopRequested = false
    this.realStart = performance.now()
    const slice = this.opts.sliceMs ?? 100
    const pollMs = o.pollMs ?? 1000
    let paceReal = performance.now()
    let paceVirt = this.virtualMs
    let lastPoll = performance.now()
    this.startGcPump()
    try {
      while (!this.stopRequested && (o.untilMs === undefined || this.virtualMs < o.untilMs)) {
        const now = performance.now()
        let target = paceVirt + (now - paceReal) * this.speedTarget
        if (target > this.virtualMs + slice) {
          // Behind schedule: step one slice and re-base, so a slow host runs slower, not in bursts.
          target = this.virtualMs + slice
          paceReal = now
          paceVirt = target
        }
        if (o.untilMs !== undefined) target = Math.min(target, o.untilMs)
        if (this.nextFault < this.timeline.length) target = Math.min(target, this.timeline[this.nextFault]!.atMs)
        if (target > this.virtualMs) this.advanceAll(target)
        while (this.nextFault < this.timeline.length && this.timeline[this.nextFault]!.atMs <= this.virtualMs) this.apply(this.timeline[this.nextFault++]!)
        if (performance.now() - lastPoll >= pollMs) {
          lastPoll = performance.now()
          const s = this.poll()
          this.govern(s)
          o.onTick?.(s)
        }
        // Let real I/O in (socket data, PUBACKs, the gateway if it shares this process).
        const ahead = (this.virtualMs - paceVirt) / this.speedTarget - (performance.now() - paceReal)
        await new Promise((r) => (ahead > 1 ? setTimeout(r, Math.min(ahead, 50)) : setImmediate(r)))
      }
    } finally {
      this.running = false
      this.stopGcPump()
    }
    return this.poll()
  }

  /** Ends run() after the current slice. */
  stop(): void {
    this.stopRequested = true
  }

  /**
   * Advances the fleet by `ms` virtual ms without real-time pacing, yielding to I/O between
   * slices (tests that need a fixed amount of simulated time as fast as possible).
   */
  async advance(ms: number): Promise<void> {
    const end = this.virtualMs + ms
    const slice = this.opts.sliceMs ?? 100
    this.startGcPump()
    try {
      while (this.virtualMs < end) {
        let target = Math.min(end, this.virtualMs + slice)
        if (this.nextFault < this.timeline.length) target = Math.min(target, Math.max(this.virtualMs, this.timeline[this.nextFault]!.atMs))
        if (target > this.virtualMs) this.advanceAll(target)
        while (this.nextFault < this.timeline.length && this.timeline[this.nextFault]!.atMs <= this.virtualMs) this.apply(this.timeline[this.nextFault++]!)
        await new Promise((r) => setImmediate(r))
      }
    } finally {
      this.stopGcPump()
    }
  }

  private advanceAll(target: number): void {
    for (const b of this.boards) {
      const want = b.baseMs + target
      if (want > b.rig.board.now) b.rig.board.advance(want - b.rig.board.now)
    }
    this.virtualMs = target
  }

  /**
   * The governor: frames published but not yet acknowledged mean the gateway (or the path
   * to it) is behind; at high speed its real latency turns into virtual seconds, which
   * trips keep-alive and PUBACK timeouts a real board would never see. The sign: boards that
   * are connected yet keep more frames in flash than before (their four-frame window is full
   * of frames waiting for PUBACK, so new frames go to flash). Halve the speed while that
   * grows; raise it again (by half, up to the requested speed) once it is back to about one
   * frame per board.
   */
  private govern(s: FleetStats): void {
    const grew = s.connectedBacklog > this.lastConnectedBacklog
    this.lastConnectedBacklog = s.connectedBacklog
    if (s.connected > 0 && grew) this.speedTarget = Math.max(1, this.speedTarget / 2)
    else if (s.connectedBacklog <= s.connected && this.speedTarget < this.maxSpeed) this.speedTarget = Math.min(this.maxSpeed, this.speedTarget * 1.5)
  }

  /**
   * Lets the I/O that is already under way finish without moving virtual time: every
   * board handles what arrived (PUBACKs, control messages) at its current instant, until
   * nothing changes for `quietMs` real ms. After stop(), what the gateway stored and what
   * the boards counted as acknowledged then agree.
   */
  async quiesce(quietMs = 250, maxMs = 10_000): Promise<void> {
    const t0 = performance.now()
    let last = -1
    let since = performance.now()
    while (performance.now() - t0 < maxMs) {
      await new Promise((r) => setTimeout(r, 25))
      for (const b of this.boards) b.rig.board.advance(0)
      const acked = this.poll().acked
      if (acked !== last) {
        last = acked
        since = performance.now()
      } else if (performance.now() - since >= quietMs) return
    }
  }

  private apply(a: FaultAction): void {
    const f = a.fault
    const dur = f.durationMs ?? DEFAULT_DURATION[f.kind]
    if (f.kind === 'gateway-restart') {
      if (a.phase !== 'start' || !this.proxy) return
      // The proxy keeps real time: the outage lasts `dur` virtual ms at the current speed.
      this.proxy.cut(Math.max(1, (dur ?? 5000) / this.speedTarget))
      this.faultLog.push([this.virtualMs, `gateway-restart for ${dur} ms`])
      return
    }
    for (const b of this.boards) {
      if (!faultTargets(f, b.index, b.id)) continue
      const board = b.rig.board
      const desc = `dev${b.index} ${f.kind}${a.phase === 'end' ? ' ends' : ''}`
      switch (f.kind) {
        case 'wifi-drop':
          board.wifiDrop(dur ?? 30_000)
          break
        case 'clock-skew':
          board.clockSkew(f.arg ?? 0)
          break
        case 'flash-full':
          board.flashFull(a.phase === 'start')
          break
        case 'brown-out':
          board.brownOut(f.arg ?? 0.5)
          break
        case 'i2c-gone':
          if (a.phase === 'start') board.i2cRemove(f.arg!)
          else board.i2cRestore(f.arg!)
          break
        case 'lead-off': {
          const from = board.now
          b.sources.ecg.forceLeadOff(from, from + (dur ?? 10_000))
          break
        }
      }
      this.faultLog.push([this.virtualMs, desc])
    }
  }

  /**
   * Espruino frees garbage at once; the virtual board only when V8 collects (see rig.ts).
   * One collection for the whole fleet, spaced by GC_GAP_FACTOR times what the last one took
   * (a fleet's heap is large and a full collection is not free).
   */
  private startGcPump(): void {
    if (this.gcTimer || this.boards.length === 0) return
    let busy = false
    let gap = 200
    const tick = () => {
      if (busy) return
      busy = true
      const t0 = performance.now()
      let gcMs = 0
      this.boards[0]!.rig.board.collect().then((ms) => {
        gcMs = ms
        for (const b of this.boards.slice(1)) b.rig.board.memory()
      }, () => {}).finally(() => {
        busy = false
        // The gap follows the whole round (the collection waits for the fleet's current slice).
        const took = performance.now() - t0
        this.gcStats.count++
        this.gcStats.ms += gcMs
        gap = Math.max(200, GC_GAP_FACTOR * took)
        if (this.gcTimer) {
          this.gcTimer = setTimeout(tick, gap)
          this.gcTimer.unref()
        }
      })
    }
    this.gcTimer = setTimeout(tick, gap)
    this.gcTimer.unref()
  }

  private stopGcPump(): void {
    if (this.gcTimer) clearTimeout(this.gcTimer)
    this.gcTimer = null
  }

  /** Closes every board (sockets, flash files) and the proxy; removes the temp dir. */
  async close(): Promise<void> {
    this.stop()
    this.stopGcPump()
    for (const b of this.boards) if (b) b.rig.close()
    if (this.proxy) await this.proxy.close()
    if (this.ownDir) rmSync(this.dir, { recursive: true, force: true })
  }
}

function lostTotal(s: RigStatus): number {
  const l = samplesLost(s)
  return l.ecg + l.ppg
}
