/**
 * VirtualBoard: a virtual ESP32 running an Espruino firmware bundle.
 *
 * The bundle runs, as uploaded, in a `node:vm` context stripped of what
 * Espruino lacks (prelude.ts) and refused up front when it uses syntax
 * Espruino cannot parse (syntax-gate.ts). Hardware APIs are host functions
 * on the context's global object; values they hand back are built with the
 * context's own constructors so `instanceof` works inside. Time is virtual:
 * timers fire in virtual-time order, `advance(ms)` steps deterministically,
 * `run({speed})` follows real time scaled by `speed` and interleaves real
 * I/O (sockets to the gateway). With the `cost` option on, callbacks take
 * the time an ESP32 would spend in them and timers fire late as Espruino
 * runs them (clock.ts, hardware-sim/cost/board-cost.ts).
 *
 * This class is the facade that wires the parts (docs/hardware-sim-board.md):
 * sandbox.ts (the interpreter), clock.ts (time and timers), dispatch.ts
 * (every callback), memory-account.ts (the JsVar budget), globals.ts,
 * peripherals/, storage-api.ts over storage.ts, network.ts, crypto.ts.
 */
import { EventEmitter } from 'node:events'
import type { I2CDevice, AnalogSource, DigitalSource, DigitalSink } from '../hardware.ts'
import { SpiBuses, type SpiBusName, type SpiAttachment } from './peripherals/spi.ts'
import { assertEspruinoCompat } from '../../firmware/build/syntax-gate.ts'
import { FlashStorage } from './storage.ts'
import { ESP32_JSVARS } from './memory.ts'
import { BoardNetwork, type WifiOptions } from './network.ts'
import { BoardConsole } from './board-console.ts'
import { BoardError } from './errors.ts'
import { Sandbox, type JsEmitter } from './sandbox.ts'
import { VirtualClock } from './clock.ts'
import { Dispatcher, watchRejections, unwatchRejections } from './dispatch.ts'
import { MemoryAccount, type MemoryReport } from './memory-account.ts'
import { installConsole, installEspruino } from './globals.ts'
import { StorageApi } from './storage-api.ts'
import { cryptoModule } from './crypto.ts'
import { Pins } from './peripherals/pins.ts'
import { Adc, checkAnalogSources } from './peripherals/adc.ts'
import { I2CBuses, type BusName } from './peripherals/i2c.ts'
import { resolveCost, meteredNetModule, type BoardCost, type CostOption, type CostReport } from '../cost/board-cost.ts'

export { BoardError } from './errors.ts'
export { BoardConsole } from './board-console.ts'
export type { MemoryReport } from './memory-account.ts'
export type { BusName } from './peripherals/i2c.ts'
export type { SpiBusName, SpiAttachment } from './peripherals/spi.ts'
export { codeVars } from './memory.ts'
export type { CostOption, CostReport } from '../cost/board-cost.ts'

/**
 * What boards charge for time when their options do not say (docs/hardware-sim-board.md,
 * "Time charged"). 'off' until the MAX30003 firmware lands, then 'central'.
 */
export const DEFAULT_COST: CostOption = 'off'

export interface VirtualBoardOptions {
  /** Board name used in messages (and in `process.env.SERIAL`). */
  id: string
  /** File backing the 896 KB Storage area; created (sparse) when missing. */
  storagePath: string
  /** Devices on each I2C bus. */
  i2c?: Partial<Record<BusName, I2CDevice[]>>
  /** Devices on each SPI bus, by chip-select GPIO. */
  spi?: Partial<Record<SpiBusName, SpiAttachment[]>>
  /** Analog sources by GPIO number (must be an ADC pin). */
  analog?: Record<number, AnalogSource>
  /** Digital inputs by GPIO number. */
  digitalIn?: Record<number, DigitalSource>
  /** Listeners on digital outputs by GPIO number. */
  digitalOut?: Record<number, DigitalSink>
  /** JsVar budget (ESP32: 16,383). */
  memoryVars?: number
  /** Initial wall clock in ms since the epoch (default: 0, like an ESP32 whose RTC was never set). */
  clock?: number
  /** WiFi access point the board can join. Default: any SSID/password is accepted. */
  wifi?: WifiOptions
  /** Interrupt a callback that runs longer than this many real ms ("Execution Interrupted"). Off by default (it costs ~100 us per callback); uploads always get 10 s. */
  callbackTimeoutMs?: number
  /**
   * Charge each callback the time an ESP32 would spend in it (hardware-sim/cost): a setting
   * of the cost model ('low', 'central', 'high'), a CostModel of your own, or 'off' (time
   * stands still during callbacks). Default DEFAULT_COST.
   */
  cost?: CostOption
}

