/**
 * A complete virtual mHealth board: a VirtualBoard wired with the device models and the
 * built firmware bundle in `.bootcde`, the way a flashed board boots. Shared by the firmware
 * tests, the firmware bench and the fleet simulator.
 *
 * Wiring (defaults of firmware/config.ts):
 *   ATECC608  I2C1 (SDA D21, SCL D22) at 0x60; its wake (SDA held low, which firmware does
 *             by writing to address 0x00) is forwarded to `se.wake(nowMs)`
 *   MAX30102  I2C1 at 0x57
 *   AD8232    OUTPUT -> D36 (ADC), LO+ -> D34, LO- -> D35
 *   battery   cell through a 1:2 divider -> D39 (ADC)
 */
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { VirtualBoard, type VirtualBoardOptions, type CostReport } from './board/board.ts'
import type { I2CDevice } from './hardware.ts'
import { Atecc608 } from './devices/atecc608.ts'
import { Max30102 } from './devices/max30102.ts'
import { Ad8232 } from './devices/ad8232.ts'
import { Max30003 } from './devices/max30003.ts'
import { Battery, type BatteryOptions } from './devices/battery.ts'
import { EcgSynth } from './signals/ecg-synth.ts'
import type { EcgSource, PpgSource } from './signals/types.ts'
import { CFG_FILE, DEFAULTS, type Config } from '../firmware/config.ts'
import { fromHex, toHex } from '../protocol/portable/bytes.ts'
import { AdminClient, AdminApiError, newIdentity, registration, type DeviceRegistration } from '../protocol/node/admin-client.ts'
import type { DeviceKey } from '../protocol/node/verify.ts'

export type { Config as FirmwareConfig } from '../firmware/config.ts'

/** GPIO number of an Espruino pin name ('D36' -> 36). */
const gpio = (name: string): number => Number(name.slice(1))

/** Pin numbers of the reference wiring (GPIO numbers), as the firmware's defaults set it. */
export const RIG_PINS = {
  ecg: gpio(DEFAULTS.pins.ecg), loPlus: gpio(DEFAULTS.pins.loPlus), loMinus: gpio(DEFAULTS.pins.loMinus),
  sda: gpio(DEFAULTS.pins.sda), scl: gpio(DEFAULTS.pins.scl), battery: gpio(DEFAULTS.pins.bat),
  ecgCs: gpio(DEFAULTS.pins.ecgCs), ecgInt: gpio(DEFAULTS.pins.ecgInt),
} as const

/**
 * Garbage pump. Espruino frees an object the moment its last reference goes (reference
 * counting); the virtual board counts buffers until V8 collects them, which can take seconds
 * while run() keeps the host busy, and the firmware's per-frame garbage (~500 JsVars/s of
 * short-lived buffers) then reads as an out-of-memory that a real board would not have.
 * While any rig is open, one collection every `GC_PUMP_MS` real ms (shared by all rigs, so
 * a fleet pays one V8 collection, not one per board) brings the estimate back to what is live.
 */
const GC_PUMP_MS = 200
const pumped = new Set<VirtualBoard>()
let pumpTimer: NodeJS.Timeout | null = null
let pumping = false
function pumpAdd(b: VirtualBoard): void {
  pumped.add(b)
  if (pumpTimer) return
  pumpTimer = setInterval(() => {
    if (pumping) return
    const boards = [...pumped]
    if (boards.length === 0) return
    pumping = true
    boards[0]!.collect().then(
      () => {
        for (const o of boards.slice(1)) if (pumped.has(o)) o.memory()
      },
      () => {},
    ).finally(() => {
      pumping = false
    })
  }, GC_PUMP_MS)
  pumpTimer.unref()
}
function pumpRemove(b: VirtualBoard): void {
  pumped.delete(b)
  if (pumped.size === 0 && pumpTimer) {
    clearInterval(pumpTimer)
    pumpTimer = null
  }
}

let bundlePromise: Promise<string> | null = null

/** The firmware bundle (firmware/build/bundle.ts), built once per process (esbuild, ~1 s) and cached. */
export function firmwareBundle(): Promise<string> {
  if (!bundlePromise) {
    bundlePromise = import('../firmware/build/bundle.ts').then((m) => m.buildBundle()).then((b) => b.code)
    bundlePromise.catch(() => {
      bundlePromise = null
    })
  }
  return bundlePromise
}

