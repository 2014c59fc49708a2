/**
 * The callback-dispatch path: every piece of firmware code the board runs
 * (an upload, a timer, an event, a socket's data, work queued by real I/O)
 * goes through here, one callback at a time like Espruino's idle loop, with
 * Espruino's error handling (uncaught errors print, the board keeps
 * running) and the JsVar checks before and after.
 */
import { BrownOut } from './storage.ts'
import { Interrupt } from './errors.ts'
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

export class Dispatcher {
  private pendingIo: Array<() => void> = []
  private rebootPending = false
  /** Whether the last run code, or a callback since, threw (the REPL's `=value` is skipped). */
  lastThrew = false

  constructor(private readonly host: DispatchHost) {}

  /** Runs one firmware callback like Espruino's idle loop does; `name` is what the cost meter reports it under. */
  invoke(fn: unknown, args: unknown[], thisArg?: unknown, name?: string): void {
    if (typeof fn !== 'function') return
    if (!this.host.memory.mayRun()) return
    const meter = this.host.meter
    meter?.begin(name || (fn as { name?: string }).name || 'callback')
    try {
      this.host.sandbox().call(fn, args, thisArg, this.host.callbackTimeoutMs)
    } catch (e) {
      this.handleThrow(e)
    } finally {
      meter?.end()
    }
    this.afterCallback()
  }

  /** A firmware timer fired: its function, or its code string evaluated. */
  runTimer(fn: unknown, args: unknown[], name?: string): void {
    if (typeof fn === 'string') this.invoke(this.host.sandbox().C.eval, [fn], undefined, name)
    else this.invoke(fn, args, undefined, name)
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
      this.handleThrow(e)
    } finally {
      meter?.end()
    }
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

  /** A fresh interpreter: I/O queued for the old one is dropped. */
  clearIo(): void {
    this.pendingIo.length = 0
  }

  /** Power is gone (a brown-out cut a flash write): the board reboots once the current callback ends. */
  powerLost(): void {
    this.rebootPending = true
  }

  reportUncaught(e: unknown, prefix = 'Uncaught '): void {
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
    if (this.rebootPending) {
      this.rebootPending = false
      this.host.console.write(`[${this.host.id}] brown-out: rebooting`)
      this.host.reboot()
      return
    }
    this.host.memory.check()
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
