/**
 * The board's timer queue. Timers fire in virtual-time order (ties in
 * creation order); clock.ts decides how fast virtual time moves and fires
 * them.
 */

export interface Timer {
  id: number
  /** Virtual ms when it fires next. */
  when: number
  /** Repeat period in ms, or 0 for a one-shot. */
  interval: number
  /** The firmware's function or code string, or `{ host }` for a host timer (see isHostTimer). */
  fn: unknown
  args: unknown[]
  /** Tie-breaker: creation order. */
  seq: number
}

/** A host-side timer (network.ts's association delays, ...): invisible to the firmware's clearTimeout. */
export type HostTimer = Timer & { fn: { host: () => void } }

export function isHostTimer(t: Timer): t is HostTimer {
  // Firmware timers hold a function or a code string, never an object.
  return typeof t.fn === 'object' && t.fn !== null
}

/** A binary min-heap on (when, seq); cancelled timers are dropped lazily. */
export class TimerQueue {
  private heap: Timer[] = []
  private live = new Map<number, Timer>()
  private nextId = 1
  private nextSeq = 0

  get size(): number {
    return this.live.size
  }

  add(fn: unknown, args: unknown[], when: number, interval: number): number {
    const t: Timer = { id: this.nextId++, when, interval, fn, args, seq: this.nextSeq++ }
    this.live.set(t.id, t)
    this.push(t)
    return t.id
  }

  /** Re-queue a repeating timer after it fired. */
  reschedule(t: Timer): void {
    if (!this.live.has(t.id)) return
    t.when += t.interval
    t.seq = this.nextSeq++
    this.push(t)
  }

  remove(id: number): boolean {
    return this.live.delete(id)
  }

  clear(): void {
    this.live.clear()
    this.heap = []
  }

  has(id: number): boolean {
    return this.live.has(id)
  }

  /** Every live timer (for the memory estimator and for `changeInterval`). */
  all(): IterableIterator<Timer> {
    return this.live.values()
  }

  get(id: number): Timer | undefined {
    return this.live.get(id)
  }

  /** Virtual time of the earliest live timer, or Infinity. */
  peekTime(): number {
    this.dropDead()
    return this.heap.length ? this.heap[0].when : Infinity
  }

  /** Removes and returns the earliest timer due at or before `now`. One-shots leave `live`. */
  popDue(now: number): Timer | undefined {
    this.dropDead()
    const top = this.heap[0]
    if (!top || top.when > now) return undefined
    this.popTop()
    if (top.interval === 0) this.live.delete(top.id)
    return top
  }

  private dropDead(): void {
    while (this.heap.length && this.live.get(this.heap[0].id) !== this.heap[0]) this.popTop()
  }

  private less(a: Timer, b: Timer): boolean {
    return a.when < b.when || (a.when === b.when && a.seq < b.seq)
  }

  private push(t: Timer): void {
    const h = this.heap
    h.push(t)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.less(h[i], h[p])) break
      ;[h[i], h[p]] = [h[p], h[i]]
      i = p
    }
  }

  private popTop(): void {
    const h = this.heap
    const last = h.pop()!
    if (h.length === 0) return
    h[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < h.length && this.less(h[l], h[m])) m = l
      if (r < h.length && this.less(h[r], h[m])) m = r
      if (m === i) break
      ;[h[i], h[m]] = [h[m], h[i]]
      i = m
    }
  }
}
