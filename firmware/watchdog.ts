/**
 * One timer that keeps a board from going silently dead (issue 12): if the sensors produce
 * samples but no frame has been made for `stallWindows` windows, the pipeline is restarted
 * (acquisition stopped, sensors set up again, buffers and jobs forgotten); if `maxRestarts`
 * restarts in a row bring no frame, the board reboots (the flash ring and counters survive in
 * Storage). If the sensors produce nothing for that long, the acquisition is restarted (a
 * sensor may have browned out or lost its configuration) but the board is not rebooted for it:
 * a dead sensor is a hardware fault a reboot does not cure, and the board keeps reporting.
 *
 * Each tick also runs the other checks that need a clock (the MQTT connect deadline, the
 * interpreter's error flags), so one timer serves them all.
 */

export interface WatchdogOptions {
  periodMs: number
  windowMs: number
  /** Windows without a frame (sensors producing) before a restart. */
  stallWindows: number
  /** Restarts without a frame before a reboot. */
  maxRestarts: number
  now: () => number
  /** Frames made so far; samples the sensors produced so far. */
  made: () => number
  produced: () => number
  restart: (why: string) => void
  reboot: (why: string) => void
  /** Run every tick first (connect deadlines, error flags). */
  check: () => void
}

export class Watchdog {
  o: WatchdogOptions
  timer: any
  lastMade: number
  lastProduced: number
  /** Board time of the last frame (or restart) and of the last sample. */
  frameAt: number
  sampleAt: number
  restarts: number
  stats: { restarts: number; idleRestarts: number }

  constructor(o: WatchdogOptions) {
    if (!(o.stallWindows >= 2)) throw new Error('watchdog: stallWindows expected >= 2, got ' + o.stallWindows)
    this.o = o
    this.timer = undefined
    this.lastMade = 0
    this.lastProduced = 0
    this.frameAt = 0
    this.sampleAt = 0
    this.restarts = 0
    this.stats = { restarts: 0, idleRestarts: 0 }
  }

  start(): void {
    const self = this
    const t = this.o.now()
    this.lastMade = this.o.made()
    this.lastProduced = this.o.produced()
    this.frameAt = t
    this.sampleAt = t
    this.timer = setInterval(function () { self.watch() }, this.o.periodMs)
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }

  watch(): void {
    const o = this.o
    const t = o.now()
    try {
      o.check()
    } catch (e) {
      // A check that fails must not stop the watchdog.
    }
    const made = o.made()
    const produced = o.produced()
    if (made !== this.lastMade) {
      this.lastMade = made
      this.frameAt = t
      this.restarts = 0
    }
    if (produced !== this.lastProduced) {
      this.lastProduced = produced
      this.sampleAt = t
    }
    const limit = o.stallWindows * o.windowMs
    if (t - this.frameAt <= limit) return
    if (t - this.sampleAt > limit) {
      // Nothing from the sensors either: set them up again, no reboot.
      const idleS = Math.round((t - this.sampleAt) / 1000)
      this.stats.idleRestarts++
      this.frameAt = t
      this.sampleAt = t
      o.restart('no samples for ' + idleS + ' s')
      return
    }
    if (this.restarts >= o.maxRestarts) {
      o.reboot('no frame after ' + this.restarts + ' pipeline restarts')
      return
    }
    this.restarts++
    this.stats.restarts++
    this.frameAt = t
    o.restart('no frame for ' + Math.round(limit / 1000) + ' s while the sensors produce')
  }

}
