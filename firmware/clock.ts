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
  /** Board time of the last stamp. */
  lastBoard: number
  syncs: number
  /** True once the offset comes from a sync or an assumed time (the clock reads as epoch ms). */
  anchored: boolean

  constructor(boardMs: () => number) {
    this.boardMs = boardMs
    this.offset = 0
    this.synced = false
    this.last = -1
    this.lastBoard = 0
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

  /**
   * Epoch ms for a board time, monotonic across calls. A sync that moved the clock back is
   * taken up gradually, as NTP slews: stamps advance at 9/10 of the board's pace until the
   * clock catches them up, so a 2 s window is still stamped about 2 s after the one before
   * (clamping to last + 1 would stamp every window of the correction 1 ms apart).
   */
  stamp(boardMs: number): number {
    let t = Math.floor(boardMs + this.offset)
    const min = this.last + Math.max(1, Math.floor((boardMs - this.lastBoard) * 0.9))
    if (this.last >= 0 && t < min) t = min
    this.last = t
    this.lastBoard = boardMs
    return t
  }

  now(): number {
    return Math.floor(this.boardMs() + this.offset)
  }
}
