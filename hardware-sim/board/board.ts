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
 * I/O (sockets to the gateway).
 */
import vm from 'node:vm'
import v8 from 'node:v8'
import { EventEmitter } from 'node:events'
import { createHash, pbkdf2Sync } from 'node:crypto'
import { parse } from 'acorn'
import type { I2CDevice, AnalogSource, DigitalSource, DigitalSink } from '../hardware.ts'
import { assertEspruinoCompat } from '../../firmware/build/syntax-gate.ts'
import { TimerQueue, type Timer } from './timers.ts'
import { PRELUDE } from './prelude.ts'
import { FlashStorage, StorageFiles, StorageError, BrownOut, NAME_BYTES } from './storage.ts'
import { VarCounter, ESP32_JSVARS, JSVAR_BYTES, BASE_VARS, ramCodeVars, typedArrayVars } from './memory.ts'
import { toBytes, bytesToBinaryString, formatValue } from './format.ts'
import { BoardNetwork, type WifiOptions } from './network.ts'

export type BusName = 'I2C1' | 'I2C2'

export interface VirtualBoardOptions {
  /** Board name used in messages (and in `process.env.SERIAL`). */
  id: string
  /** File backing the 896 KB Storage area; created (sparse) when missing. */
  storagePath: string
  /** Devices on each I2C bus. */
  i2c?: Partial<Record<BusName, I2CDevice[]>>
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
}

/** A board-level failure the host caused or must see (bundle refused, out of memory at load). */
export class BoardError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'BoardError'
  }
}

/** Console output of the board, line by line, as the Espruino REPL would print it. */
export class BoardConsole extends EventEmitter {
  /** The most recent lines (capped so a long run stays bounded). */
  readonly lines: string[] = []
  private cap = 2000

  write(line: string): void {
    this.lines.push(line)
    if (this.lines.length > this.cap) this.lines.splice(0, this.lines.length - this.cap)
    this.emit('line', line)
  }

  text(): string {
    return this.lines.join('\n')
  }

  clear(): void {
    this.lines.length = 0
  }
}

/** ESP32 pins Espruino can read with analogRead: ADC1 (32..39) and ADC2. */
const ADC_PINS = new Set([32, 33, 34, 35, 36, 37, 38, 39, 0, 2, 4, 12, 13, 14, 15, 25, 26, 27])
const BOOT_FILES = ['.boot0', '.boot1', '.boot2', '.boot3']
const ESP_ERR_INVALID_STATE = 0x103

interface Intrinsics {
  Object: ObjectConstructor
  Array: ArrayConstructor
  Error: ErrorConstructor
  JSON: JSON
  ArrayBuffer: ArrayBufferConstructor
  Uint8Array: Uint8ArrayConstructor
  Promise: PromiseConstructor
  Date: DateConstructor
  Function: FunctionConstructor
  Emitter: new () => Record<string, unknown> & { emit(ev: string, ...a: unknown[]): boolean }
  Pin: new (n: number) => object
  eval: (code: string) => unknown
}

let gcFn: (() => void) | undefined
/**
 * Forced collections requested by boards that ran over budget, shared by every board in the
 * process: with many boards (a fleet) one full collection serves them all, and a collection
 * of a large heap is not free, so the next waits at least 4x as long as the last one took.
 */
const gcThrottle = { last: 0, tookMs: 0, queued: false }
function requestGc(): void {
  const t = performance.now()
  if (gcThrottle.queued || t - gcThrottle.last < Math.max(200, 4 * gcThrottle.tookMs)) return
  gcThrottle.queued = true
  // On a fresh task: objects a WeakRef.deref() touched in this job stay alive until it ends.
  setImmediate(() => {
    const t0 = performance.now()
    forceGc()
    gcThrottle.tookMs = performance.now() - t0
    gcThrottle.last = performance.now()
    gcThrottle.queued = false
  })
}
function forceGc(): void {
  if (!gcFn) {
    // Expose gc for one throwaway context only: contexts created while the flag is on get a `gc` global they could not lose.
    v8.setFlagsFromString('--expose-gc')
    gcFn = vm.runInNewContext('gc') as () => void
    v8.setFlagsFromString('--no-expose-gc')
  }
  gcFn()
}

/** What a board's tracked allocations cost now, and its boot generation (a reset starts a new one). */
interface TrackAccount {
  cost: number
  gen: number
}
/** One tracked allocation: its cost, charged to `acct` while `gen` is the account's generation. */
interface TrackCell {
  cost: number
  gen: number
  acct: TrackAccount
}
/**
 * One registry for every board in the process. V8 runs the cleanup of one registry per turn
 * of the event loop; with a registry per board, a fleet of 1,000 (a turn every ~0.8 s) released
 * a board's garbage only minutes after V8 had collected it, and boards went over budget on
 * garbage alone.
 */
const released = new FinalizationRegistry<TrackCell>((cell) => {
  if (cell.gen === cell.acct.gen) cell.acct.cost -= cell.cost
  cell.cost = 0
})

/** One promise-rejection hook for the process, dispatching to the board whose realm the promise belongs to. */
const liveBoards = new Set<VirtualBoard>()
let rejectionHookInstalled = false
function installRejectionHook(): void {
  if (rejectionHookInstalled) return
  rejectionHookInstalled = true
  process.on('unhandledRejection', (reason, promise) => {
    for (const b of liveBoards) if (b.ownsPromise(promise)) return b.reportUncaught(reason, 'Uncaught (in promise) ')
    throw reason
  })
}

export interface MemoryReport {
  /** JsVars in use (estimate, see memory.ts). */
  usage: number
  free: number
  total: number
  /** Vars held by code (RAM uploads cost their text, flash code 2 per function). */
  code: number
  blocksize: number
  /** The first time usage exceeded the budget since the last reset, or null. */
  outOfMemory: boolean
}

