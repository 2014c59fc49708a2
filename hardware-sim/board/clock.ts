/**
 * The board's virtual clock: virtual time, the wall clock the firmware
 * reads, the timers it sets, and the one loop that moves time and fires
 * them. `advance` steps deterministically; `run` follows real time scaled
 * by a speed factor and lets real I/O in between steps. Virtual time does
 * not move during a callback.
 */
import { TimerQueue, isHostTimer, type Timer } from './timers.ts'
import { BoardError } from './errors.ts'
import type { Sandbox } from './sandbox.ts'
import type { VarCounter } from './memory.ts'

/** Where fired timers go (dispatch.ts): every one is a callback of its own. */
export interface TimerSink {
  /** Runs the work real I/O queued (it happens at the current virtual time). */
  drainIo(): void
  runHost(fn: () => void): void
  /** A firmware timer: its function, or its code string to evaluate. False when it was interrupted (an interval is then removed). */
  runTimer(fn: unknown, args: unknown[], interval: boolean): boolean
}

/** What `run` needs besides the timers. */
export interface RunHost {
  /** The board is out of memory and a V8 collection is due before the next step. */
  collectDue(): boolean
  collect(): Promise<unknown>
  /** Real I/O is in flight: time must not jump ahead of it. */
  ioBusy(): boolean
}

export class VirtualClock {
  /** Virtual ms since power-on of this VirtualBoard (monotonic across reboots). */
  private nowMs = 0
  /** Wall clock = nowMs + wallOffset (setTime, clockSkew). */
  private wallOffset: number
  private timers = new TimerQueue()
  private running = false
  private wake: (() => void) | null = null

  constructor(wallStartMs: number, private readonly sink: TimerSink) {
    this.wallOffset = wallStartMs
  }

  get now(): number {
    return this.nowMs
  }

  get wallMs(): number {
    return this.nowMs + this.wallOffset
  }

  /** Shifts the wall clock by `ms` (timers are not affected). */
  skew(ms: number): void {
    this.wallOffset += ms
  }

  /** A host-side timer on the virtual clock (not visible to the firmware). */
  hostTimer(ms: number, fn: () => void): number {
    return this.timers.add({ host: fn }, [], this.nowMs + Math.max(0, ms), 0)
  }

  cancelHostTimer(id: number): void {
    this.timers.remove(id)
  }

  /** A fresh interpreter, or the board closing: every timer goes. */
  clearTimers(): void {
    this.timers.clear()
  }

  /** JsVars the timers hold (their functions and arguments). */
  vars(c: VarCounter): number {
    let n = 0
    for (const t of this.timers.all()) n += 3 + c.value(t.fn) + t.args.reduce<number>((s, a) => s + c.value(a), 0)
    return n
  }

  /** The one place timers fire: in order, each at its time, with the I/O that arrived run in between. */
  advanceTo(target: number): void {
    this.sink.drainIo()
    for (;;) {
      const t = this.timers.popDue(target)
      if (!t) break
      if (t.when > this.nowMs) this.nowMs = t.when
      this.fire(t)
      this.sink.drainIo()
    }
    if (target > this.nowMs) this.nowMs = target
  }

  private fire(t: Timer): void {
    if (isHostTimer(t)) return this.sink.runHost(t.fn.host)
    if (t.interval > 0) this.timers.reschedule(t)
    if (!this.sink.runTimer(t.fn, t.args, t.interval > 0) && t.interval > 0) this.timers.remove(t.id)
  }

  /**
   * The interpreter was blocked for `ms` inside a callback (a native call that waits, such as
   * a TCP connect): virtual time moves on at once, as getTime() would show on the board.
   * Timers that came due meanwhile fire late, after the callback, as on a polled loop.
   */
  charge(ms: number): void {
    if (ms > 0 && Number.isFinite(ms)) this.nowMs += ms
  }

  /**
   * Runs continuously until stop(): `speed` virtual seconds per real second;
   * Infinity jumps straight to the next timer while no socket I/O is in flight.
   */
  async run(opts: { speed?: number; until?: number }, host: RunHost): Promise<void> {
    const speed = opts.speed ?? 1
    if (!(speed > 0)) throw new RangeError(`expected speed > 0, got ${speed}`)
    if (this.running) throw new BoardError('board is already running')
    this.running = true
    let realStart = performance.now()
    let virtStart = this.nowMs
    try {
      while (this.running) {
        if (host.collectDue()) await host.collect()
        this.sink.drainIo()
        if (opts.until !== undefined && this.nowMs >= opts.until) break
        const ioBusy = host.ioBusy()
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

  /** Ends run() (the board keeps its state). */
  stop(): void {
    this.running = false
    this.wake?.()
  }

  /** Work arrived from real I/O: a run() waiting for its next step takes it now. */
  nudge(): void {
    this.wake?.()
  }

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

  /** The firmware's timers and clock: setTimeout/setInterval/clear*, changeInterval, getTime/setTime. */
  install(sb: Sandbox): void {
    const C = sb.C
    const addTimer = (fn: unknown, ms: unknown, args: unknown[], repeat: boolean): number => {
      if (typeof fn !== 'function' && typeof fn !== 'string') throw new C.Error(`Function or String not supplied!`)
      let d = Number(ms)
      if (!Number.isFinite(d) || d < 0) d = 0
      // Espruino's minimum interval is well under 1 ms; 0-period intervals would spin: clamp to 0.01 ms.
      if (repeat && d < 0.01) d = 0.01
      return this.timers.add(fn, args, this.nowMs + d, repeat ? d : 0)
    }
    sb.def('setTimeout', (fn: unknown, ms: unknown, ...args: unknown[]) => addTimer(fn, ms, args, false))
    sb.def('setInterval', (fn: unknown, ms: unknown, ...args: unknown[]) => addTimer(fn, ms, args, true))
    const clear = (id?: unknown): void => {
      if (id === undefined) {
        for (const t of [...this.timers.all()]) if (!isHostTimer(t)) this.timers.remove(t.id)
        return
      }
      const t = this.timers.get(Number(id))
      if (t && !isHostTimer(t)) this.timers.remove(t.id)
    }
    sb.def('clearTimeout', clear)
    sb.def('clearInterval', clear)
    sb.def('changeInterval', (id: unknown, ms: unknown) => {
      const t = this.timers.get(Number(id))
      if (!t || !(Number(ms) > 0)) return
      t.interval = Number(ms)
    })
    sb.def('getTime', () => this.wallMs / 1000)
    sb.def('setTime', (s: unknown) => {
      this.wallOffset = Number(s) * 1000 - this.nowMs
    })
  }
}
