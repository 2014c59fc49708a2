/**
 * One timer that keeps a board from going silently dead (issue 12): if the sensors produce
 * samples but no frame has been made for `stallWindows` windows, the pipeline is restarted
 * (acquisition stopped, sensors set up again, buffers and jobs forgotten); if `maxRestarts`
 * restarts in a row bring no frame, the board reboots (the flash ring and counters survive in
 * Storage). If the sensors produce nothing for that long, the acquisition is restarted (a
 * sensor may have browned out or lost its configuration) but the board is not rebooted for it:
 * a dead sensor is a hardware fault a reboot does not cure, and the board keeps reporting.
 *
 * The acquisition's drain timer is watched on its own: an interval whose callback runs out of
 * memory is removed by the interpreter ("Ctrl-C while processing interval - removing it"), and
 * then nothing drains the sensors. When a drain is overdue past `drainDeadAt`, the
 * acquisition is restarted at once, without waiting out the stall windows, so a board is
 * streaming again within a window or two of the memory coming back.
 *
 * The watchdog's own timer is a timeout it re-arms first thing in each tick, so a tick that
 * runs out of memory later on does not stop it; one that could not even start is re-armed by
 * ensure(), which the acquisition's window callback calls once a window.
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
  /** Board time after which the drain timer counts as stopped (-1: no drain timer is expected). */
  drainDeadAt: () => number
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
  /** When the next tick is due. */
  dueAt: number
  restarts: number
  stats: { restarts: number; idleRestarts: number; timerRestarts: number; rearms: number }

  constructor(o: WatchdogOptions) {
    this.o = o
    this.timer = undefined
    this.lastMade = 0
    this.lastProduced = 0
    this.frameAt = 0
    this.sampleAt = 0
    this.dueAt = 0
    this.restarts = 0
    this.stats = { restarts: 0, idleRestarts: 0, timerRestarts: 0, rearms: 0 }
  }

  start(): void {
    const t = this.o.now()
    this.lastMade = this.o.made()
    this.lastProduced = this.o.produced()
    this.frameAt = t
    this.sampleAt = t
    this.arm()
  }

  arm(): void {
    const self = this
    this.dueAt = this.o.now() + this.o.periodMs
    this.timer = setTimeout(function () {
      const due = self.dueAt
      self.arm()
      self.watch(due)
    }, this.o.periodMs)
  }

  /** Re-arms the watchdog if its tick is overdue by more than a period (its timeout never ran). */
  ensure(): void {
    if (this.timer === undefined || this.o.now() - this.dueAt <= this.o.periodMs) return
    this.stats.rearms++
    clearTimeout(this.timer)
    this.arm()
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }

  /** One tick, which was due at `due`. */
  watch(due: number): void {
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
    // A tick late by L ms means the interpreter was blocked (a TCP connect, a long callback):
    // the drain was held up just as long, so it is allowed L ms more. Measured from when this
    // tick was due, not from the last tick that ran: one that ran out of memory is no delay.
    const late = t - due
    const dead = o.drainDeadAt()
    if (dead >= 0 && t - dead > (late > 0 ? late : 0)) {
      // The drain timer is gone (or a restart was cut short before starting it). Not a
      // stall of the frame path, so it does not count towards a reboot.
      this.stats.timerRestarts++
      this.restart(t, 'drain timer stopped')
      return
    }
    const limit = o.stallWindows * o.windowMs
    if (t - this.frameAt <= limit) return
    if (t - this.sampleAt > limit) {
      // Nothing from the sensors either: set them up again, no reboot.
      const idleS = Math.round((t - this.sampleAt) / 1000)
      this.stats.idleRestarts++
      this.sampleAt = t
      this.restart(t, 'no samples for ' + idleS + ' s')
      return
    }
    if (this.restarts >= o.maxRestarts) {
      o.reboot('no frame after ' + this.restarts + ' pipeline restarts')
      return
    }
    this.restarts++
    this.stats.restarts++
    this.restart(t, 'no frame for ' + Math.round(limit / 1000) + ' s while the sensors produce')
  }

  /** Any restart gives the new acquisition its stall windows to make a frame. */
  restart(t: number, why: string): void {
    this.frameAt = t
    this.o.restart(why)
  }
}
