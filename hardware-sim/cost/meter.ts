/**
 * The board's side of the cost model: while a firmware callback runs, the instrumented
 * bundle adds units to a counter object in the board's context (instrument.ts) and the
 * board's host functions add native µs (a bus transfer, a hash, a flash write). The meter
 * turns both into the ESP32 time the callback took, for the board to advance its clock by
 * and to answer getTime() with in the middle of the callback, and keeps totals per callback
 * name for reports.
 *
 * Use from the board (one meter per board context):
 *   const counter = installCounter(ctx)              // after creating the context
 *   const meter = new CostMeter(new CostModel('central'), counter)
 *   meter.begin('timer:tick'); run the callback; meter.native(model.i2cUs(6, 400e3)) from host calls
 *   const us = meter.end()                            // advance virtual time by us
 *   getTime() during the callback: board time at begin + meter.elapsedUs()
 */
import vm from 'node:vm'
import { CostModel } from './model.ts'

/** Global name of the counter object the instrumented code increments. */
export const COUNTER_NAME = '__cost'

/** The object the instrumented code increments: `u` is units so far (it only grows). */
export interface CostCounter {
  u: number
}

/** Creates the counter inside a board context (a context-realm object, so the increments stay fast) and returns it. */
export function installCounter(ctx: vm.Context, name = COUNTER_NAME): CostCounter {
  if (!/^[A-Za-z_$][\w$]*$/.test(name)) throw new TypeError(`expected the counter name to be an identifier, got ${JSON.stringify(name)}`)
  return vm.runInContext(`Object.defineProperty(globalThis, ${JSON.stringify(name)}, { value: { u: 0 }, writable: true, configurable: true, enumerable: false }); globalThis.${name}`, ctx) as CostCounter
}

/** What the callbacks of one name cost, in ESP32 µs. */
export interface CallbackTotals {
  count: number
  sumUs: number
  maxUs: number
  /** Interpreter units (dispatch excluded), summed. */
  units: number
}

interface Open {
  name: string
  u0: number
  nativeUs: number
  /** Units of callbacks that ran (and were charged) inside this one. */
  childUnits: number
  childNativeUs: number
}

/** Native charges made while no callback is open (uploads, REPL) are kept under this name. */
export const OUTSIDE = '(outside callbacks)'

export class CostMeter {
  private stack: Open[] = []
  private sums = new Map<string, CallbackTotals>()

  constructor(
    readonly model: CostModel,
    private counter: CostCounter,
  ) {
    if (!counter || typeof counter.u !== 'number') throw new TypeError(`expected a counter object with a numeric u, got ${JSON.stringify(counter)}`)
  }

  /** True while a callback is being charged. */
  get open(): boolean {
    return this.stack.length > 0
  }

  /** Callbacks open now (1 = one callback, more when the host ran one inside another). */
  get depth(): number {
    return this.stack.length
  }

  /**
   * Counts from another counter from now on (a board's fresh interpreter has a counter of its
   * own). Totals are kept; callbacks still open keep the units they had counted.
   */
  attach(counter: CostCounter): void {
    if (!counter || typeof counter.u !== 'number') throw new TypeError(`expected a counter object with a numeric u, got ${JSON.stringify(counter)}`)
    for (const e of this.stack) e.u0 = counter.u - (this.counter.u - e.u0)
    this.counter = counter
  }

  /**
   * Starts charging a callback: the idle loop's dispatch cost, then whatever it runs. A
   * callback begun inside another (the host ran one synchronously) is charged on its own
   * and left out of the outer one.
   */
  begin(name: string): void {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError(`expected a callback name, got ${JSON.stringify(name)}`)
    this.stack.push({ name, u0: this.counter.u, nativeUs: this.model.dispatchUs(), childUnits: 0, childNativeUs: 0 })
  }

  /** Adds native time (µs) to the open callback. */
  native(us: number): void {
    if (!(us >= 0) || !Number.isFinite(us)) throw new RangeError(`expected native µs >= 0, got ${us}`)
    const top = this.stack[this.stack.length - 1]
    if (top) top.nativeUs += us
    else this.record(OUTSIDE, us, 0)
  }

  /** ESP32 µs since the outermost open callback began (what getTime() adds during it); 0 when none is open. */
  elapsedUs(): number {
    if (this.stack.length === 0) return 0
    let native = 0
    for (const e of this.stack) native += e.nativeUs + e.childNativeUs
    return (this.counter.u - this.stack[0]!.u0) * this.model.usPerUnit + native
  }

  /** Ends the innermost open callback; returns the µs it cost (nested callbacks excluded) and records it. */
  end(): number {
    const e = this.stack.pop()
    if (!e) throw new Error('CostMeter.end(): no callback is open')
    const all = this.counter.u - e.u0
    const units = all - e.childUnits
    const us = units * this.model.usPerUnit + e.nativeUs
    this.record(e.name, us, units)
    const parent = this.stack[this.stack.length - 1]
    if (parent) {
      parent.childUnits += all
      parent.childNativeUs += e.nativeUs + e.childNativeUs
    }
    return us
  }

  /** Totals per callback name. */
  totals(): Record<string, CallbackTotals> {
    return Object.fromEntries([...this.sums].map(([k, v]) => [k, { ...v }]))
  }

  /** Totals, dearest first, with the mean. */
  report(): Array<CallbackTotals & { name: string; meanUs: number }> {
    return [...this.sums].map(([name, v]) => ({ name, ...v, meanUs: v.sumUs / v.count })).sort((a, b) => b.sumUs - a.sumUs)
  }

  /** Forgets the totals (not the open callbacks). */
  resetTotals(): void {
    this.sums.clear()
  }

  private record(name: string, us: number, units: number): void {
    const t = this.sums.get(name)
    if (!t) this.sums.set(name, { count: 1, sumUs: us, maxUs: us, units })
    else {
      t.count++
      t.sumUs += us
      t.units += units
      if (us > t.maxUs) t.maxUs = us
    }
  }
}
