/**
 * Token bucket per device. `reserve()` answers how long the caller must wait
 * before its frame may proceed; the ingest step sleeps that long, which holds the
 * client's socket unread (Aedes reads the next chunk only when the current one is
 * handled): a flood stays in kernel buffers, bounded, and other clients keep going.
 */
export class TokenBucket {
  private tokens: number
  private last: number
  constructor(readonly ratePerSec: number, readonly burst: number, now: number) {
    this.tokens = burst
    this.last = now
  }
  /** Takes one token (possibly going into debt); returns the wait in ms before it is covered. */
  reserve(now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSec)
    this.last = now
    this.tokens -= 1
    return this.tokens >= 0 ? 0 : (-this.tokens / this.ratePerSec) * 1000
  }
  /** Gives back a token reserved for a frame that was then refused without waiting. */
  refund(): void {
    this.tokens = Math.min(this.burst, this.tokens + 1)
  }
}
