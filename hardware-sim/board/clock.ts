/**
 * The board's virtual clock: virtual time, the wall clock the firmware
 * reads, the timers it sets, and the one loop that moves time and fires
 * them. `advance` steps deterministically; `run` follows real time scaled
 * by a speed factor and lets real I/O in between steps.
 *
 * Without a cost model, virtual time does not move during a callback. With
 * one (hardware-sim/cost/board-cost.ts), time is charged the way Espruino
 * spends it on an ESP32 (espruino-facts.md, Timing; src/jsinteractive.c):
 * - a callback takes the ESP32 time it costs: getTime()/Date.now() inside it
 *   read the time it started plus what it has cost so far, a timer set inside
 *   it counts from that moment (jswrap_interactive.c: the timer's time is
 *   `system time - last idle time + interval`), and when it ends the clock
 *   has moved on by its whole cost;
 * - timers are polled, never pre-empted: each pass of the idle loop runs every
 *   timer due at the pass's start once, in order, each starting when the one
 *   before ended; a timer that fell due meanwhile waits for the next pass;
 * - an interval is rescheduled at its own time + interval, so lateness does not
 *   accumulate (unless the callbacks cost more than the interval);
 * - when callbacks run past the time the host asked for, the rest waits for
 *   the next advance: the board is busy until then.
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
  /**
   * A firmware timer: its function, or its code string to evaluate; `name` is what the cost
   * meter reports it under. False when it was interrupted (an interval is then removed).
   */
  runTimer(fn: unknown, args: unknown[], interval: boolean, name?: string): boolean
}

/** The cost model's side of the clock (hardware-sim/cost/board-cost.ts), when the board charges time. */
export interface ClockCost {
  /** Board ms the running callback has cost so far (0 between callbacks). */
  elapsedMs(): number
  /** The name a new timer is reported under. */
  timerName(kind: 'setTimeout' | 'setInterval', fn: unknown): string
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
  /** The furthest virtual time the host asked for (advance, run): with charged time, nowMs may be past it. */
  private horizon = 0
  private timers = new TimerQueue()
  private running = false
  private wake: (() => void) | null = null
  /** Timers of the idle-loop pass under way, popped from the queue and not yet run. */
  private pass: Timer[] | null = null
  /** Timer names for the cost report, by timer id (only with a cost model). */
  private names = new Map<number, string>()

  constructor(wallStartMs: number, private readonly sink: TimerSink, private readonly cost: ClockCost | null = null) {
    this.wallOffset = wallStartMs
  }

  /** Virtual ms now: inside a callback, the time it started plus what it has cost so far. */
  get now(): number {
    return this.cost ? this.nowMs + this.cost.elapsedMs() : this.nowMs
  }

  get wallMs(): number {
    return this.now + this.wallOffset
  }

  /**
   * Board time passed at once: what a callback cost (hardware-sim/cost), or how long the
   * interpreter was blocked inside one (a native call that waits, such as a TCP connect).
   * Timers that came due meanwhile fire late, after the callback, as on a polled loop.
   */
  charge(ms: number): void {
    if (ms > 0 && Number.isFinite(ms)) this.nowMs += ms
  }

  /** Steps virtual time by `ms` from where the host last took it (charged time past that counts as passed). */
  advance(ms: number): void {
    this.advanceTo(this.horizon + ms)
  }

  /** Shifts the wall clock by `ms` (timers are not affected). */
  skew(ms: number): void {
    this.wallOffset += ms
  }

  /** A host-side timer on the virtual clock (not visible to the firmware). */
  hostTimer(ms: number, fn: () => void): number {
    return this.timers.add({ host: fn }, [], this.now + Math.max(0, ms), 0)
  }

  cancelHostTimer(id: number): void {
    this.cancel(id)
  }

  /** A fresh interpreter, or the board closing: every timer goes. */
  clearTimers(): void {
    this.timers.clear()
    this.names.clear()
    if (this.pass) this.pass.length = 0
  }

