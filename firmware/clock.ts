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
  /** True once the offset comes from a sync or an assumed time (the clock reads as epoch ms). */
  anchored: boolean

  constructor(boardMs: () => number) {
    this.boardMs = boardMs
    this.offset = 0
    this.synced = false
    this.last = -1
    this.syncs = 0
    this.anchored = false
  }

  /** The gateway said `serverMs`; the exchange took `rttMs` (half of it assumed each way). */
  sync(serverMs: number, rttMs: number, atBoardMs: number): void {
    if (!(serverMs > 0)) return
    this.offset = serverMs + rttMs / 2 - atBoardMs
    this.synced = true
    this.anchored = true
    this.syncs++
  }

  /**
   * Before any sync: start from a time known to have passed (the last time written to flash,
   * or the provisioning time). Frames stay flagged as not synced; a real sync replaces it.
   */
  assume(epochMs: number, atBoardMs: number): void {
    if (this.synced || !(epochMs > 0)) return
    this.offset = epochMs - atBoardMs
    this.anchored = true
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
