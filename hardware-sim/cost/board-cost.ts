/**
 * The cost model wired into one virtual board: what makes the board's clock charge the time an
 * ESP32 would spend (issue 24). The board holds one BoardCost when its `cost` option is on,
 * and hands it to the parts that need it:
 *
 * - the sandbox instruments every piece of code it runs (uploads, Storage boot files, REPL
 *   lines, `eval`) with instrument.ts, after the syntax gate (memory estimates keep the
 *   original text);
 * - the dispatcher brackets every callback with `begin(name)` / `end()`; `end()` of the
 *   outermost callback moves the board's virtual clock on by what the callback cost;
 * - the clock answers `getTime()` / `Date.now()` during a callback with the virtual time plus
 *   `elapsedMs()`, and names timers (`timerName`);
 * - the peripherals, crypto, Storage and sockets add their native time (`i2c`, `spi`, `adc`,
 *   `hash`, `pbkdf2`, `flash`, `netWrite`).
 *
 * REPL lines are instrumented (functions typed at the prompt are charged when they run later)
 * but not metered: tests and tools read the board's state through the REPL (`mhStatus()`), and
 * a probe must not move the board's clock.
 */
import vm from 'node:vm'
import { instrument } from './instrument.ts'
import { CostModel, type HashName, type Setting } from './model.ts'
import { CostMeter, installCounter, OUTSIDE, type CostCounter } from './meter.ts'

/** The board option: off, one of the model's settings, or a model of your own. */
export type CostOption = 'off' | Setting | CostModel

/** What the cost moves: the board's virtual clock. */
export interface ChargedClock {
  /** The callback that just ended cost `ms` of board time: virtual time moves on by it. */
  charge(ms: number): void
}

/** Storage counters before and after a flash operation (FlashStorage.getStats()). */
export interface FlashStats {
  fileBytes: number
  trashBytes: number
  trashCount: number
}

/** What a Storage call programmed besides what the stats show: its payload and where in the file it went. */
export interface FlashPayload {
  bytes: number
  /** Offset of the payload in its file (0 for a write that creates or rewrites the file); null for an append at an offset not known here (StorageFile). */
  fileOffset: number | null
}

/** One callback name in a report. */
export interface CallbackCost {
  name: string
  count: number
  totalUs: number
  maxUs: number
  meanUs: number
  /** Interpreter units (dispatch excluded). */
  units: number
}

export interface CostReport {
  setting: Setting
  usPerUnit: number
  /** Virtual ms the report covers (since the board was made or the last reset). */
  elapsedMs: number
  /** ESP32 µs spent in callbacks over that time. */
  busyUs: number
  /** busyUs / elapsed: the share of one ESP32 core (over 1 means the board cannot keep up). */
  share: number
  /** Dearest first. */
  callbacks: CallbackCost[]
  /** Native time charged while no callback ran (REPL probes, the rig writing .bootcde): not on the clock. */
  outsideUs: number
}

/** Bytes of a Storage page (an ESP32 flash sector), of a Storage file header, and of its name field. */
const SECTOR = 4096
const HEADER = 32
const NAME = 28
/** The Storage area (storage.ts STORAGE_BYTES): `eraseAll` erases all of it. */
const AREA_SECTORS = 917_504 / SECTOR

/** Longest function text kept in a timer's name. */
const SHORT_FN = 40
/** The charges instrument.ts inserts, removed from a function's text for its name. */
const CHARGES = /var __cost\$c=__cost;|var __cost\$=\(__cost\.u\+=[\d.e+-]+\);|__cost(\$c)?\.u\+=[\d.e+-]+[;,]/g

/** Instrumented code by source text, shared by every board of the process (a fleet boots the same bundle hundreds of times). */
const instrumented = new Map<string, string>()
const CACHE_ENTRIES = 64

/** Resolves the board option: null when off. */
export function resolveCost(option: CostOption | undefined, clock: ChargedClock): BoardCost | null {
  if (option === undefined || option === 'off') return null
  if (option instanceof CostModel) return new BoardCost(option, clock)
  if (option === 'low' || option === 'central' || option === 'high') return new BoardCost(new CostModel(option), clock)
  throw new TypeError(`expected cost 'off', 'low', 'central', 'high' or a CostModel, got ${JSON.stringify(option)}`)
}

export class BoardCost {
  readonly meter: CostMeter
  /** Virtual ms when the report started. */
  private since = 0
  private sites = new Map<string, string>()

  constructor(
    readonly model: CostModel,
    private readonly clock: ChargedClock,
  ) {
    // A placeholder until the first interpreter attaches its own counter.
    this.meter = new CostMeter(model, { u: 0 })
  }

