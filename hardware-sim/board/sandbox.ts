/**
 * One Espruino interpreter: a `node:vm` context the prelude has stripped of
 * what Espruino lacks (prelude.ts), with the host hooks the prelude calls
 * (JsVar accounting, the wall clock) and `eval` behind the syntax gate.
 * Values handed to the firmware are built with the context's own
 * constructors so `instanceof` works inside. A reset makes a new Sandbox.
 */
import vm from 'node:vm'
import { PRELUDE } from './prelude.ts'
import { assertEspruinoCompat } from '../../firmware/build/syntax-gate.ts'
import type { VarCounter } from './memory.ts'
import { rewriteForBoard, SCOPE_HOOK, INTERRUPT_FLAG } from './load-rewrite.ts'
import { interruptFlag } from './interrupt.ts'

/** An Espruino event emitter of the context's realm (`on`/`emit`/`removeListener`). */
export type JsEmitter = Record<string, unknown> & { emit(ev: string, ...a: unknown[]): boolean }

/** The context's own constructors, kept by the prelude before it removed anything. */
export interface Intrinsics {
  Object: ObjectConstructor
  Array: ArrayConstructor
  Error: ErrorConstructor
  JSON: JSON
  ArrayBuffer: ArrayBufferConstructor
  Uint8Array: Uint8ArrayConstructor
  Promise: PromiseConstructor
  Date: DateConstructor
  Function: FunctionConstructor
  Emitter: new () => JsEmitter
  Pin: new (n: number) => object
  eval: (code: string) => unknown
}

/** What the interpreter calls on the host (the prelude's `h`): the JsVar account and the board's wall clock. */
export interface SandboxHooks {
  /** A typed array or ArrayBuffer of `bytes` is about to be allocated (throws when it cannot fit). */
  alloc(bytes: number): void
  /** A typed array or ArrayBuffer was allocated. */
  track(o: object): void
  /** An array grew past a multiple of 64 elements. */
  grow(a: unknown[]): void
  /** `eval` is about to run `code` (it keeps its functions' text). */
  evaluated(code: string): void
  wallMs(): number
  /** A call that creates functions opened a scope (load-rewrite.ts): returns its token. */
  scope(k: number, read: (i: number) => unknown, names: string): object
  /**
   * Rewrites code after the board's own rewrite (load-rewrite.ts), before it runs (uploads,
   * boot files, REPL lines, `eval`): the cost instrumentation when the board charges time.
   * Memory estimates see the text before it.
   */
  transform?(code: string): string
}

/** Calls a firmware callback on a fresh stack; one compiled script serves every context. */
const dispatchScript = new vm.Script('__cb.apply(__this, __args)', { filename: 'dispatch' })

export class Sandbox {
  readonly ctx: vm.Context
  /** The context's global object. */
  readonly G: Record<string, unknown>
  readonly C: Intrinsics
  /** The interpreter's own objects: never charged to the program (filled by seal()). */
  readonly builtins = new Set<unknown>()

  constructor(name: string, private readonly hooks: SandboxHooks) {
    this.ctx = vm.createContext({}, { name, microtaskMode: 'afterEvaluate', codeGeneration: { strings: true, wasm: false } })
    this.G = vm.runInContext('globalThis', this.ctx) as Record<string, unknown>
    this.C = (vm.runInContext(PRELUDE, this.ctx) as (h: SandboxHooks) => Intrinsics)(hooks)
    // What rewritten code calls (load-rewrite.ts): the scope hook and the interrupt flag.
    Object.defineProperty(this.G, SCOPE_HOOK, { value: (k: number, read: (i: number) => unknown, names: string) => hooks.scope(k, read, names) })
    Object.defineProperty(this.G, INTERRUPT_FLAG, { value: interruptFlag })
  }