export class VirtualBoard {
  readonly id: string
  readonly console = new BoardConsole()
  /** 'reset' after every fresh interpreter (reset(), boot(), brown-out), before any boot code runs. */
  readonly events = new EventEmitter()
  readonly storage: FlashStorage
  readonly budget: number
  readonly net: BoardNetwork
  private readonly opts: VirtualBoardOptions
  private readonly clock: VirtualClock
  private readonly dispatch: Dispatcher
  private readonly mem: MemoryAccount
  private readonly flash: StorageApi
  private readonly pins: Pins
  private readonly adc: Adc
  private readonly i2c: I2CBuses
  private readonly spi: SpiBuses
  /** The cost model on this board, null when it does not charge time. */
  private readonly cost: BoardCost | null
  /** The current interpreter (a new one after every reset). */
  private sb!: Sandbox
  private boots = 0

  constructor(opts: VirtualBoardOptions) {
    if (!opts || typeof opts.id !== 'string' || opts.id.length === 0) throw new TypeError(`expected options.id to be a non-empty string, got ${JSON.stringify(opts?.id)}`)
    if (typeof opts.storagePath !== 'string') throw new TypeError(`expected options.storagePath to be a path, got ${typeof opts.storagePath}`)
    checkAnalogSources(opts.analog)
    this.opts = opts
    this.id = opts.id
    this.budget = opts.memoryVars ?? ESP32_JSVARS
    const board = this
    const print = (line: string): void => this.console.write(line)
    const sandbox = (): Sandbox => this.sb
    this.mem = new MemoryAccount(this.budget, {
      get now() {
        return board.now
      },
      builtins: () => this.sb.builtins,
      roots: (c) => this.sb.globalVars(c) + this.clock.vars(c) + this.net.vars(c),
      print,
    })
    this.cost = resolveCost(opts.cost ?? DEFAULT_COST, { charge: (ms) => this.clock.charge(ms) })
    this.dispatch = new Dispatcher({
      id: this.id,
      console: this.console,
      memory: this.mem,
      sandbox,
      callbackTimeoutMs: opts.callbackTimeoutMs,
      ioQueued: () => this.clock.nudge(),
      reboot: () => this.boot(),
      meter: this.cost,
    })
    this.clock = new VirtualClock(opts.clock ?? 0, this.dispatch, this.cost)
    this.storage = new FlashStorage(opts.storagePath)
    this.flash = new StorageApi(this.storage, { sandbox, powerLost: () => this.dispatch.powerLost(), print, cost: this.cost })
    this.net = new BoardNetwork(this, opts.wifi)
    this.pins = new Pins(this.clock, opts.digitalIn, opts.digitalOut)
    this.adc = new Adc(this.clock, opts.analog, this.cost)
    this.i2c = new I2CBuses(this.clock, opts.i2c, this.cost)
    this.spi = new SpiBuses(this.clock, opts.spi, (gpio) => this.pins.written(gpio))
    const cost = this.cost
    if (cost) this.spi.onTransfer = (t) => cost.spi(t.bytes, t.baud)
    watchRejections(this)
    this.freshContext()
  }

  // ------------------------------------------------------------------ host API

  /** Virtual ms since this board object was created. */
  get now(): number {
    return this.clock.now
  }

  /** Board wall clock in ms (what getTime()*1000 and Date.now() return). */
  get wallMs(): number {
    return this.clock.wallMs
  }

  /** Uploads code to RAM and runs it, as the REPL does. Throws BoardError when refused. */
  load(bundle: string): unknown {
    return this.execute(bundle, { fromFlash: false, label: 'upload' })
  }

  /** Power-cycles: a fresh interpreter that runs the Storage boot files (.boot0-3, .bootcde) then E.on('init'). */
  boot(): void {
    this.freshContext()
    this.runBootCode()
  }

  /** `reset()`: a fresh interpreter, no boot code (same Storage, same clock). */
  reset(): void {
    this.freshContext()
  }