  /** A fresh interpreter: its counter (a non-enumerable `__cost` in its context) is the one counted from now on. */
  attach(ctx: vm.Context): CostCounter {
    const counter = installCounter(ctx)
    this.meter.attach(counter)
    return counter
  }

  /** The code the sandbox runs: `code` instrumented (cached by text). */
  instrument(code: string): string {
    let out = instrumented.get(code)
    if (out === undefined) {
      out = instrument(code).code
      if (instrumented.size >= CACHE_ENTRIES) instrumented.delete(instrumented.keys().next().value!)
      instrumented.set(code, out)
    }
    return out
  }

  // ------------------------------------------------------------ callbacks (dispatch.ts)

  /** A callback starts (the idle loop's dispatch cost is charged with it). */
  begin(name: string): void {
    this.meter.begin(name)
  }

  /** The callback ends: the outermost one moves the clock on by everything it cost, nested callbacks included. */
  end(): void {
    const outermost = this.meter.depth === 1
    const us = outermost ? this.meter.elapsedUs() : 0
    this.meter.end()
    if (outermost) this.clock.charge(us / 1000)
  }

  /** Board ms the running callback has cost so far (0 between callbacks): getTime() adds it. */
  elapsedMs(): number {
    return this.meter.elapsedUs() / 1000
  }

  /**
   * The name a timer is reported under: the function's own name (three characters or more);
   * otherwise `setTimeout@<site>` with the site the function that called
   * setTimeout/setInterval (`Class.method` or `name`, else `file:line:column`), read from the
   * V8 stack at the call, followed by the function's text when it is short
   * (`setInterval@st.start function(){t.tick()}`: two timers set in one method stay apart),
   * else by its minified name.
   */
  timerName(kind: 'setTimeout' | 'setInterval', fn: unknown): string {
    // A minifier's names (one or two characters) say nothing: those get the site as well.
    if (typeof fn === 'function' && fn.name.length > 2) return fn.name
    if (typeof fn === 'string') return `${kind}@${JSON.stringify(fn.length > SHORT_FN ? fn.slice(0, SHORT_FN) + '...' : fn)}`
    const site = `${kind}@${this.callerSite()}`
    if (typeof fn !== 'function') return site
    const text = Function.prototype.toString.call(fn).replace(CHARGES, '')
    return text.length <= SHORT_FN ? `${site} ${text}` : fn.name ? `${site} ${fn.name}` : site
  }

  private callerSite(): string {
    const prepare = Error.prepareStackTrace
    const limit = Error.stackTraceLimit
    const holder: { stack?: NodeJS.CallSite[] } = {}
    try {
      Error.stackTraceLimit = 8
      Error.prepareStackTrace = (_e, frames) => frames
      Error.captureStackTrace(holder, this.callerSite)
      const frames = holder.stack ?? []
      // The first frame in board code: host frames come from files (paths, file: URLs, node: modules).
      const f = frames.find((c) => !/^(\/|file:|node:|[A-Za-z]:\\)/.test(c.getFileName() ?? '/'))
      if (!f) return '?'
      const key = `${f.getFileName()}:${f.getLineNumber()}:${f.getColumnNumber()}`
      let site = this.sites.get(key)
      if (site === undefined) {
        const fnName = f.getFunctionName()
        const type = f.getTypeName()
        site = fnName ? (type && type !== 'Object' && type !== 'global' && !fnName.includes('.') ? `${type}.${fnName}` : fnName) : key
        this.sites.set(key, site)
      }
      return site
    } finally {
      Error.prepareStackTrace = prepare
      Error.stackTraceLimit = limit
    }
  }

  // ------------------------------------------------------------ native operations

  /** Native time (µs) on the running callback. */
  native(us: number): void {
    this.meter.native(us)
  }

  /** One I2C transaction of `bytes` data bytes (0: the address alone, a NACKed poll); the ESP32 driver waits for all of it. */
  i2c(bytes: number, bitrateHz: number): void {
    this.meter.native(this.model.nativeCallUs() + this.model.i2cUs(bytes, bitrateHz))
  }

  /** One SPI transaction of `bytes` bytes at `baudHz`. */
  spi(bytes: number, baudHz: number): void {
    this.meter.native(this.model.nativeCallUs() + this.model.spiUs(bytes, baudHz))
  }

  /** analogRead: one conversion. */
  adc(): void {
    this.meter.native(this.model.analogReadUs())
  }

  /** A native call that does nothing costly (a bus call refused before setup, a Storage read). */
  call(): void {
    this.meter.native(this.model.nativeCallUs())
  }

  /** crypto.SHA*: the hash of `bytes` bytes. */
  hash(name: HashName, bytes: number): void {
    this.meter.native(this.model.nativeCallUs() + this.model.hashUs(name, bytes))
  }