/** A finger resting on the sensor: DC levels in range with a ~72 bpm pulse. */
export const steadyFinger: PpgSource = {
  light: (t: number) => {
    const pulse = 1 + 0.02 * Math.sin((2 * Math.PI * t) / 833)
    return { red: 0.3 * pulse, ir: 0.4 * pulse, ambient: 0.001 }
  },
  fingerOn: () => true,
}

export interface BoardRigOptions {
  /** Board name in messages (default 'rig'). */
  id?: string
  /** Directory for flash.bin and atecc.json; a temp dir removed by close() when omitted. Reuse it to "power on" the same board again. */
  dir?: string
  /** Base seed for the models (SE keys, ECG, PPG noise); default 1. */
  seed?: number
  /** ATECC608 fitted (SE profile); default true. */
  se?: boolean
  /** ECG source for both ECG front ends (MAX30003 on SPI2, AD8232 on an ADC pin); default EcgSynth({ seed }). */
  ecg?: EcgSource
  /** PPG source for the MAX30102, or false for no MAX30102 on the bus; default steadyFinger. */
  ppg?: PpgSource | false
  /** Battery model on D39, or false; default 24 h runtime from full. */
  battery?: BatteryOptions | false
  /** Firmware code; default firmwareBundle(). */
  bundle?: string
  /** Write the bundle to `.bootcde` (default true); false = a board as it leaves the factory, for `mhealth flash`. */
  install?: boolean
  /** Written to Storage `mh.cfg` before boot (the result of provisioning). */
  config?: Config
  /** Boot once set up (default true). Without a config the firmware only defines its REPL helpers. */
  boot?: boolean
  /** Passed to VirtualBoard. */
  clock?: number
  wifi?: VirtualBoardOptions['wifi']
  memoryVars?: number
  /** Collect garbage while the rig is open (see the garbage pump above); default true. */
  gcPump?: boolean
  /** Charge callbacks the time an ESP32 spends in them (VirtualBoardOptions.cost); default the board's DEFAULT_COST. */
  cost?: VirtualBoardOptions['cost']
}

export interface BoardRig {
  board: VirtualBoard
  /** The ATECC608 model, null when `se: false`. */
  se: Atecc608 | null
  ppg: Max30102 | null
  /** The AD8232 option on its ADC pin. */
  ecg: Ad8232
  /** The MAX30003 on SPI2 (chip select RIG_PINS.ecgCs, INTB on RIG_PINS.ecgInt). */
  ecgFifo: Max30003
  battery: Battery | null
  /** Every console line the board printed (also across reboots). */
  lines: string[]
  dir: string
  /** Writes `mh.cfg` (takes effect at the next boot). */
  configure(cfg: Config): void
  /** `mhStatus()` parsed (fw, boot, seq, sampler/signer/mqtt/uplink stats, backlog, mem); null before provisioning. */
  status(): RigStatus | null
  /**
   * SE profile: personalises the secure element if blank and returns its 65-byte public key.
   * Steps virtual time itself, so call it while the board is not inside run().
   */
  readPublicKey(): Uint8Array
  /** What the callbacks cost an ESP32 (board.costReport()); null when the rig does not charge time. */
  costReport(opts?: { reset?: boolean }): CostReport | null
  /** Steps virtual time until a console line matching `re` appears after this call; returns it. Not inside run(). */
  advanceUntilLine(re: RegExp, maxMs?: number): string
  close(): void
}

/**
 * ECG and PPG samples a board's firmware counts as lost: the FIFO acquisition's overflow
 * counters (`ecgLost`, `ppgLost`; its `missed` is their sum), or for the frozen per-sample
 * firmware its missed ECG ticks and lost PPG samples.
 */
export function samplesLost(s: RigStatus): { ecg: number; ppg: number } {
  const a = s.sampler as (RigStatus['sampler'] & { ecgLost?: number }) | undefined
  if (!a) return { ecg: 0, ppg: 0 }
  return { ecg: a.ecgLost !== undefined ? a.ecgLost : a.missed ?? 0, ppg: a.ppgLost ?? 0 }
}