/** Sentinel: execution of the current callback must stop (brown-out, stop()). */
class Interrupt extends Error {}

export class VirtualBoard {
  readonly id: string
  readonly console = new BoardConsole()
  /** 'reset' after every fresh interpreter (reset(), boot(), brown-out), before any boot code runs. */
  readonly events = new EventEmitter()
  readonly storage: FlashStorage
  private readonly sfiles: StorageFiles
  private readonly opts: VirtualBoardOptions
  readonly budget: number
  /** Virtual ms since power-on of this VirtualBoard (monotonic across reboots). */
  private nowMs = 0
  /** Wall clock = nowMs + wallOffset (setTime, clockSkew). */
  private wallOffset: number
  private timers = new TimerQueue()
  private ctx!: vm.Context
  private C!: Intrinsics
  private G!: Record<string, unknown>
  private dispatchScript = new vm.Script('__cb.apply(__this, __args)', { filename: 'dispatch' })
  private builtins = new Set<unknown>()
  private codeVars = 0
  private usage = BASE_VARS
  private oom = false
  /**
   * Buffers (>= 64 bytes) and arrays (>= 64 elements) are tracked from their
   * allocation, so they count even when only a closure holds them (closures
   * are invisible to a walk from the globals). Their cost leaves the total
   * when V8 collects them (FinalizationRegistry), i.e. once the host event
   * loop turns after a GC; run() turns it at every step, advance() does not.
   */
  private tracked: TrackAccount = { cost: 0, gen: 0 }
  private trackCells = new WeakMap<object, TrackCell>()
  private trackedArrays: Array<WeakRef<unknown[]>> = []
  private memDirty = false
  private lastMeasureAt = -Infinity
  private lastCollect = 0
  private oomCollected = false
  private pins = new Map<number, { mode: string; level: boolean }>()
  private i2cSetup: Record<BusName, boolean> = { I2C1: false, I2C2: false }
  private removedI2c = new Set<number>()
  private flashStrings: string[] = []
  private modulesCache = new Map<string, unknown>()
  private pendingIo: Array<() => void> = []
  private wake: (() => void) | null = null
  private running = false
  private rebootPending = false
  /** Source executed since the last reset (what `save()` keeps). */
  private uploaded: string[] = []
  private emitters = new Map<string, Record<string, unknown>>()
  readonly net: BoardNetwork
  private boots = 0
  private tzHours = 0

  constructor(opts: VirtualBoardOptions) {
    if (!opts || typeof opts.id !== 'string' || opts.id.length === 0) throw new TypeError(`expected options.id to be a non-empty string, got ${JSON.stringify(opts?.id)}`)
    if (typeof opts.storagePath !== 'string') throw new TypeError(`expected options.storagePath to be a path, got ${typeof opts.storagePath}`)
    for (const pin of Object.keys(opts.analog ?? {})) if (!ADC_PINS.has(Number(pin))) throw new TypeError(`expected analog sources on ADC pins (${[...ADC_PINS].join(', ')}), got D${pin}`)
    this.opts = opts
    this.id = opts.id
    this.budget = opts.memoryVars ?? ESP32_JSVARS
    this.wallOffset = opts.clock ?? 0
    this.storage = new FlashStorage(opts.storagePath)
    this.sfiles = new StorageFiles(this.storage)
    this.net = new BoardNetwork(this, opts.wifi)
    installRejectionHook()
    liveBoards.add(this)
    this.freshContext()
  }

  // ------------------------------------------------------------------ host API

  /** Virtual ms since this board object was created. */
  get now(): number {
    return this.nowMs
  }

  /** Board wall clock in ms (what getTime()*1000 and Date.now() return). */
  get wallMs(): number {
    return this.nowMs + this.wallOffset
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
    this.advanceTo(this.nowMs + ms)
  }

  /**
   * Runs continuously until stop(): `speed` virtual seconds per real second;
   * Infinity jumps straight to the next timer while no socket I/O is in flight.
   */
  async run(opts: { speed?: number; until?: number } = {}): Promise<void> {
    const speed = opts.speed ?? 1
    if (!(speed > 0)) throw new RangeError(`expected speed > 0, got ${speed}`)
    if (this.running) throw new BoardError('board is already running')
    this.running = true
    let realStart = performance.now()
    let virtStart = this.nowMs
    try {
      while (this.running) {
        if (this.oom && performance.now() - this.lastCollect > (this.oomCollected ? 1000 : 0)) await this.collect()
        this.drainIo()
        if (opts.until !== undefined && this.nowMs >= opts.until) break
        const ioBusy = this.net.busy()
        const next = this.timers.peekTime()
        if (speed === Infinity && !ioBusy) {
          const target = Math.min(next, opts.until ?? Infinity)
          if (target !== Infinity) this.advanceTo(target)
          realStart = performance.now()
          virtStart = this.nowMs
          await this.pause(target === Infinity ? 50 : 0)
          continue
        }
        const pace = speed === Infinity ? 1 : speed
        const target = Math.min(virtStart + (performance.now() - realStart) * pace, opts.until ?? Infinity)
        if (target > this.nowMs) this.advanceTo(target)
        const wait = Math.min(50, Math.max(0, (Math.min(this.timers.peekTime(), opts.until ?? Infinity) - this.nowMs) / pace))
        await this.pause(wait)
        if (speed === Infinity) {
          realStart = performance.now()
          virtStart = this.nowMs
        }
      }
    } finally {
      this.running = false
    }
  }

  /**
   * Collects garbage and re-measures. Espruino frees dropped objects at once
   * (reference counting); V8 frees them when it collects, and tracked
   * allocations only stop counting after that. run() calls this as soon as
   * the budget is exceeded; after advance(), tests can await it. Resolves with the real ms
   * the collection itself took.
   */
  async collect(): Promise<number> {
    this.lastCollect = performance.now()
    this.oomCollected = true
    await new Promise((r) => setImmediate(r))
    const t0 = performance.now()
    forceGc()
    const gcMs = performance.now() - t0
    await new Promise((r) => setTimeout(r, 0))
    await new Promise((r) => setImmediate(r))
    this.measure()
    if (this.usage <= this.budget) this.oom = false
    return gcMs
  }

