/**
 * Delivery policy between the frame pipeline, the MQTT client and the flash ring:
 * - online with room in the window: a live frame is published at once and kept in RAM
 *   until its PUBACK;
 * - backlog (the flash ring) is sent oldest first in the remaining window slots, one slot
 *   always kept for live frames so a long backlog never starves them;
 * - offline, or window full: the frame goes to flash;
 * - link lost: unacknowledged live frames move to flash and the backlog is resent from flash
 *   (RAM does not survive a reboot; flash does). A ring entry is removed only on PUBACK.
 * - held (the power-saving profile): every frame goes to flash and the ring is sent in one
 *   batch when flush() is called, so the radio wakes once per batch instead of once a frame.
 */
import type { FlashRing } from './store.ts'

/** Streaming: ms between backlog frames (a drain period and a bit: one per sensor drain at most). */
export const PACE_MS = 250

export interface Publisher {
  connected: boolean
  publish(topic: string, payload: string): number
  forget(id: number): void
}

interface Pending {
  slot: number
  data: string
}

export class Uplink {
  mq: Publisher
  ring: FlashRing
  topic: string
  window: number
  inflight: { [pid: string]: Pending }
  n: number
  stats: { live: number; backlog: number; stored: number; acked: number; flushes: number }
  /** Frames wait in flash until flush() (power-saving profile). */
  hold: boolean
  /** A flush is sending the ring; it ends when the ring has nothing left to send. */
  flushing: boolean
  /** Board time before which no backlog frame goes out (streaming). */
  nextAt: number

  constructor(mq: Publisher, ring: FlashRing, topic: string, window: number) {
    this.mq = mq
    this.ring = ring
    this.topic = topic
    this.window = window < 2 ? 2 : window
    this.inflight = {}
    this.n = 0
    this.stats = { live: 0, backlog: 0, stored: 0, acked: 0, flushes: 0 }
    this.hold = false
    this.flushing = false
    this.nextAt = 0
  }

  submit(frame: string): void {
    if (!this.hold && this.mq.connected && this.n < this.window) {
      const pid = this.mq.publish(this.topic, frame)
      this.inflight[pid] = { slot: -1, data: frame }
      this.n++
      this.stats.live++
      this.pump()
    } else {
      this.ring.push(frame)
      this.stats.stored++
    }
  }

  /**
   * Backlog into free window slots, leaving one for the next live frame (held: only while
   * flushing, all slots, at once). Streaming, at most one backlog frame per PACE_MS: each
   * costs about 36 ms of an ESP32 at the high cost with its PUBACK (ring, packet, publish), so
   * flushing a backlog as fast as PUBACKs come back kept the core busy and the sensors' drain
   * late past the FIFO's slack; paced, a minute of outage is sent again in about 15 s.
   */
  pump(): void {
    if (this.hold && !this.flushing) return
    const keep = this.hold ? 0 : 1
    const self = this
    if (this.mq.connected && this.n < this.window - keep && (this.hold || Date.now() >= this.nextAt)) {
      const slot = this.ring.next()
      if (slot < 0) {
        this.flushing = false
        return
      }
      const pid = this.mq.publish(this.topic, this.ring.read(slot))
      this.inflight[pid] = { slot: slot, data: '' }
      this.n++
      this.stats.backlog++
      // The timer checks again at PACE_MS, when the pace (50 ms shorter) has surely passed:
      // one that fired a little early by Date.now() would otherwise end the chain, which
      // nothing else restarts while no PUBACK is awaited.
      this.nextAt = Date.now() + PACE_MS - 50
      setTimeout(function () { self.pump() }, this.hold ? 0 : PACE_MS)
    }
  }

  /** Held profile: send everything in the ring now (what does not fit the window follows on PUBACKs). */
  flush(): void {
    this.stats.flushes++
    this.flushing = true
    this.pump()
  }

  onAck(pid: number): void {
    const e = this.inflight[pid]
    if (!e) return
    if (e.slot >= 0) this.ring.ack(e.slot)
    delete this.inflight[pid]
    this.n--
    this.stats.acked++
    this.pump()
  }

  onConnect(): void {
    this.pump()
  }

  onClose(): void {
    const pids = Object.keys(this.inflight)
    for (let i = 0; i < pids.length; i++) {
      const e = this.inflight[pids[i]]
      if (e.slot < 0) {
        this.ring.push(e.data)
        this.stats.stored++
      }
      this.mq.forget(Number(pids[i]))
    }
    this.inflight = {}
    this.n = 0
    this.ring.unsend()
  }
}
