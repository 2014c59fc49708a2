/**
 * The callback-dispatch path: every piece of firmware code the board runs
 * (an upload, a timer, an event, a socket's data, work queued by real I/O)
 * goes through here, one callback at a time like Espruino's idle loop, with
 * Espruino's error handling (uncaught errors print, the board keeps
 * running) and the JsVar checks before and after.
 */
import { BrownOut } from './storage.ts'
import { Interrupt } from './errors.ts'
import { OUT_OF_MEMORY, interruptFlag, wasInterrupted } from './interrupt.ts'
import { formatValue } from './format.ts'
import type { BoardConsole } from './board-console.ts'
import type { MemoryAccount } from './memory-account.ts'
import type { Sandbox } from './sandbox.ts'

/** What the dispatcher needs from its board. */
export interface DispatchHost {
  readonly id: string
  readonly console: BoardConsole
  readonly memory: MemoryAccount
  /** The current interpreter. */
  sandbox(): Sandbox
  /** Interrupt a callback after this many real ms (off when undefined or 0). */
  readonly callbackTimeoutMs: number | undefined
  /** Work was queued by real I/O (run() should wake for it). */
  ioQueued(): void
  /** Power-cycles the board (after a brown-out or E.reboot()). */
  reboot(): void
  /** Charges each callback the ESP32 time it costs (hardware-sim/cost/board-cost.ts); null when the board does not charge time. */
  readonly meter?: CallbackMeter | null
}

/** Brackets every callback the board runs (REPL lines excepted) when the board charges time. */
export interface CallbackMeter {
  begin(name: string): void
  end(): void
}

/** Espruino's interpreter error flags (src/jsutils.h JsErrorFlags), in the order E.getErrorFlags() lists them. */
const ERROR_FLAGS = ['FIFO_FULL', 'BUFFER_FULL', 'CALLBACK', 'LOW_MEMORY', 'MEMORY', 'MEMORY_BUSY', 'UART_OVERFLOW'] as const
type ErrorFlag = (typeof ERROR_FLAGS)[number]

export class Dispatcher {
  private pendingIo: Array<() => void> = []
  private rebootPending = false
  /** Whether the last run code, or a callback since, threw (the REPL's `=value` is skipped). */
  lastThrew = false
  /** What the idle loop reports once the interrupted code has unwound (jsiCheckErrors). */
  private interruptPending: 'event' | 'code' | null = null
  /** Error flags set since the interpreter started, and those already reported. */
  private errorFlags = new Set<ErrorFlag>()
  private reportedFlags = new Set<ErrorFlag>()
  /** outOfMemoryIn() faults still to fire. */
  private oomTargets: Array<{ match: string; left: number; at: 'alloc' | 'start' }> = []

  constructor(private readonly host: DispatchHost) {}

  /**
   * Runs one firmware callback like Espruino's idle loop does; `name` is what the cost meter
   * reports it under; `subject` what an outOfMemoryIn() fault matches (an event's listeners).
   */
  invoke(fn: unknown, args: unknown[], thisArg?: unknown, name?: string, subject: unknown = fn): void {
    if (typeof fn !== 'function') return
    if (!this.host.memory.mayRun()) return
    this.call(fn, args, thisArg, name || (fn as { name?: string }).name || 'callback', subject)
    this.afterCallback()
  }

  /**
   * A firmware timer fired: its function, or its code string evaluated; `name` is what the
   * cost meter reports it under. Returns false when it was interrupted: Espruino then removes
   * an interval (src/jsinteractive.c, jsiIdle: "Ctrl-C while processing interval - removing
   * it.", printed for any interrupt).
   */
  runTimer(fn: unknown, args: unknown[], interval = false, name?: string): boolean {
    const [f, a] = typeof fn === 'string' ? [this.host.sandbox().C.eval, [fn]] : [fn, args]
    if (typeof f !== 'function') return true
    if (!this.host.memory.mayRun()) return true
    const ok = this.call(f, a, undefined, name || (f as { name?: string }).name || 'callback')
    if (!ok && interval) {
      this.host.console.write('ERROR: Ctrl-C while processing interval - removing it.')
      this.errorFlags.add('CALLBACK')
    }
    this.afterCallback()
    return ok
  }

  /**
   * Fault: the next `count` callbacks (-1: all from now on) whose function's source contains
   * `match` run out of memory, as one did on the interpreter: at their first allocation the
   * simulator sees (a typed array, a frame-sized string; one that makes none runs to its end),
   * or at `start`, before their first statement. Count 0 clears it.
   */
  outOfMemoryIn(match: string, count: number, at: 'alloc' | 'start'): void {
    this.oomTargets = this.oomTargets.filter((x) => x.match !== match)
    if (count !== 0) this.oomTargets.push({ match, left: count, at })
  }

  /** Whether `fn` is an outOfMemoryIn() target now, and where it runs out. */
  private pinchFor(fn: unknown): 'alloc' | 'start' | null {
    if (this.oomTargets.length === 0) return null
    const src = String(fn)
    const hit = this.oomTargets.find((x) => x.left !== 0 && src.includes(x.match))
    if (!hit) return null
    if (hit.left > 0) hit.left--
    return hit.at
  }