/** What mhStatus() returns (firmware/main.ts). */
export interface RigStatus {
  fw: string
  up: boolean
  boot?: number
  seq?: number
  connected?: boolean
  backlog?: number
  synced?: boolean
  elapsedMs?: number
  stats: { frames: number; frameMs: number; signErrors: number; sendMs: number; nacks: number; bytes: number; startMs: number; timeErrors: number }
  sampler?: { ticks: number; missed: number; maxLateMs: number; sumLateMs: number; overruns: number; ppgLost: number; busyMs: number }
  signer?: { count: number; errors: number; busyMs: number }
  mqtt?: Record<string, number>
  uplink?: Record<string, number>
  mem?: { usage: number; total: number; free: number }
}

/** The wake convention: an I2C write to address 0x00 holds SDA low long enough to wake the part. */
function wakeForwarder(se: Atecc608): I2CDevice {
  return {
    address: 0x00,
    write: (_d: Uint8Array, nowMs: number) => {
      se.wake(nowMs)
      return false // nothing answers at 0x00: the write is NACKed, as on a real bus
    },
    read: () => null,
  }
}

export async function createBoardRig(opts: BoardRigOptions = {}): Promise<BoardRig> {
  const seed = opts.seed ?? 1
  const ownDir = !opts.dir
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'mh-rig-'))
  if (!ownDir) mkdirSync(dir, { recursive: true })
  const install = opts.install !== false
  const code = install ? opts.bundle ?? (await firmwareBundle()) : ''
  const se = opts.se === false ? null : new Atecc608({ seed: seed * 7 + 3, statePath: join(dir, 'atecc.json') })
  const ppg = opts.ppg === false ? null : new Max30102({ source: opts.ppg ?? steadyFinger, seed: seed * 7 + 5 })
  // One patient, two front ends: sources are read in increasing time, which holds because a
  // firmware drives one of them (the other is never read: both models catch up lazily on access).
  const ecgSource = opts.ecg ?? new EcgSynth({ seed: seed * 7 + 9 })
  const ecg = new Ad8232({ source: ecgSource })
  const ecgFifo = new Max30003({ source: ecgSource })
  const battery = opts.battery === false ? null : new Battery(opts.battery ?? { runtimeMs: 24 * 3600_000 })
  const i2c: I2CDevice[] = []
  if (se) i2c.push(se, wakeForwarder(se))
  if (ppg) i2c.push(ppg)
  const analog: VirtualBoardOptions['analog'] = { [RIG_PINS.ecg]: ecg.output }
  if (battery) analog[RIG_PINS.battery] = battery
  const board = new VirtualBoard({
    id: opts.id ?? 'rig',
    storagePath: join(dir, 'flash.bin'),
    i2c: { I2C1: i2c },
    spi: { SPI2: [{ cs: RIG_PINS.ecgCs, device: ecgFifo }] },
    analog,
    digitalIn: { [RIG_PINS.loPlus]: ecg.loPlus, [RIG_PINS.loMinus]: ecg.loMinus, [RIG_PINS.ecgInt]: ecgFifo.intb },
    clock: opts.clock,
    wifi: opts.wifi,
    memoryVars: opts.memoryVars,
    cost: opts.cost,
  })
  const lines: string[] = []
  board.console.on('line', (l: string) => lines.push(l))
  if (install) board.repl(`require("Storage").write(".bootcde", ${JSON.stringify(code)})`)
  const rig: BoardRig = {
    board, se, ppg, ecg, ecgFifo, battery, lines, dir,
    configure(cfg) {
      const r = board.repl(`require("Storage").writeJSON(${JSON.stringify(CFG_FILE)}, ${JSON.stringify(cfg)})`)
      if (!r.ok) throw new Error(`writing ${CFG_FILE} failed: ${String(r.value)}`)
    },
    status() {
      const r = board.repl('typeof mhStatus === "function" ? mhStatus() : "null"')
      return r.ok ? (JSON.parse(String(r.value)) as RigStatus | null) : null
    },
    costReport(o) {
      return board.costReport(o)
    },
    advanceUntilLine(re, maxMs = 5000) {
      const from = lines.length
      for (let t = 0; t <= maxMs; t += 5) {
        const hit = lines.slice(from).find((l) => re.test(l))
        if (hit !== undefined) return hit
        board.advance(5)
      }
      throw new Error(`no console line matching ${re} within ${maxMs} virtual ms`)
    },
    readPublicKey() {
      if (!se) throw new Error('readPublicKey: this rig has no secure element (se: false)')
      board.repl('mhPubKey()')
      const l = rig.advanceUntilLine(/^PUBKEY/, 5000)
      if (!l.startsWith('PUBKEY ')) throw new Error(`the secure element gave no key: ${l}`)
      return fromHex(l.slice(7))
    },
    close() {
      pumpRemove(board)
      board.close()
      if (ownDir) rmSync(dir, { recursive: true, force: true })
    },
  }
  if (opts.gcPump !== false) pumpAdd(board)
  if (opts.config) rig.configure(opts.config)
  if (opts.boot !== false) board.boot()
  return rig
}