  /** JsVars the timers hold (their functions and arguments). */
  vars(c: VarCounter): number {
    let n = 0
    for (const t of this.timers.all()) n += 3 + c.value(t.fn) + t.args.reduce<number>((s, a) => s + c.value(a), 0)
    return n
  }

  /**
   * The one place timers fire: passes of the idle loop up to `target`, each running the
   * timers due at its start in order, with the I/O that arrived run in between. Without a
   * cost model every timer runs at its own time; with one, callbacks take time and timers
   * run late (see the top of this file).
   */
  advanceTo(target: number): void {
    if (target > this.horizon) this.horizon = target
    this.sink.drainIo()
    for (;;) {
      // Busy past what the host asked for: the board gets to the rest later.
      if (this.nowMs > target) break
      const next = this.timers.peekTime()
      if (next > target) break
      if (next > this.nowMs) this.nowMs = next
      const due: Timer[] = []
      for (let t = this.timers.popDue(this.nowMs); t; t = this.timers.popDue(this.nowMs)) due.push(t)
      this.pass = due
      try {
        for (let i = 0; i < due.length; i++) {
          const t = due[i]!
          // A callback earlier in this pass may have cleared it (or a reset cleared them all).
          if (t.interval > 0 ? !this.timers.has(t.id) : t.id < 0) continue
          this.fire(t)
          this.sink.drainIo()
        }
      } finally {
        this.pass = null
      }
    }
    if (target > this.nowMs) this.nowMs = target
  }

  private fire(t: Timer): void {
    if (isHostTimer(t)) return this.sink.runHost(t.fn.host)
    const name = this.cost ? this.names.get(t.id) : undefined
    if (t.interval > 0) this.timers.reschedule(t)
    else if (this.cost) this.names.delete(t.id)
    // An interrupted interval is removed, as Espruino's idle loop does.
    if (!this.sink.runTimer(t.fn, t.args, t.interval > 0, name) && t.interval > 0) this.cancel(t.id)
  }

  /** Removes a timer, also one of the pass under way (popped already, not yet run). */
  private cancel(id: number): void {
    this.timers.remove(id)
    this.names.delete(id)
    const p = this.pass?.find((t) => t.id === id)
    // One-shots left the queue when popped: mark the popped copy as gone.
    if (p && p.interval === 0) p.id = -1
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
        // One pass of the idle loop: the I/O that arrived, then every timer already due. Even
        // when the board runs ahead of the real-time pace (its callbacks were charged more than
        // the host spent), due timers run before the next I/O: Espruino checks its timers every
        // pass, so a stream of socket events cannot starve them; only the clock's advance into
        // the future is paced.
        this.advanceTo(this.nowMs)
        if (opts.until !== undefined && this.nowMs >= opts.until) break
        const ioBusy = host.ioBusy()
        const next = this.timers.peekTime()
        if (speed === Infinity && !ioBusy) {
          // Overdue timers (the board ran long) are due now, not in the past.
          const target = Math.min(Math.max(next, this.nowMs), opts.until ?? Infinity)
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
      const id = this.timers.add(fn, args, this.now + d, repeat ? d : 0)
      if (this.cost) this.names.set(id, this.cost.timerName(repeat ? 'setInterval' : 'setTimeout', fn))
      return id
    }
    sb.def('setTimeout', (fn: unknown, ms: unknown, ...args: unknown[]) => addTimer(fn, ms, args, false))
    sb.def('setInterval', (fn: unknown, ms: unknown, ...args: unknown[]) => addTimer(fn, ms, args, true))
    const clear = (id?: unknown): void => {
      if (id === undefined) {
        for (const t of [...this.timers.all()]) if (!isHostTimer(t)) this.cancel(t.id)
        for (const t of this.pass ?? []) if (!isHostTimer(t)) this.cancel(t.id)
        return
      }
      const n = Number(id)
      const t = this.timers.get(n) ?? this.pass?.find((p) => p.id === n)
      if (t && !isHostTimer(t)) this.cancel(t.id)
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
      this.wallOffset = Number(s) * 1000 - this.now
    })
  }
}
