/**
 * A board's running JsVar account: what its program holds now (memory.ts
 * prices it), checked against the budget where Espruino would run out: at
 * load, at each allocation of a buffer, as arrays grow, and between
 * callbacks. Over budget, each callback fails until usage is back under.
 */
import v8 from 'node:v8'
import vm from 'node:vm'
import { VarCounter, JSVAR_BYTES, BASE_VARS, typedArrayVars } from './memory.ts'
import { BoardError } from './errors.ts'

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

/** What the account needs from its board. */
export interface MemoryHost {
  /** Virtual ms now. */
  readonly now: number
  /** The interpreter's own objects (never charged). */
  builtins(): ReadonlySet<unknown>
  /** JsVars the program holds from its roots: globals, timers, listeners, sockets. */
  roots(c: VarCounter): number
  /** An Error of the interpreter's realm (what the firmware sees thrown). */
  error(message: string): Error
  /** Prints a console line. */
  print(line: string): void
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

export class MemoryAccount {
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

  constructor(readonly budget: number, private readonly host: MemoryHost) {}

  /** A fresh interpreter: nothing of the old program counts any more. */
  reset(): void {
    this.trackedArrays.length = 0
    this.trackCells = new WeakMap()
    this.tracked.cost = 0
    this.tracked.gen++
    this.codeVars = 0
    this.oom = false
  }

  report(): MemoryReport {
    this.measure()
    return { usage: this.usage, free: Math.max(0, this.budget - this.usage), total: this.budget, code: this.codeVars, blocksize: JSVAR_BYTES, outOfMemory: this.oom }
  }

  /** Charges the code an upload keeps, or refuses the upload when it does not fit. */
  chargeCode(cost: number, label: string): void {
    this.measure()
    if (this.usage + cost > this.budget) {
      this.printOutOfMemory()
      throw new BoardError(`Out of Memory!: ${label} needs ${cost} JsVars for its code, ${Math.max(0, this.budget - this.usage)} of ${this.budget} free`)
    }
    this.codeVars += cost
  }

  /** Charges code `eval` keeps (it runs whatever its size: the firmware asked for it). */
  addCode(cost: number): void {
    this.codeVars += cost
  }

  /** Before a callback: with no free vars, Espruino cannot even start it. */
  mayRun(): boolean {
    if (!this.oom) return true
    // Everything needs a few vars; with none free the call fails at once.
    this.measure()
    if (this.usage >= this.budget) {
      requestGc()
      this.printOutOfMemory()
      return false
    }
    this.oom = false
    return true
  }

  /** After a callback: re-measures when it may have allocated, and notices running out. */
  check(): void {
    // The walk costs tens of microseconds: after a callback only when an allocation hook fired
    // or 250 virtual ms passed (plain objects growing in globals are seen that late at worst).
    if (this.memDirty || this.host.now - this.lastMeasureAt >= 250) this.measure()
    if (this.usage > this.budget && !this.oom) {
      this.oom = true
      this.oomCollected = false
      this.printOutOfMemory()
    }
  }

  /** run() collects as soon as the board is out of memory, then at most once a real second while it stays out. */
  collectDue(): boolean {
    return this.oom && performance.now() - this.lastCollect > (this.oomCollected ? 1000 : 0)
  }

  /** Forces a V8 collection and re-measures; resolves with the real ms the collection took. */
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

  /** Recomputes the JsVar estimate: code + roots + tracked buffers and big arrays. */
  measure(): void {
    this.memDirty = false
    this.lastMeasureAt = this.host.now
    const c = new VarCounter(this.host.builtins(), (o) => this.trackCells.has(o))
    const n = BASE_VARS + this.codeVars + this.host.roots(c)
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

  // ---------------------------------------------------------- hooks (prelude)

  /** Allocation hook (typed arrays, ArrayBuffers): fails at once when the buffer cannot fit. */
  alloc(bytes: number): void {
    if (!(bytes >= 0)) return
    this.memDirty = true
    const cost = typedArrayVars(bytes)
    if (this.usage + cost <= this.budget) {
      this.usage += cost
      return
    }
    // The estimate may still count garbage: measure again, and collect so it stops counting soon.
    this.measure()
    if (this.usage + cost > this.budget) requestGc()
    if (this.usage + cost > this.budget) {
      this.printOutOfMemory()
      throw this.host.error('Out of Memory!')
    }
    this.usage += cost
  }

  track(o: object): void {
    const bytes = ArrayBuffer.isView(o) ? o.byteLength : (o as ArrayBuffer).byteLength
    if (bytes < 64 || this.trackCells.has(o)) return
    const cell = this.cell(typedArrayVars(bytes))
    this.trackCells.set(o, cell)
    if (ArrayBuffer.isView(o)) this.trackCells.set(o.buffer, this.cell(0))
    released.register(o, cell)
    this.tracked.cost += cell.cost
  }

  /** Array growth hook (each 64 elements): big arrays are tracked even when only a closure holds them. */
  grow(a: unknown[]): void {
    if (!this.trackCells.has(a)) {
      const cell = this.cell(0)
      this.trackCells.set(a, cell)
      released.register(a, cell)
      this.trackedArrays.push(new WeakRef(a))
    }
    this.recost(a)
    this.measure()
    if (this.usage > this.budget) {
      requestGc()
      this.printOutOfMemory()
      this.oom = true
      this.oomCollected = false
      throw this.host.error('Out of memory while appending to array')
    }
  }

  private cell(cost: number): TrackCell {
    return { cost, gen: this.tracked.gen, acct: this.tracked }
  }

  /** Re-prices a tracked array (its elements and what they hold). */
  private recost(a: unknown[]): void {
    const cell = this.trackCells.get(a)
    if (!cell) return
    const cost = new VarCounter(this.host.builtins(), (o) => o !== a && this.trackCells.has(o)).object(a)
    this.tracked.cost += cost - cell.cost
    cell.cost = cost
  }

  private printOutOfMemory(): void {
    this.host.print('ERROR: Out of Memory!')
  }
}
