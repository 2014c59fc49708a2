/**
 * A board's running JsVar account: what its program holds now (memory.ts
 * prices it), checked against the budget where Espruino would run out: at
 * load, at each allocation of a buffer, as arrays grow, and between
 * callbacks. An allocation that cannot be met interrupts the running
 * callback (interrupt.ts); over budget between callbacks, each callback
 * fails until usage is back under.
 */
import v8 from 'node:v8'
import vm from 'node:vm'
import { VarCounter, JSVAR_BYTES, BASE_VARS, typedArrayVars, codeVars, nameVars, stringVars, flatVars, type CodeOrigin } from './memory.ts'
import { rewriteForBoard } from './load-rewrite.ts'
import { interruptForMemory } from './interrupt.ts'
import { BoardError } from './errors.ts'

export interface MemoryReport {
  /** JsVars in use (estimate, see memory.ts). */
  usage: number
  free: number
  total: number
  /** Vars held by function code (code sent to RAM is copied into every function object; from flash 1 block each). */
  code: number
  blocksize: number
  /** The first time usage exceeded the budget since the last reset, or null. */
  outOfMemory: boolean
  /** Callbacks (and uploads) interrupted by an allocation that could not be met, since this board object was made. */
  interrupts: number
  /** Free vars while a squeezeMemory() fault lasts, else null. */
  squeezedFree: number | null
}

/** A scope token (load-rewrite.ts): a function call's scope, alive as long as V8 keeps the token. */
interface ScopeToken {
  /** The scope block and its variables' names. */
  k: number
  /** Variable i's current value (throws while a let/const is uninitialised). */
  read: (i: number) => unknown
  /** The readable variables' names, comma-separated (for the inline-integer rule). */
  names: string
}

const splitNames = new Map<string, string[]>()
function namesOf(s: string): string[] {
  let a = splitNames.get(s)
  if (!a) {
    a = s === '' ? [] : s.split(',')
    if (splitNames.size > 10_000) splitNames.clear()
    splitNames.set(s, a)
  }
  return a
}