  /** Steps virtual time by `ms`, firing every timer due, in order. Deterministic. */
  advance(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`expected a finite ms >= 0, got ${ms}`)
    this.clock.advance(ms)
  }

  /**
   * Runs continuously until stop(): `speed` virtual seconds per real second;
   * Infinity jumps straight to the next timer while no socket I/O is in flight.
   */
  run(opts: { speed?: number; until?: number } = {}): Promise<void> {
    return this.clock.run(opts, { collectDue: () => this.mem.collectDue(), collect: () => this.collect(), ioBusy: () => this.net.busy() })
  }

  /**
   * Collects garbage and re-measures. Espruino frees dropped objects at once
   * (reference counting); V8 frees them when it collects, and tracked
   * allocations only stop counting after that. run() calls this as soon as
   * the budget is exceeded; after advance(), tests can await it. Resolves with the real ms
   * the collection itself took.
   */
  collect(): Promise<number> {
    return this.mem.collect()
  }

  /** Stops `run()` (the board keeps its state; `run` or `advance` may continue it). */
  stop(): void {
    this.clock.stop()
  }

  /** Releases the Storage file and sockets. The board cannot be used afterwards. */
  close(): void {
    this.stop()
    this.net.shutdown()
    this.clock.clearTimers()
    this.storage.close()
    unwatchRejections(this)
  }

  /**
   * What the board's callbacks cost an ESP32 (per callback name: count, total and longest µs)
   * and the share of one core they took, over the virtual time since the board was made or
   * the last `{ reset: true }`; null when the board does not charge time.
   */
  costReport(opts: { reset?: boolean } = {}): CostReport | null {
    if (!this.cost) return null
    const r = this.cost.report(this.clock.now)
    if (opts.reset) this.cost.reset(this.clock.now)
    return r
  }

  /** The memory estimate now (walks the program's reachable state). */
  memory(): MemoryReport {
    return this.mem.report()
  }

  /** Runs `code` at the REPL: returns its value (for the `=value` echo); errors are printed, not thrown. */
  repl(code: string): { ok: boolean; value?: unknown } {
    let r: { ok: boolean; value?: unknown }
    try {
      const value = this.execute(code, { fromFlash: false, label: 'repl' })
      r = { ok: !this.dispatch.lastThrew, value }
    } catch (e) {
      this.console.write(e instanceof Error ? e.message : String(e))
      r = { ok: false }
    }
    // reset()/load() typed at the prompt take effect before the next line.
    this.dispatch.drainIo()
    return r
  }

  /** Number of boots (power-on counts as 0 until boot() is called). */
  get bootCount(): number {
    return this.boots
  }

  // ------------------------------------------------------------------ faults

  /** WiFi drops now and comes back after `ms` virtual ms (the ESP32 port reconnects by itself). */
  wifiDrop(ms: number): void {
    this.net.drop(ms)
  }

  /** Arms a brown-out: the next Storage write is cut part-way, leaving a torn file, and the board reboots. */
  brownOut(fraction = 0.5): void {
    this.storage.armBrownOut(fraction)
  }

  /** The device at `addr` stops answering (NACK) on every bus. */
  i2cRemove(addr: number): void {
    this.i2c.remove(addr)
  }

  i2cRestore(addr: number): void {
    this.i2c.restore(addr)
  }

  /** Shifts the board's wall clock by `ms` (timers are not affected). */
  clockSkew(ms: number): void {
    if (!Number.isFinite(ms)) throw new RangeError(`expected finite ms, got ${ms}`)
    this.clock.skew(ms)
  }

  /** Makes every new Storage file fail as if the flash were full. */
  flashFull(full: boolean): void {
    this.storage.flashFull = full
  }

  /** For `forMs` virtual ms only `freeVars` JsVars are free: an allocation that does not fit interrupts its callback (out of memory). */
  /**
   * Fault: the next `count` firmware callbacks (-1: every one until cleared with 0) whose
   * function's source contains `match` (e.g. ".drain(" or ".seal(": method names survive
   * minification) run out of memory and are abandoned: at their first allocation the
   * simulator tracks (typed arrays, frame-sized strings), or at `start` (no room to begin).
   */
  outOfMemoryIn(match: string, count = 1, at: 'alloc' | 'start' = 'alloc'): void {
    if (typeof match !== 'string' || match === '') throw new TypeError('outOfMemoryIn: expected a non-empty string to match')
    if (!Number.isInteger(count) || count < -1) throw new RangeError(`outOfMemoryIn: expected count -1, 0 or more, got ${count}`)
    if (at !== 'alloc' && at !== 'start') throw new RangeError(`outOfMemoryIn: expected at 'alloc' or 'start', got ${String(at)}`)
    this.dispatch.outOfMemoryIn(match, count, at)
  }

  squeezeMemory(opts: { freeVars: number; forMs: number }): void {
    this.mem.squeeze(opts.freeVars, opts.forMs)
  }

  // ------------------------------------------------------------------ used by network.ts

  /** Queues work from real I/O to run inside the board at the current virtual time. */
  queueIo(fn: () => void): void {
    this.dispatch.queueIo(fn)
  }

  /** A host-side timer on the virtual clock (not visible to the firmware). */
  hostTimer(ms: number, fn: () => void): number {
    return this.clock.hostTimer(ms, fn)
  }

  cancelHostTimer(id: number): void {
    this.clock.cancelHostTimer(id)
  }

  /** The interpreter was blocked for `ms` inside the current callback (a TCP connect). */
  chargeTime(ms: number): void {
    this.clock.charge(ms)
  }

  /** A string a built-in allocates inside the current callback: out of memory interrupts it. */
  allocString(len: number, flat: boolean): void {
    this.mem.allocString(len, flat)
  }

  /** Calls a firmware callback with Espruino's error handling. */
  callback(fn: unknown, args: unknown[] = [], thisArg?: unknown): void {
    this.dispatch.invoke(fn, args, thisArg)
  }

  newEmitter(): JsEmitter {
    return this.sb.emitter()
  }

  /** Emits an event on an in-context emitter as a callback of its own. */
  emitOn(target: { emit(ev: string, ...a: unknown[]): boolean }, ev: string, ...args: unknown[]): void {
    // The listeners, not emit, are what an outOfMemoryIn() fault looks for.
    const listeners = (target as unknown as Record<string, unknown>)[`#on${ev}`]
    this.dispatch.invoke(target.emit, [ev, ...args], target, this.cost ? `on:${ev}` : undefined, listeners ?? target.emit)
  }

  jsError(message: string): Error {
    return this.sb.error(message)
  }

  jsObject(props: Record<string, unknown>): Record<string, unknown> {
    return this.sb.object(props)
  }

  ownsPromise(p: unknown): boolean {
    return !!this.sb && this.sb.ownsPromise(p)
  }

  reportUncaught(e: unknown, prefix = 'Uncaught '): void {
    this.dispatch.reportUncaught(e, prefix)
  }

  // ------------------------------------------------------------------ internals

  /** Gate, memory check, run. Code from flash costs 2 vars per function; RAM code its text. */
  private execute(code: string, how: { fromFlash: boolean; label: string }): unknown {
    if (typeof code !== 'string') throw new TypeError(`expected code as a string, got ${typeof code}`)
    assertEspruinoCompat(code)
    this.mem.chargeCode(code, how.fromFlash, how.label)
    if (!how.fromFlash) this.flash.recordUpload(code)
    return this.dispatch.runCode(code, how.label, this.opts.callbackTimeoutMs ?? 10_000)
  }

  private runBootCode(): void {
    this.boots++
    for (const src of this.flash.bootCode()) {
      try {
        this.execute(src.code, src)
      } catch (e) {
        this.console.write(e instanceof Error ? e.message : String(e))
      }
    }
    const E = this.sb.G.E as JsEmitter
    this.dispatch.invoke(E.emit, ['init'], E, 'on:init')
  }

  /** A fresh interpreter: every part forgets the old program, then the new context gets its globals. */
  private freshContext(): void {
    this.net.reset()
    this.clock.clearTimers()
    this.dispatch.clearIo()
    this.mem.reset()
    this.flash.forgetUploads()
    this.pins.reset()
    this.i2c.reset()
    this.spi.reset()
    const sb = new Sandbox(`board ${this.id}`, {
      alloc: (n) => this.mem.alloc(n),
      track: (o) => this.mem.track(o),
      grow: (a) => this.mem.grow(a),
      evaluated: (code) => this.mem.addCode(code, this.flash.isFlashString(code)),
      wallMs: () => this.clock.wallMs,
      scope: (k, read, names) => this.mem.scope(k, read, names),
      transform: this.cost ? (code) => this.cost!.instrument(code) : undefined,
    })
    this.sb = sb
    this.cost?.attach(sb.ctx)
    installConsole(sb, this.console)
    this.clock.install(sb)
    this.pins.install(sb)
    this.adc.install(sb)
    this.i2c.install(sb)
    this.spi.install(sb)
    installEspruino(sb, {
      id: this.id,
      memory: () => this.memory(),
      allocString: (len, flat) => this.mem.allocString(len, flat),
      takeErrorFlags: () => this.dispatch.takeErrorFlags(),
      setBootCode: (code) => this.flash.setBootCode(code),
      save: () => this.flash.save(),
      load: () => this.queueIo(() => this.boot()),
      reset: (clearFlash) =>
        this.queueIo(() => {
          if (clearFlash) this.flash.clearSaved()
          this.reset()
        }),
      natives: {
        crypto: () => cryptoModule(sb, this.cost),
        Storage: () => this.flash.module(sb),
        Wifi: () => this.net.wifiModule(),
        net: () => (this.cost ? meteredNetModule(this.net.netModule(false), this.cost) : this.net.netModule(false)),
        tls: () => (this.cost ? meteredNetModule(this.net.netModule(true), this.cost) : this.net.netModule(true)),
      },
    })
    sb.seal()
    this.mem.measure()
    this.events.emit('reset')
  }
}
