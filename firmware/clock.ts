/**
 * Wall-clock time for frames: board time (monotonic ms since boot) plus an offset learned
 * from the gateway (GET /api/time before CONNECT, then {"t":"time"} control messages).
 * The board clock itself is never set (setTime would make timers and keep-alive jump).
 * Stamps handed out never go backwards, even when a later sync moves the offset back.
 */
export class Clock {
  boardMs: () => number
  offset: number
  synced: boolean
  last: number
  syncs: number

  constructor(boardMs: () => number) {
    this.boardMs = boardMs
    this.offset = 0
    this.synced = false
    this.last = -1
    this.syncs = 0
  }

  /** The gateway said `serverMs`; the exchange took `rttMs` (half of it assumed each way). */
  sync(serverMs: number, rttMs: number, atBoardMs: number): void {
    if (!(serverMs > 0)) return
    this.offset = serverMs + rttMs / 2 - atBoardMs
    this.synced = true
    this.syncs++
  }

  /** Epoch ms for a board time, monotonic across calls. */
  stamp(boardMs: number): number {
    let t = Math.floor(boardMs + this.offset)
    if (t <= this.last) t = this.last + 1
    this.last = t
    return t
  }

  now(): number {
    return Math.floor(this.boardMs() + this.offset)
  }
}