  /** Stops `run()` (the board keeps its state; `run` or `advance` may continue it). */
  stop(): void {
    this.running = false
    this.wake?.()
  }

  /** Releases the Storage file and sockets. The board cannot be used afterwards. */
  close(): void {
    this.stop()
    this.net.shutdown()
    this.timers.clear()
    this.storage.close()
    liveBoards.delete(this)
  }

  /** The memory estimate now (walks the program's reachable state). */
  memory(): MemoryReport {
    this.measure()
    return { usage: this.usage, free: Math.max(0, this.budget - this.usage), total: this.budget, code: this.codeVars, blocksize: JSVAR_BYTES, outOfMemory: this.oom }
  }

  /** Runs `code` at the REPL: returns its value (for the `=value` echo); errors are printed, not thrown. */
  repl(code: string): { ok: boolean; value?: unknown } {
    let r: { ok: boolean; value?: unknown }
    try {
      r = { ok: !this.lastThrew, value: this.execute(code, { fromFlash: false, label: 'repl' }) }
      r.ok = !this.lastThrew
    } catch (e) {
      this.console.write(e instanceof Error ? e.message : String(e))
      r = { ok: false }
    }
    // reset()/load() typed at the prompt take effect before the next line.
    this.drainIo()
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
    this.removedI2c.add(addr)
  }

  i2cRestore(addr: number): void {
    this.removedI2c.delete(addr)
  }

  /** Shifts the board's wall clock by `ms` (timers are not affected). */
  clockSkew(ms: number): void {
    if (!Number.isFinite(ms)) throw new RangeError(`expected finite ms, got ${ms}`)
    this.wallOffset += ms
  }

  /** Makes every new Storage file fail as if the flash were full. */
  flashFull(full: boolean): void {
    this.storage.flashFull = full
  }

  // ------------------------------------------------------------------ used by network.ts

  /** Queues work from real I/O to run inside the board at the current virtual time. */
  queueIo(fn: () => void): void {
    this.pendingIo.push(fn)
    this.wake?.()
  }

  /** A host-side timer on the virtual clock (not visible to the firmware). */
  hostTimer(ms: number, fn: () => void): number {
    return this.timers.add({ host: fn }, [], this.nowMs + Math.max(0, ms), 0)
  }

  cancelHostTimer(id: number): void {
    this.timers.remove(id)
  }

  /** Calls a firmware callback with Espruino's error handling. */
  callback(fn: unknown, args: unknown[] = [], thisArg?: unknown): void {
    this.invoke(fn, args, thisArg)
  }

  newEmitter(): Record<string, unknown> & { emit(ev: string, ...a: unknown[]): boolean } {
    return new this.C.Emitter()
  }

  /** Emits an event on an in-context emitter as a callback of its own. */
  emitOn(target: { emit(ev: string, ...a: unknown[]): boolean }, ev: string, ...args: unknown[]): void {
    this.invoke(target.emit, [ev, ...args], target)
  }

  jsError(message: string): Error {
    return new this.C.Error(message)
  }

  jsObject(props: Record<string, unknown>): Record<string, unknown> {
    return Object.assign(new this.C.Object(), props) as Record<string, unknown>
  }

  ownsPromise(p: unknown): boolean {
    return !!this.C && p instanceof this.C.Promise
  }

  reportUncaught(e: unknown, prefix = 'Uncaught '): void {
    if (e && typeof e === 'object' && 'message' in e) {
      const err = e as Error
      this.console.write(`${prefix}${err.name ?? 'Error'}: ${err.message}`)
    } else this.console.write(`${prefix}${formatValue(e, 1)}`)
  }