export interface ProvisionOptions {
  /** Gateway HTTP base URL, e.g. http://127.0.0.1:8081 (admin API and /api/time). */
  gatewayUrl: string
  adminToken: string
  mqttPort: number
  /** Default: 'se' when the rig has a secure element, else 'bare'. */
  profile?: 'se' | 'bare'
  patient?: string
  wifi?: { ssid: string; pass?: string }
  /** Extra mh.cfg fields (ecgHz, windowS, ringSegments, pins...). */
  extra?: Partial<Config>
}

export interface Provisioned {
  id: string
  profile: 'se' | 'bare'
  /** For verifying frames on Node. */
  key: DeviceKey
  config: Config
}

/**
 * What `mhealth provision` does over serial, done directly on a rig: the SE's public key
 * (or a fresh random ID and HMAC secret), `POST /api/devices` with the admin token, `mh.cfg`
 * written. Boot the board afterwards (`rig.board.boot()`) to start streaming.
 * Call while the board is not inside run() (reading the SE key steps virtual time).
 */
export async function provisionRig(rig: BoardRig, o: ProvisionOptions): Promise<Provisioned> {
  const profile = o.profile ?? (rig.se ? 'se' : 'bare')
  const { id, key } = newIdentity(profile === 'se' ? rig.readPublicKey() : null)
  await registerBoard(o, registration(id, key, o.patient ?? 'unassigned'), id)
  const u = new URL(o.gatewayUrl)
  const config: Config = {
    ...o.extra, ...keyConfig(key), id, profile, t: Date.now(),
    wifi: o.wifi ?? { ssid: 'clinic', pass: 'password1' },
    gw: { host: u.hostname, mqttPort: o.mqttPort, httpPort: Number(u.port || 80) },
  }
  rig.configure(config)
  return { id, profile, key, config }
}

/** The mh.cfg fields that say how the board signs: its SE key slot, or its HMAC secret. */
export function keyConfig(key: DeviceKey): Partial<Config> {
  return key.profile === 'se' ? { slot: DEFAULTS.slot } : { secret: toHex(key.secret) }
}

/**
 * POST /api/devices for a board. With `existingOk`, "already registered" (409: a board from an
 * earlier run coming back) is not an error.
 */
export async function registerBoard(gw: { gatewayUrl: string; adminToken: string }, body: DeviceRegistration, id: string, existingOk = false): Promise<void> {
  try {
    await new AdminClient(gw.gatewayUrl, gw.adminToken).register(body)
  } catch (e) {
    if (!(e instanceof AdminApiError)) throw e
    if (existingOk && e.status === 409) return
    throw new Error(`the gateway refused the registration of ${id} (HTTP ${e.status}): ${e.body.slice(0, 200)}`)
  }
}

/** Advances virtual time in steps until `cond` holds (for purely virtual waits; not inside run()). */
export function advanceUntil(board: VirtualBoard, cond: () => boolean, maxMs: number, stepMs = 10): void {
  for (let t = 0; t < maxMs && !cond(); t += stepMs) board.advance(stepMs)
  if (!cond()) throw new Error(`condition not reached within ${maxMs} virtual ms`)
}