  /** One callback on a fresh stack, metered when the board charges time; false when an out-of-memory interrupt abandoned it. */
  private call(fn: unknown, args: unknown[], thisArg: unknown, name: string, subject: unknown = fn): boolean {
    let interrupted = false
    const meter = this.host.meter
    const pinched = this.pinchFor(subject)
    if (pinched === 'start') {
      // No room for even the call's scope: abandoned before its first statement.
      this.host.memory.outOfMemory()
      this.interrupted('event')
      return false
    }
    if (pinched) this.host.memory.pinch(true)
    meter?.begin(name)
    try {
      this.host.sandbox().call(fn, args, thisArg, this.host.callbackTimeoutMs)
    } catch (e) {
      if (wasInterrupted(e)) interrupted = true
      else this.handleThrow(e)
    } finally {
      meter?.end()
      if (pinched) this.host.memory.pinch(false)
    }
    // A promise reaction may have swallowed the sentinel: the flag still says what happened.
    if (interruptFlag.on) interrupted = true
    interruptFlag.on = false
    if (interrupted) this.interrupted('event')
    return !interrupted
  }

  private interrupted(where: 'event' | 'code'): void {
    this.lastThrew = true
    this.interruptPending = where
    this.errorFlags.add('LOW_MEMORY')
    this.errorFlags.add('MEMORY')
  }

  /** Host work that may call into the firmware (a host timer, queued I/O). */
  runHost(fn: () => void): void {
    fn()
    this.afterCallback()
  }

  /** Program text at the top level: value on success; errors are printed as Espruino does. REPL lines are not metered (see board-cost.ts). */
  runCode(code: string, label: string, timeoutMs: number): unknown {
    let value: unknown
    this.lastThrew = false
    const meter = label === 'repl' ? null : this.host.meter
    meter?.begin(label)
    try {
      value = this.host.sandbox().run(code, label, timeoutMs)
    } catch (e) {
      if (wasInterrupted(e)) this.interrupted('code')
      else this.handleThrow(e)
    } finally {
      meter?.end()
    }
    if (interruptFlag.on) this.interrupted('code')
    interruptFlag.on = false
    this.afterCallback()
    return value
  }

  /** Queues work from real I/O to run inside the board at the current virtual time. */
  queueIo(fn: () => void): void {
    this.pendingIo.push(fn)
    this.host.ioQueued()
  }

  drainIo(): void {
    while (this.pendingIo.length) this.runHost(this.pendingIo.shift()!)
  }

  /**
   * E.getErrorFlags(): the flags set since the last call, which it resets (jswrap_espruino.c),
   * so the idle loop reports a flag that is set again as new.
   */
  takeErrorFlags(): string[] {
    const out = ERROR_FLAGS.filter((f) => this.errorFlags.has(f))
    this.errorFlags.clear()
    this.reportedFlags.clear()
    return out
  }

  /** A fresh interpreter: I/O queued for the old one is dropped, its error flags with it. */
  clearIo(): void {
    this.pendingIo.length = 0
    this.interruptPending = null
    this.errorFlags.clear()
    this.reportedFlags.clear()
  }

  /** Power is gone (a brown-out cut a flash write): the board reboots once the current callback ends. */
  powerLost(): void {
    this.rebootPending = true
  }

  reportUncaught(e: unknown, prefix = 'Uncaught '): void {
    // The interrupt is reported by the idle loop, never as an exception (a promise may have caught it).
    if (e === OUT_OF_MEMORY) return
    if (e && typeof e === 'object' && 'message' in e) {
      const err = e as Error
      this.host.console.write(`${prefix}${err.name ?? 'Error'}: ${err.message}`)
    } else this.host.console.write(`${prefix}${formatValue(e, 1)}`)
  }

  private handleThrow(e: unknown): void {
    this.lastThrew = true
    if (e instanceof BrownOut || e instanceof Interrupt) {
      this.rebootPending = true
      return
    }
    if (e && typeof e === 'object' && (e as { code?: string }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') {
      this.host.console.write('Execution Interrupted')
      return
    }
    this.reportUncaught(e)
  }

  private afterCallback(): void {
    this.checkErrors()
    if (this.rebootPending) {
      this.rebootPending = false
      this.host.console.write(`[${this.host.id}] brown-out: rebooting`)
      this.host.reboot()
      return
    }
    this.host.memory.check()
  }

  /** What jsiCheckErrors prints after the interrupted code: the interruption, then error flags that are new. */
  private checkErrors(): void {
    if (this.interruptPending) {
      this.host.console.write(this.interruptPending === 'event' ? 'Execution Interrupted during event processing.' : 'Execution Interrupted')
      this.interruptPending = null
    }
    if (this.errorFlags.size > this.reportedFlags.size) {
      const fresh = ERROR_FLAGS.filter((f) => this.errorFlags.has(f) && !this.reportedFlags.has(f))
      for (const f of fresh) this.reportedFlags.add(f)
      // E.on('errorFlag', fn) hears them first: how firmware learns it ran out.
      const sb = this.host.sandbox()
      const E = sb.G.E as Record<string, unknown> | undefined
      if (E && typeof E.emit === 'function' && E['#onerrorFlag']) this.invoke(E.emit, ['errorFlag', sb.copy(fresh)], E)
      this.host.console.write(`New interpreter error: ${fresh.join(',')}`)
    }
  }
}

/** The boards of this process whose promises may reject unhandled. */
export interface RejectionOwner {
  ownsPromise(p: unknown): boolean
  reportUncaught(e: unknown, prefix?: string): void
}

/** One promise-rejection hook for the process, dispatching to the board whose realm the promise belongs to. */
const liveBoards = new Set<RejectionOwner>()
let rejectionHookInstalled = false

export function watchRejections(board: RejectionOwner): void {
  if (!rejectionHookInstalled) {
    rejectionHookInstalled = true
    process.on('unhandledRejection', (reason, promise) => {
      for (const b of liveBoards) if (b.ownsPromise(promise)) return b.reportUncaught(reason, 'Uncaught (in promise) ')
      throw reason
    })
  }
  liveBoards.add(board)
}

export function unwatchRejections(board: RejectionOwner): void {
  liveBoards.delete(board)
}