  /** crypto.PBKDF2. */
  pbkdf2(passBytes: number, saltBytes: number, o: { iterations: number; outBytes: number; hasher: HashName }): void {
    this.meter.native(this.model.nativeCallUs() + this.model.pbkdf2Us(passBytes, saltBytes, o))
  }

  /** socket.write of `bytes` bytes. */
  netWrite(bytes: number): void {
    this.meter.native(this.model.netWriteUs(bytes))
  }

  /**
   * A Storage operation, from the storage counters before and after it and the payload it
   * wrote. Flash bits only go 1 -> 0, so what was programmed shows in the counters:
   * - a file created at the old end of the used area: its 32-byte header and the payload,
   *   page programs at their real addresses;
   * - a copy turned into trash (a rewrite, `erase`): its 28-byte name zeroed, one program;
   * - a payload into a file that already existed (an offset write, a StorageFile append):
   *   its address is not known here, so the file is taken to start on a page boundary (an
   *   estimate, one page program too many or too few at worst);
   * - compaction (the trash went): every sector of the old used area erased, the live files
   *   programmed again (an estimate of Espruino's in-place compaction);
   * - `eraseAll`: every sector of the area.
   * A rewrite of a file with identical contents programs nothing (Espruino compares first).
   */
  flash(before: FlashStats, after: FlashStats, payload: FlashPayload | null, eraseAll = false): void {
    const m = this.model
    let us = m.nativeCallUs()
    const endA = before.fileBytes + before.trashBytes
    const endB = after.fileBytes + after.trashBytes
    if (eraseAll) us += m.flashEraseUs(AREA_SECTORS)
    else if (after.trashBytes < before.trashBytes || endB < endA) {
      us += m.flashEraseUs(Math.ceil(endA / SECTOR)) + m.flashWriteUs(endB, 0)
    } else {
      us += Math.max(0, after.trashCount - before.trashCount) * m.flashWriteUs(NAME, 4)
      if (payload && payload.bytes > 0) {
        const at = payload.fileOffset ?? 0
        if (endB > endA) {
          // Created at the old end: header and payload, contiguous when the payload starts the file.
          if (at === 0) us += m.flashWriteUs(HEADER + payload.bytes, endA)
          else us += m.flashWriteUs(HEADER, endA) + m.flashWriteUs(payload.bytes, endA + HEADER + at)
        } else if (payload.fileOffset !== 0) {
          us += m.flashWriteUs(payload.bytes, HEADER + at)
        }
      }
    }
    this.meter.native(us)
  }

  // ------------------------------------------------------------ reports

  /** Per callback name, and the share of one ESP32 core over the virtual time since the last reset. */
  report(nowMs: number): CostReport {
    const callbacks: CallbackCost[] = []
    let busyUs = 0
    let outsideUs = 0
    for (const r of this.meter.report()) {
      if (r.name === OUTSIDE) {
        outsideUs = r.sumUs
        continue
      }
      busyUs += r.sumUs
      callbacks.push({ name: r.name, count: r.count, totalUs: r.sumUs, maxUs: r.maxUs, meanUs: r.meanUs, units: r.units })
    }
    const elapsedMs = nowMs - this.since
    return {
      setting: this.model.setting, usPerUnit: this.model.usPerUnit, elapsedMs, busyUs,
      share: elapsedMs > 0 ? busyUs / 1000 / elapsedMs : 0, callbacks, outsideUs,
    }
  }

  /** Starts a new report at virtual time `nowMs`. */
  reset(nowMs: number): void {
    this.meter.resetTotals()
    this.since = nowMs
  }
}

/** Bytes a socket write carries (a string's characters are bytes on Espruino). */
export function byteLength(data: unknown): number {
  if (typeof data === 'string') return data.length
  if (ArrayBuffer.isView(data)) return data.byteLength
  if (Array.isArray(data)) return data.length
  if (Object.prototype.toString.call(data) === '[object ArrayBuffer]') return (data as ArrayBuffer).byteLength
  return data === undefined || data === null ? 0 : String(data).length
}

/**
 * `require("net")` / `require("tls")` with every socket's `write` charged (`end(data)` writes
 * through it). The module object is the network's own, changed in place.
 */
export function meteredNetModule(m: unknown, cost: BoardCost): unknown {
  const mod = m as Record<string, unknown>
  const connect = mod.connect as (...a: unknown[]) => Record<string, unknown>
  mod.connect = (...args: unknown[]) => {
    const sock = connect(...args)
    const write = sock.write as (d: unknown) => unknown
    sock.write = (data: unknown) => {
      cost.netWrite(byteLength(data))
      return write(data)
    }
    return sock
  }
  return mod
}