  /** Once the Espruino globals are installed: everything reachable from the global object now belongs to the interpreter. */
  seal(): void {
    for (const k of Object.getOwnPropertyNames(this.G)) {
      const v = this.G[k]
      if (v && (typeof v === 'object' || typeof v === 'function')) {
        this.builtins.add(v)
        if (typeof v === 'function' && (v as { prototype?: unknown }).prototype) this.builtins.add((v as { prototype: unknown }).prototype)
      }
    }
    this.builtins.add(this.C.Emitter.prototype)
  }

  /** Defines a built-in global function (non-enumerable, as Espruino's natives are). */
  def(name: string, fn: (...a: any[]) => unknown): void {
    Object.defineProperty(this.G, name, { value: fn, writable: true, configurable: true, enumerable: false })
  }

  /** Runs program text at the top level (an upload, a REPL line, a boot file), rewritten for the board (load-rewrite.ts). */
  run(code: string, label: string, timeoutMs: number): unknown {
    return new vm.Script(this.prepare(code), { filename: label }).runInContext(this.ctx, { timeout: timeoutMs })
  }

  /** Calls `fn` with `thisArg` and `args` inside the context; a timeout interrupts it. */
  call(fn: unknown, args: unknown[], thisArg: unknown, timeoutMs: number | undefined): void {
    const g = this.G
    g.__cb = fn
    g.__this = thisArg
    g.__args = args
    try {
      // A vm timeout starts a watchdog thread per call (~100 us): only when asked for.
      if (timeoutMs) dispatchScript.runInContext(this.ctx, { timeout: timeoutMs })
      else dispatchScript.runInContext(this.ctx)
    } finally {
      g.__cb = g.__this = g.__args = undefined
    }
  }

  /** `eval` from the firmware: the syntax gate refuses it as it refuses an upload, and its code costs JsVars. */
  evalGated(code: string): unknown {
    this.rethrow(() => assertEspruinoCompat(code))
    this.hooks.evaluated(code)
    return this.C.eval(this.prepare(code))
  }

  /** The board's rewrite (interrupts, scope tokens), then the cost instrumentation if any. */
  private prepare(code: string): string {
    const rewritten = rewriteForBoard(code).code
    return this.hooks.transform ? this.hooks.transform(rewritten) : rewritten  }

  /**
   * JsVars the program holds in globals (the interpreter's own are free; `__` names are the
   * dispatch slots). The program's globals are enumerable (`var`, function declarations,
   * assignments); the interpreter's are not, apart from a few that are built-ins by value.
   * Read from the contextified object, which mirrors the context's global without the cost
   * of its interceptors.
   */
  globalVars(c: VarCounter): number {
    let n = 0
    const g = this.ctx as Record<string, unknown>
    for (const k of Object.keys(g)) {
      if (k.startsWith('__')) continue
      const d = Object.getOwnPropertyDescriptor(g, k)
      if (!d || !('value' in d) || this.builtins.has(d.value)) continue
      n += c.slot(k, d.value)
    }
    return n
  }

  /** Runs `fn`, turning a host error into an Error of the context (one the firmware can catch and inspect). */
  rethrow<T>(fn: () => T): T {
    try {
      return fn()
    } catch (e) {
      throw new this.C.Error((e as Error).message)
    }
  }

  ownsPromise(p: unknown): boolean {
    return p instanceof this.C.Promise
  }

  error(message: string): Error {
    return new this.C.Error(message)
  }

  object(props: Record<string, unknown>): Record<string, unknown> {
    return Object.assign(new this.C.Object(), props) as Record<string, unknown>
  }

  emitter(): JsEmitter {
    return new this.C.Emitter()
  }

  /** A JSON-able host value (strings, arrays of them) copied into the context. */
  copy(v: unknown): unknown {
    return this.C.JSON.parse(JSON.stringify(v))
  }

  uint8Array(bytes: ArrayLike<number>): Uint8Array {
    const u = new this.C.Uint8Array(bytes.length)
    u.set(bytes)
    return u
  }

  arrayBuffer(bytes: ArrayLike<number>): ArrayBuffer {
    const out = new this.C.ArrayBuffer(bytes.length)
    new this.C.Uint8Array(out).set(bytes)
    return out
  }
}