/** What the account needs from its board. */
export interface MemoryHost {
  /** Virtual ms now. */
  readonly now: number
  /** The interpreter's own objects (never charged). */
  builtins(): ReadonlySet<unknown>
  /** JsVars the program holds from its roots: globals, timers, listeners, sockets. */
  roots(c: VarCounter): number
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
  /** Scope tokens of live function calls (weak: V8 drops them with the scope). */
  private scopes: Array<WeakRef<ScopeToken>> = []
  private scopesCompacted = 0
  /** Rewritten programs (load-rewrite.ts ids) that were sent to RAM: their functions carry copies of their code. */
  private ramScripts = new Set<string>()
  private readonly origin: CodeOrigin = { inRam: (info) => !info || this.ramScripts.has(info.script) }
  /** JSERR_MEMORY: Espruino prints "Out of Memory!" once until the error flags are read. */
  private memoryErrorShown = false
  private interrupts = 0
  private squeezeUntil = -1
  private squeezeCeiling = Infinity
  private squeezeFree = 0
  private squeezeSettle = false
  private pinchCeiling: number | null = null
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
    this.scopes = []
    this.scopesCompacted = 0
    this.ramScripts.clear()
    this.memoryErrorShown = false
  }

  report(): MemoryReport {
    this.measure()
    const squeezed = this.squeezed()
    return {
      usage: this.usage, free: Math.max(0, this.budget - this.usage), total: this.budget, code: this.codeVars, blocksize: JSVAR_BYTES,
      outOfMemory: this.oom, interrupts: this.interrupts, squeezedFree: squeezed ? Math.max(0, this.squeezeCeiling - this.usage) : null,
    }
  }

  /**
   * Before an upload runs: sent to RAM, Espruino holds its whole text while executing it, so
   * it must fit (else it is refused and does not run); its functions then carry copies of
   * their code. From flash the text is memory-mapped and costs nothing to hold.
   */
  chargeCode(code: string, fromFlash: boolean, label: string): void {
    const cost = codeVars(code, fromFlash)
    this.measure()
    if (this.usage + cost > this.budget) {
      this.printOutOfMemory()
      throw new BoardError(`Out of Memory!: ${label} needs ${cost} JsVars for its code, ${Math.max(0, this.budget - this.usage)} of ${this.budget} free`)
    }
    this.addCode(code, fromFlash)
  }

  /** Code `eval` runs (whatever its size: the firmware asked for it): where its functions' code lives. */
  addCode(code: string, fromFlash: boolean): void {
    if (!fromFlash) this.ramScripts.add(rewriteForBoard(code).id)
  }

  /** A function call that creates functions registers its scope (load-rewrite.ts); returns the token V8 keeps it by. */
  scope(k: number, read: (i: number) => unknown, names: string): ScopeToken {
    const t: ScopeToken = { k, read, names }
    this.scopes.push(new WeakRef(t))
    // Calls of short-lived scopes pile up between walks: drop the collected ones now and then.
    if (this.scopes.length > 2 * this.scopesCompacted + 1024) this.compactScopes()
    return t
  }

  /**
   * Fault: for `forMs` virtual ms, the board has only `freeVars` JsVars more than it uses now
   * (something else took the rest, as on a real board under a burst of traffic); an
   * allocation that does not fit is an out-of-memory interrupt.
   */
  squeeze(freeVars: number, forMs: number): void {
    if (!(freeVars >= 0) || !Number.isFinite(freeVars)) throw new RangeError(`expected freeVars >= 0, got ${freeVars}`)
    if (!(forMs >= 0) || !Number.isFinite(forMs)) throw new RangeError(`expected forMs >= 0, got ${forMs}`)
    this.measure()
    this.squeezeFree = Math.floor(freeVars)
    this.squeezeCeiling = this.usage + this.squeezeFree
    this.squeezeUntil = this.host.now + forMs
    // Buffers V8 has not collected yet still count in `usage`: run() collects once and the
    // ceiling comes down to what the program really holds, so the room left does not depend on
    // how much garbage the host's GC happened to leave at this moment.
    this.squeezeSettle = true
  }

  private squeezed(): boolean {
    return this.host.now < this.squeezeUntil
  }

  /**
   * Fault for one callback (Dispatcher.runPinched): no room beyond what is in use as it
   * starts, so its first allocation is an out-of-memory interrupt. Null ends it.
   */
  pinch(on: boolean): void {
    if (on) this.measure()
    this.pinchCeiling = on ? this.usage : null
  }

  /** Vars an allocation may take the usage to. */
  private ceiling(): number {
    const c = this.squeezed() ? Math.min(this.budget, this.squeezeCeiling) : this.budget
    return this.pinchCeiling === null ? c : Math.min(c, this.pinchCeiling)
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
    // A walk prices every reachable object, function and live scope (about a millisecond for a
    // firmware's state): after a callback every second, every 250 virtual ms once above 3/4 of
    // the budget, or at once when allocations since the last walk may have used up the room.
    // Between walks allocations are added as they happen (alloc, grow).
    const period = this.usage > 0.75 * this.budget ? 250 : 1000
    if (this.host.now - this.lastMeasureAt >= period || (this.memDirty && this.usage > 0.9 * this.ceiling())) this.measure()
    if (this.usage > this.budget && !this.oom) {
      this.oom = true
      this.oomCollected = false
      this.printOutOfMemory()
    }
  }

  /** run() collects as soon as the board is out of memory, then at most once a real second while it stays out. */
  collectDue(): boolean {
    return this.squeezeSettle || (this.oom && performance.now() - this.lastCollect > (this.oomCollected ? 1000 : 0))
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
    if (this.squeezeSettle && this.squeezed()) this.squeezeCeiling = Math.min(this.squeezeCeiling, this.usage + this.squeezeFree)
    this.squeezeSettle = false
    return gcMs
  }

  /** Recomputes the JsVar estimate: roots + live scopes (with their functions and code) + tracked buffers and big arrays. */
  measure(): void {
    this.memDirty = false
    this.lastMeasureAt = this.host.now
    const c = new VarCounter(this.host.builtins(), { skip: (o) => this.trackCells.has(o), origin: this.origin })
    const n = BASE_VARS + this.host.roots(c) + this.scopeVars(c)
    this.codeVars = c.code
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

  /** What the live scopes hold: their blocks and names, and the values of their variables. */
  private scopeVars(c: VarCounter): number {
    let n = 0
    let w = 0
    const list = this.scopes
    for (let i = 0; i < list.length; i++) {
      const t = list[i]!.deref()
      if (t === undefined) continue
      list[w++] = list[i]!
      n += t.k
      const names = namesOf(t.names)
      for (let j = 0; j < names.length; j++) {
        let v: unknown
        try {
          v = t.read(j)
        } catch {
          continue // a let/const not initialised yet
        }
        n += c.slot(names[j]!, v) - nameVars(names[j]!.length)
      }
    }
    list.length = w
    this.scopesCompacted = w
    return n
  }

  private compactScopes(): void {
    let w = 0
    for (const r of this.scopes) if (r.deref() !== undefined) this.scopes[w++] = r
    this.scopes.length = w
    this.scopesCompacted = w
  }

  // ---------------------------------------------------------- hooks (prelude)

  /** Allocation hook (typed arrays, ArrayBuffers): interrupts the callback when the buffer cannot fit. */
  alloc(bytes: number): void {
    if (bytes >= 0) this.allocVars(typedArrayVars(bytes))
  }

  /**
   * A string a built-in makes (E.toString's result, a socket's send buffer): `flat` when
   * Espruino allocates it in one block. Charged until the next walk finds whether anything
   * still holds it; a frame-sized string is what ran out first on the real interpreter.
   */
  allocString(len: number, flat: boolean): void {
    if (len > 0) this.allocVars(flat ? flatVars(len) : stringVars(len))
  }

  private allocVars(cost: number): void {
    this.memDirty = true
    const ceiling = this.ceiling()
    if (this.usage + cost <= ceiling) {
      this.usage += cost
      return
    }
    // The estimate may still count garbage: measure again, and collect so it stops counting soon.
    this.measure()
    if (this.usage + cost > ceiling) {
      requestGc()
      this.interrupt()
    }
    this.usage += cost
  }

  /** Espruino could not allocate: it reports it (once, JSERR_MEMORY) and interrupts execution. */
  private interrupt(): never {
    this.outOfMemory()
    interruptForMemory()
  }

  /** An allocation failed: counted, and reported once until the error flags are read. */
  outOfMemory(): void {
    this.interrupts++
    if (!this.memoryErrorShown) {
      this.memoryErrorShown = true
      this.printOutOfMemory()
    }
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
    this.usage += this.recost(a)
    this.memDirty = true
    if (this.usage <= this.ceiling()) return
    this.measure()
    if (this.usage > this.ceiling()) {
      requestGc()
      if (this.usage > this.budget) {
        this.oom = true
        this.oomCollected = false
      }
      this.interrupt()
    }
  }

  private cell(cost: number): TrackCell {
    return { cost, gen: this.tracked.gen, acct: this.tracked }
  }

  /** Re-prices a tracked array (its elements and what they hold); returns the change. */
  private recost(a: unknown[]): number {
    const cell = this.trackCells.get(a)
    if (!cell) return 0
    const cost = new VarCounter(this.host.builtins(), { skip: (o) => o !== a && this.trackCells.has(o), origin: this.origin }).object(a)
    const delta = cost - cell.cost
    this.tracked.cost += delta
    cell.cost = cost
    return delta
  }

  private printOutOfMemory(): void {
    this.host.print('ERROR: Out of Memory!')
  }
}