  // ------------------------------------------------------------------ internals

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms)
      const self = this
      function done(): void {
        clearTimeout(t)
        self.wake = null
        resolve()
      }
      this.wake = done
    })
  }

  private drainIo(): void {
    while (this.pendingIo.length) {
      const fn = this.pendingIo.shift()!
      fn()
      this.afterCallback()
    }
  }

  private advanceTo(target: number): void {
    this.drainIo()
    for (;;) {
      const t = this.timers.popDue(target)
      if (!t) break
      if (t.when > this.nowMs) this.nowMs = t.when
      this.fire(t)
      this.drainIo()
    }
    if (target > this.nowMs) this.nowMs = target
  }

  private fire(t: Timer): void {
    if (t.fn && typeof t.fn === 'object' && 'host' in (t.fn as object)) {
      ;(t.fn as { host: () => void }).host()
      this.afterCallback()
      return
    }
    if (t.interval > 0) this.timers.reschedule(t)
    if (typeof t.fn === 'string') this.invoke(this.C.eval, [t.fn])
    else this.invoke(t.fn, t.args)
  }

  /** Runs one firmware callback like Espruino's idle loop does. */
  private invoke(fn: unknown, args: unknown[], thisArg?: unknown): void {
    if (typeof fn !== 'function') return
    if (this.oom) {
      // Everything needs a few vars; with none free the call fails at once.
      this.measure()
      if (this.usage >= this.budget) {
        this.maybeGc()
        this.console.write('ERROR: Out of Memory!')
        return
      }
      this.oom = false
    }
    const g = this.G
    g.__cb = fn
    g.__this = thisArg
    g.__args = args
    try {
      // A vm timeout starts a watchdog thread per call (~100 us): only when asked for.
      if (this.opts.callbackTimeoutMs) this.dispatchScript.runInContext(this.ctx, { timeout: this.opts.callbackTimeoutMs })
      else this.dispatchScript.runInContext(this.ctx)
    } catch (e) {
      this.handleThrow(e)
    } finally {
      g.__cb = g.__this = g.__args = undefined
    }
    this.afterCallback()
  }

  private lastThrew = false

  private handleThrow(e: unknown): void {
    this.lastThrew = true
    if (e instanceof BrownOut || e instanceof Interrupt) {
      this.rebootPending = true
      return
    }
    if (e && typeof e === 'object' && (e as { code?: string }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') {
      this.console.write('Execution Interrupted')
      return
    }
    this.reportUncaught(e)
  }

  private afterCallback(): void {
    if (this.rebootPending) {
      this.rebootPending = false
      this.console.write(`[${this.id}] brown-out: rebooting`)
      this.boot()
      return
    }
    // The walk costs tens of microseconds: after a callback only when an allocation hook fired
    // or 250 virtual ms passed (plain objects growing in globals are seen that late at worst).
    if (this.memDirty || this.nowMs - this.lastMeasureAt >= 250) this.measure()
    if (this.usage > this.budget && !this.oom) {
      this.oom = true
      this.oomCollected = false
      this.console.write('ERROR: Out of Memory!')
    }
  }

  /** Recomputes the JsVar estimate: code + globals + timers + listeners + tracked buffers and big arrays. */
  private measure(): void {
    this.memDirty = false
    this.lastMeasureAt = this.nowMs
    const c = new VarCounter(this.builtins, (o) => this.trackCells.has(o))
    let n = BASE_VARS + this.codeVars
    const g = this.G
    for (const k of Object.getOwnPropertyNames(g)) {
      if (k.startsWith('__')) continue
      const d = Object.getOwnPropertyDescriptor(g, k)
      if (!d || !('value' in d) || this.builtins.has(d.value) && typeof d.value !== 'number') continue
      if (this.builtinNames.has(k) && this.builtins.has(d.value)) continue
      n += 1 + c.value(d.value)
    }
    for (const t of this.timers.all()) n += 3 + c.value(t.fn) + t.args.reduce<number>((s, a) => s + c.value(a), 0)
    for (const e of this.emitters.values()) n += c.object(e)
    n += this.net.vars(c)
    let w = 0
    for (const r of this.trackedArrays) {
      const a = r.deref()
      if (a === undefined) continue
      this.trackedArrays[w++] = r
      this.recost(a)
    }
    this.trackedArrays.length = w
    this.usage = n + this.tracked.cost
  }

  private builtinNames = new Set<string>()

  /** Allocation hook (typed arrays, ArrayBuffers): fails at once when the buffer cannot fit. */
  private alloc(bytes: number): void {
    if (!(bytes >= 0)) return
    this.memDirty = true
    const cost = typedArrayVars(bytes)
    if (this.usage + cost <= this.budget) {
      this.usage += cost
      return
    }
    // The estimate may still count garbage: measure again, and collect so it stops counting soon.
    this.measure()
    if (this.usage + cost > this.budget) this.maybeGc()
    if (this.usage + cost > this.budget) {
      this.console.write('ERROR: Out of Memory!')
      throw new this.C.Error('Out of Memory!')
    }
    this.usage += cost
  }

  private track(o: object): void {
    const bytes = ArrayBuffer.isView(o) ? o.byteLength : (o as ArrayBuffer).byteLength
    if (bytes < 64 || this.trackCells.has(o)) return
    const cell: TrackCell = { cost: typedArrayVars(bytes), gen: this.tracked.gen, acct: this.tracked }
    this.trackCells.set(o, cell)
    if (ArrayBuffer.isView(o)) this.trackCells.set(o.buffer, { cost: 0, gen: this.tracked.gen, acct: this.tracked })
    released.register(o, cell)
    this.tracked.cost += cell.cost
  }

  /** Re-prices a tracked array (its elements and what they hold). */
  private recost(a: unknown[]): void {
    const cell = this.trackCells.get(a)
    if (!cell) return
    const cost = new VarCounter(this.builtins, (o) => o !== a && this.trackCells.has(o)).object(a)
    this.tracked.cost += cost - cell.cost
    cell.cost = cost
  }

  /** Array growth hook (each 64 elements): big arrays are tracked even when only a closure holds them. */
  private grow(a: unknown[]): void {
    if (!this.trackCells.has(a)) {
      const cell: TrackCell = { cost: 0, gen: this.tracked.gen, acct: this.tracked }
      this.trackCells.set(a, cell)
      released.register(a, cell)
      this.trackedArrays.push(new WeakRef(a))
    }
    this.recost(a)
    this.measure()
    if (this.usage > this.budget) {
      this.maybeGc()
      this.console.write('ERROR: Out of Memory!')
      this.oom = true
      this.oomCollected = false
      throw new this.C.Error('Out of memory while appending to array')
    }
  }

  /** Forces a V8 collection at most every 200 real ms, so garbage stops counting once the event loop turns. */
  private maybeGc(): void {
    requestGc()
  }

  /** Gate, memory check, run. Code from flash costs 2 vars per function; RAM code its text. */
  private execute(code: string, how: { fromFlash: boolean; label: string }): unknown {
    if (typeof code !== 'string') throw new TypeError(`expected code as a string, got ${typeof code}`)
    assertEspruinoCompat(code)
    const cost = codeVars(code, how.fromFlash)
    this.measure()
    if (this.usage + cost > this.budget) {
      this.console.write('ERROR: Out of Memory!')
      throw new BoardError(`Out of Memory!: ${how.label} needs ${cost} JsVars for its code, ${Math.max(0, this.budget - this.usage)} of ${this.budget} free`)
    }
    this.codeVars += cost
    // What save() replays: code sent to RAM, without the REPL housekeeping lines.
    if (!how.fromFlash && !/^\s*(save|reset|load|echo|print)\s*\(/.test(code)) this.uploaded.push(code)
    let value: unknown
    this.lastThrew = false
    try {
      value = new vm.Script(code, { filename: how.label }).runInContext(this.ctx, { timeout: this.opts.callbackTimeoutMs ?? 10_000 })
    } catch (e) {
      this.handleThrow(e)
    }
    this.afterCallback()
    return value
  }

  private runBootCode(): void {
    this.boots++
    const run = (name: string): void => {
      const b = this.storage.read(name)
      if (!b) return
      try {
        this.execute(b.toString('latin1'), { fromFlash: true, label: name })
      } catch (e) {
        this.console.write(e instanceof Error ? e.message : String(e))
      }
    }
    for (const f of BOOT_FILES) run(f)
    if (this.storage.size('.bootcde') !== undefined) run('.bootcde')
    else if (this.storage.size('.varimg') !== undefined) {
      // save(): the code uploaded before it is replayed (see docs: we cannot snapshot a V8 heap).
      const b = this.storage.read('.varimg')!
      try {
        this.execute(b.toString('latin1'), { fromFlash: false, label: '.varimg' })
      } catch (e) {
        this.console.write(e instanceof Error ? e.message : String(e))
      }
    }
    const E = this.G.E as { emit(ev: string): boolean }
    this.invoke(E.emit, ['init'], E)
  }

  private freshContext(): void {
    this.net.reset()
    this.timers.clear()
    this.pendingIo.length = 0
    this.trackedArrays.length = 0
    this.trackCells = new WeakMap()
    this.tracked.cost = 0
    this.tracked.gen++
    this.codeVars = 0
    this.oom = false
    this.uploaded = []
    this.modulesCache.clear()
    this.pins.clear()
    this.emitters.clear()
    this.i2cSetup = { I2C1: false, I2C2: false }
    this.ctx = vm.createContext({}, { name: `board ${this.id}`, microtaskMode: 'afterEvaluate', codeGeneration: { strings: true, wasm: false } })
    this.G = vm.runInContext('globalThis', this.ctx) as Record<string, unknown>
    const h = {
      alloc: (n: number) => this.alloc(n),
      track: (o: object) => this.track(o),
      grow: (a: unknown[]) => this.grow(a),
      wallMs: () => this.wallMs,
    }
    this.C = (vm.runInContext(PRELUDE, this.ctx) as (h: unknown) => Intrinsics)(h)
    this.installApi()
    this.builtins = new Set<unknown>()
    this.builtinNames = new Set(Object.getOwnPropertyNames(this.G))
    for (const k of this.builtinNames) {
      const v = this.G[k]
      if (v && (typeof v === 'object' || typeof v === 'function')) {
        this.builtins.add(v)
        if (typeof v === 'function' && (v as { prototype?: unknown }).prototype) this.builtins.add((v as { prototype: unknown }).prototype)
      }
    }
    for (let p = 0; p < 40; p++) this.builtins.add(this.G['D' + p])
    for (const e of this.emitters.values()) this.builtins.add(e)
    this.builtins.add(this.C.Emitter.prototype)
    this.measure()
    this.events.emit('reset')
  }

  private pinNumber(p: unknown): number {
    const n = typeof p === 'number' ? p : p && typeof p === 'object' ? Number((p as { valueOf(): unknown }).valueOf()) : NaN
    if (!Number.isInteger(n) || n < 0 || n > 39) throw new this.C.Error(`Invalid pin: ${String(p)}`)
    return n
  }

  private installApi(): void {
    const g = this.G
    const C = this.C
    const board = this
    const def = (name: string, fn: (...a: any[]) => unknown): void => {
      Object.defineProperty(g, name, { value: fn, writable: true, configurable: true, enumerable: false })
    }
    const print = (...a: unknown[]): void => this.console.write(a.map((x) => formatValue(x)).join(' '))
    def('print', print)
    const consoleObj = new C.Object() as Record<string, unknown>
    consoleObj.log = print
    consoleObj.warn = print
    consoleObj.error = print
    consoleObj.info = print
    consoleObj.debug = print
    Object.defineProperty(g, 'console', { value: consoleObj, writable: true, configurable: true, enumerable: false })

    // ---- timers ----
    const addTimer = (fn: unknown, ms: unknown, args: unknown[], repeat: boolean): number => {
      if (typeof fn !== 'function' && typeof fn !== 'string') throw new C.Error(`Function or String not supplied!`)
      let d = Number(ms)
      if (!Number.isFinite(d) || d < 0) d = 0
      // Espruino's minimum interval is well under 1 ms; 0-period intervals would spin: clamp to 0.01 ms.
      if (repeat && d < 0.01) d = 0.01
      return this.timers.add(fn, args, this.nowMs + d, repeat ? d : 0)
    }
    def('setTimeout', (fn: unknown, ms: unknown, ...args: unknown[]) => addTimer(fn, ms, args, false))
    def('setInterval', (fn: unknown, ms: unknown, ...args: unknown[]) => addTimer(fn, ms, args, true))
    const clear = (id?: unknown): void => {
      if (id === undefined) {
        for (const t of [...this.timers.all()]) if (!(t.fn && typeof t.fn === 'object')) this.timers.remove(t.id)
        return
      }
      const t = this.timers.get(Number(id))
      if (t && !(t.fn && typeof t.fn === 'object')) this.timers.remove(t.id)
    }
    def('clearTimeout', clear)
    def('clearInterval', clear)
    def('changeInterval', (id: unknown, ms: unknown) => {
      const t = this.timers.get(Number(id))
      if (!t || !(Number(ms) > 0)) return
      t.interval = Number(ms)
    })
    def('getTime', () => this.wallMs / 1000)
    def('setTime', (s: unknown) => {
      this.wallOffset = Number(s) * 1000 - this.nowMs
    })

    // ---- pins ----
    def('pinMode', (p: unknown, mode: unknown) => {
      const n = this.pinNumber(p)
      const m = mode === undefined ? 'auto' : String(mode)
      const ok = ['input', 'input_pullup', 'input_pulldown', 'output', 'opendrain', 'opendrain_pullup', 'analog', 'auto', 'af_output', 'af_opendrain']
      if (!ok.includes(m)) throw new C.Error(`Unknown pin mode ${JSON.stringify(m)}`)
      const s = this.pins.get(n) ?? { mode: 'auto', level: false }
      s.mode = m
      this.pins.set(n, s)
    })
    def('getPinMode', (p: unknown) => this.pins.get(this.pinNumber(p))?.mode ?? 'input')
    def('digitalWrite', (p: unknown, v: unknown) => {
      const n = this.pinNumber(p)
      const level = !!Number(v)
      const s = this.pins.get(n) ?? { mode: 'auto', level: false }
      s.level = level
      this.pins.set(n, s)
      this.opts.digitalOut?.[n]?.set(level, this.nowMs)
    })
    def('digitalRead', (p: unknown) => {
      const n = this.pinNumber(p)
      const src = this.opts.digitalIn?.[n]
      if (src) return src.level(this.nowMs) ? 1 : 0
      return this.pins.get(n)?.level ? 1 : 0
    })
    def('analogRead', (p: unknown) => {
      const n = this.pinNumber(p)
      if (!ADC_PINS.has(n)) throw new C.Error(`Pin D${n} is not an ADC pin`)
      const src = this.opts.analog?.[n]
      const v = src ? src.voltage(this.nowMs) : 0
      // 12-bit SAR ADC over 0..3.3 V; the ESP32 port returns raw/4096 (jshPinAnalog).
      const raw = Math.max(0, Math.min(4095, Math.round((Number.isFinite(v) ? v : 0) / 3.3 * 4095)))
      return raw / 4096
    })

    // ---- I2C ----
    for (const bus of ['I2C1', 'I2C2'] as BusName[]) {
      const o = new C.Object() as Record<string, unknown>
      o.setup = (cfg?: { scl?: unknown; sda?: unknown; bitrate?: unknown }) => {
        if (cfg !== undefined && (cfg === null || typeof cfg !== 'object')) throw new C.Error(`expected an options object, got ${typeof cfg}`)
        this.i2cSetup[bus] = true
      }
      o.writeTo = (addr: unknown, ...data: unknown[]) => {
        const a = i2cAddr(addr)
        const bytes = toBytes(data)
        this.i2cTransfer(bus, 'jshI2CWrite', a, (d) => d.write(Uint8Array.from(bytes), this.nowMs))
      }
      o.readFrom = (addr: unknown, quantity: unknown) => {
        const a = i2cAddr(addr)
        const n = Number(quantity)
        if (!Number.isInteger(n) || n < 0) throw new C.Error(`expected a byte count, got ${String(quantity)}`)
        const out = new C.Uint8Array(n)
        if (n === 0) return out
        this.i2cTransfer(bus, 'jshI2CRead', a, (d) => {
          const r = d.read(n, this.nowMs)
          if (r === null) return false
          out.set(r.subarray(0, n))
          return true
        })
        return out
      }
      g[bus] = o
    }
    function i2cAddr(addr: unknown): number {
      const a = typeof addr === 'object' && addr !== null ? Number((addr as { address?: unknown }).address) : Number(addr)
      if (!Number.isInteger(a) || a < 0 || a > 127) throw new C.Error(`expected a 7-bit I2C address, got ${String(addr)}`)
      return a
    }

    // ---- E ----
    const E = this.newEmitter()
    E.toString = (...a: unknown[]) => bytesToBinaryString(toBytes(a))
    E.toUint8Array = (...a: unknown[]) => {
      const b = toBytes(a)
      const u = new C.Uint8Array(b.length)
      u.set(b)
      return u
    }
    E.toArrayBuffer = (s: unknown) => (E.toUint8Array as (x: unknown) => Uint8Array)(s).buffer
    E.getSizeOf = (v: unknown) => {
      const c = new VarCounter(this.builtins)
      return typeof v === 'object' || typeof v === 'function' ? (v === null ? 0 : c.object(v as object)) : 1 + c.value(v)
    }
    let hw = 0x6d2b79f5
    E.hwRand = () => {
      // Same sequence after every boot, like the unseeded ESP32 port.
      hw = (hw + 0x6d2b79f5) | 0
      let t = Math.imul(hw ^ (hw >>> 15), 1 | hw)
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
      return (t ^ (t >>> 14)) | 0
    }
    E.setBootCode = (code: unknown, _always?: unknown) => {
      const s = String(code ?? '')
      if (s.length === 0) this.storage.erase('.bootcde')
      else this.storageCall(() => this.storage.write('.bootcde', Buffer.from(s, 'latin1')))
    }
    E.reboot = () => {
      throw new Interrupt('reboot')
    }
    E.setTimeZone = (hours: unknown) => {
      // Kept for getTimezoneOffset-style use; the board clock itself stays UTC.
      this.tzHours = Number(hours) || 0
    }
    E.kickWatchdog = () => undefined
    E.enableWatchdog = () => undefined
    E.getTemperature = () => 40
    E.getAnalogVRef = () => 3.3
    g.E = E
    this.emitters.set('E', E)

    // ---- process ----
    const proc = new C.Object() as Record<string, unknown>
    proc.version = '2v25'
    proc.env = this.jsObject({
      VERSION: '2v25', GIT_COMMIT: 'virtual', BOARD: 'ESP32', RAM: 532480, FLASH: 0, SPIFLASH: 4194304,
      STORAGE: 917504, SERIAL: this.id, CONSOLE: 'Serial1', MODULES: 'Flash,Storage,heatshrink,net,dgram,http,NetworkJS,Wifi,ESP32,TelnetServer,crypto,neopixel',
      EXPTR: 0,
    })
    proc.memory = () => {
      const m = this.memory()
      return this.jsObject({ free: m.free, usage: m.usage, total: m.total, history: 0, gc: 0, gctime: 0, blocksize: JSVAR_BYTES })
    }
    g.process = proc

    // ---- save/load/reset at the REPL ----
    def('save', () => {
      const code = this.uploaded.join('\n')
      this.storageCall(() => {
        this.storage.erase('.varimg')
        if (code.length) this.storage.write('.varimg', Buffer.from(code, 'latin1'))
      })
      this.console.write('Compacting Flash...')
      this.console.write('Saving code...')
    })
    def('load', () => {
      this.queueIo(() => this.boot())
    })
    def('reset', (clearFlash?: unknown) => {
      this.queueIo(() => {
        if (clearFlash) {
          this.storage.erase('.varimg')
          this.storage.erase('.bootcde')
        }
        this.reset()
      })
    })

    // ---- modules ----
    const Modules = new C.Object() as Record<string, unknown>
    Modules.addCached = (name: unknown, mod: unknown) => {
      this.modulesCache.set(String(name), typeof mod === 'string' ? { src: mod } : { fn: mod })
    }
    Modules.removeCached = (name: unknown) => this.modulesCache.delete(String(name))
    Modules.removeAllCached = () => this.modulesCache.clear()
    Modules.getCached = () => C.JSON.parse(JSON.stringify([...this.modulesCache.keys()]))
    g.Modules = Modules
    const natives: Record<string, () => unknown> = {
      crypto: () => this.cryptoModule(),
      Storage: () => this.storageModule(),
      Wifi: () => this.net.wifiModule(),
      net: () => this.net.netModule(false),
      tls: () => this.net.netModule(true),
    }
    const loaded = new Map<string, unknown>()
    def('require', (name: unknown) => {
      const n = String(name)
      if (loaded.has(n)) return loaded.get(n)
      let m: unknown
      const cached = this.modulesCache.get(n) as { src?: string; fn?: unknown } | undefined
      if (cached) {
        if (cached.fn !== undefined) {
          const exportsObj = new C.Object()
          const mod = this.jsObject({ exports: exportsObj })
          // Module code refers to free `exports`/`module`: re-create the function inside a scope that has them.
          const wrap = C.eval(`(function (exports, module) { return (${String(cached.fn)}) })`) as (e: unknown, m: unknown) => (this: unknown) => void
          wrap(exportsObj, mod).call(exportsObj)
          m = mod.exports
        } else {
          m = C.eval(`(function(){var exports={},module={exports:exports};${cached.src}\nreturn module.exports})()`)
        }
      } else if (natives[n]) m = natives[n]()
      else throw new C.Error(`Module ${n} not found`)
      loaded.set(n, m)
      return m
    })
    def('eval', (code: unknown) => {
      if (typeof code !== 'string') return code
      assertEspruinoCompatInBoard(code, C)
      this.codeVars += codeVars(code, this.flashStrings.includes(code))
      return C.eval(code)
    })
    def('btoa', (s: unknown) => Buffer.from(String(s), 'latin1').toString('base64'))
    def('atob', (s: unknown) => Buffer.from(String(s), 'base64').toString('latin1'))
    void board
  }

  private i2cTransfer(bus: BusName, op: string, addr: number, fn: (d: I2CDevice) => boolean): void {
    if (!this.i2cSetup[bus]) throw new this.C.Error(`${op}:, unknown error code ${ESP_ERR_INVALID_STATE}`)
    const dev = this.opts.i2c?.[bus]?.find((d) => d.address === addr)
    const ok = dev && !this.removedI2c.has(addr) ? fn(dev) : false
    if (!ok) throw new this.C.Error(`${op}: slave doesn't ACK the transfer`)
  }

  /** Runs a Storage operation, turning host errors into Espruino errors and brown-outs into a reboot. */
  private storageCall<T>(fn: () => T): T {
    try {
      return fn()
    } catch (e) {
      if (e instanceof BrownOut) {
        // Power is gone whatever the firmware does next: a try/catch around the write must
        // not be able to swallow the reboot.
        this.rebootPending = true
        throw e
      }
      if (e instanceof StorageError) throw new this.C.Error(e.message)
      throw e
    }
  }

  private cryptoModule(): unknown {
    const C = this.C
    const m = new C.Object() as Record<string, unknown>
    const ab = (b: Uint8Array): ArrayBuffer => {
      const out = new C.ArrayBuffer(b.length)
      new C.Uint8Array(out).set(b)
      return out
    }
    const hash = (alg: string) => (msg: unknown) => ab(createHash(alg).update(Uint8Array.from(toBytes(msg))).digest())
    m.SHA1 = hash('sha1')
    m.SHA224 = hash('sha224')
    m.SHA256 = hash('sha256')
    m.SHA384 = hash('sha384')
    m.SHA512 = hash('sha512')
    m.PBKDF2 = (pass: unknown, salt: unknown, options?: { keySize?: unknown; iterations?: unknown; hasher?: unknown }) => {
      // keySize counts 32-bit words (default 4 = 128 bits); iterations default 1; hasher default SHA1.
      const words = options?.keySize === undefined ? 4 : Number(options.keySize)
      const iterations = options?.iterations === undefined ? 1 : Number(options.iterations)
      const hasher = String(options?.hasher ?? 'SHA1').toLowerCase()
      if (!['sha1', 'sha224', 'sha256', 'sha384', 'sha512'].includes(hasher)) throw new C.Error(`Unknown hasher ${String(options?.hasher)}`)
      if (!Number.isInteger(words) || words <= 0 || !Number.isInteger(iterations) || iterations <= 0) throw new C.Error('Invalid keySize or iterations')
      return ab(pbkdf2Sync(Uint8Array.from(toBytes(pass)), Uint8Array.from(toBytes(salt)), iterations, words * 4, hasher))
    }
    return m
  }

  private storageModule(): unknown {
    const C = this.C
    const S = new C.Object() as Record<string, unknown>
    const st = this.storage
    const call = <T>(fn: () => T): T => this.storageCall(fn)
    const name = (n: unknown): string => {
      if (typeof n !== 'string') throw new C.Error(`expected a file name string, got ${typeof n}`)
      return n
    }
    const remember = (s: string): string => {
      if (s.length > 256) {
        this.flashStrings.push(s)
        if (this.flashStrings.length > 8) this.flashStrings.shift()
      }
      return s
    }
    S.read = (n: unknown, offset?: unknown, length?: unknown) => {
      const b = st.read(name(n), Number(offset ?? 0), length === undefined ? undefined : Number(length))
      return b ? remember(b.toString('latin1')) : undefined
    }
    S.readArrayBuffer = (n: unknown) => {
      const b = st.read(name(n))
      if (!b) return undefined
      const out = new C.ArrayBuffer(b.length)
      new C.Uint8Array(out).set(b)
      return out
    }
    S.readJSON = (n: unknown, noExceptions?: unknown) => {
      const b = st.read(name(n))
      if (!b) return undefined
      try {
        return C.JSON.parse(b.toString('latin1'))
      } catch (e) {
        if (noExceptions) return undefined
        throw e
      }
    }
    S.write = (n: unknown, data: unknown, offset?: unknown, size?: unknown) =>
      call(() => st.write(name(n), Uint8Array.from(toBytes(data)), Number(offset ?? 0), Number(size ?? 0)))
    S.writeJSON = (n: unknown, v: unknown) => call(() => st.write(name(n), Buffer.from(String(C.JSON.stringify(v)), 'latin1')))
    S.erase = (n: unknown) => call(() => st.erase(name(n)))
    S.eraseAll = () => call(() => st.eraseAll())
    S.compact = () => call(() => st.compact())
    S.getFree = () => st.getFree()
    S.getStats = () => this.jsObject({ ...st.getStats() })
    S.list = (re?: unknown) => {
      let names = st.list()
      if (re && typeof (re as RegExp).test === 'function') names = names.filter((x) => (re as RegExp).test(x))
      else if (typeof re === 'string') names = names.filter((x) => x.includes(re))
      return C.JSON.parse(JSON.stringify(names))
    }
    S.open = (n: unknown, mode: unknown) => this.openStorageFile(name(n), String(mode))
    return S
  }

  private openStorageFile(fname: string, mode: string): unknown {
    const C = this.C
    if (!['r', 'w', 'a'].includes(mode)) throw new C.Error(`Invalid mode ${JSON.stringify(mode)}: expected 'r', 'w' or 'a'`)
    try {
      StorageFiles.checkName(fname)
    } catch (e) {
      throw new C.Error((e as Error).message)
    }
    if (fname.length > NAME_BYTES - 1) throw new C.Error('Invalid filename')
    const sf = this.sfiles
    if (mode === 'w') this.storageCall(() => sf.erase(fname))
    let pos = 0
    const f = new C.Object() as Record<string, unknown>
    f.name = fname
    f.mode = mode
    f.write = (data: unknown) => {
      if (mode === 'r') throw new C.Error("Can't write in read mode")
      this.storageCall(() => sf.append(fname, Uint8Array.from(toBytes(data))))
    }
    f.read = (len: unknown) => {
      const n = Number(len)
      const b = sf.read(fname, pos, Number.isFinite(n) && n > 0 ? n : 0)
      if (b.length === 0) return undefined
      pos += b.length
      return b.toString('latin1')
    }
    f.readLine = () => {
      const b = sf.read(fname, pos, 4096)
      if (b.length === 0) return undefined
      const nl = b.indexOf(10)
      const take = nl < 0 ? b.length : nl + 1
      pos += take
      return b.subarray(0, take).toString('latin1')
    }
    f.getLength = () => sf.length(fname)
    f.erase = () => this.storageCall(() => sf.erase(fname))
    return f
  }
}

function assertEspruinoCompatInBoard(code: string, C: Intrinsics): void {
  try {
    assertEspruinoCompat(code)
  } catch (e) {
    throw new C.Error((e as Error).message)
  }
}

/**
 * JsVars the code of `code` keeps after it ran. Espruino discards top-level
 * statements once executed and keeps the text of each function it creates;
 * an immediately-invoked function is discarded after its call, so the
 * functions it creates count instead (that is a bundle's IIFE wrapper).
 * From flash, function text stays in flash: 2 vars per function object.
 */
export function codeVars(code: string, fromFlash: boolean): number {
  let ast: AnyNode
  try {
    ast = parse(code, { ecmaVersion: 'latest' }) as AnyNode
  } catch {
    return fromFlash ? 0 : ramCodeVars(code.length)
  }
  let chars = 0
  let fns = 0
  const visit = (n: AnyNode, iife: boolean): void => {
    const isFn = n.type === 'FunctionExpression' || n.type === 'FunctionDeclaration' || n.type === 'ArrowFunctionExpression'
    if (isFn && !iife) {
      chars += n.end - n.start
      fns++
      if (!fromFlash) return
    }
    for (const k of Object.keys(n)) {
      const v = n[k]
      if (Array.isArray(v)) {
        for (const c of v) if (c && typeof c.type === 'string') visit(c, false)
      } else if (v && typeof v === 'object' && typeof v.type === 'string') {
        visit(v, (n.type === 'CallExpression' || n.type === 'NewExpression') && k === 'callee' && (v.type === 'FunctionExpression' || v.type === 'ArrowFunctionExpression'))
      }
    }
  }
  visit(ast, false)
  return fromFlash ? 2 * fns : ramCodeVars(chars)
}

type AnyNode = { type: string; start: number; end: number } & Record<string, any>
