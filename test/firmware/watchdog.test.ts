/**
 * The firmware's watchdog on its own (firmware/watchdog.ts), ticked by hand on a counter clock:
 * what it restarts, when, and what it leaves alone. The end-to-end runs on the virtual board are
 * in faults.test.ts and ../hardware-sim/board/squeeze-firmware.test.ts.
 */
import t from 'tap'
import { Watchdog } from '../../firmware/watchdog.ts'

interface Rig {
  wd: Watchdog
  now: number
  made: number
  produced: number
  /** When the next drain is due (-1: none expected). */
  due: number
  restarts: string[]
  reboots: string[]
  /** One watchdog tick `ms` after the last, the drain (every 180 ms) having run `drains` times meanwhile. */
  tick(ms: number, drains: number): void
}

function rig(opts: { onRestart?: (r: Rig) => void } = {}): Rig {
  const r = {} as Rig
  Object.assign(r, { now: 0, made: 0, produced: 0, due: 180, restarts: [], reboots: [] })
  r.wd = new Watchdog({
    periodMs: 1000, windowMs: 2000, stallWindows: 3, maxRestarts: 3, 
    now: () => r.now, made: () => r.made, produced: () => r.produced, drainDeadAt: () => (r.due < 0 ? -1 : r.due + 540),
    restart: (why) => {
      r.restarts.push(why)
      if (r.due >= 0) r.due = r.now + 180 // a new acquisition: its first drain in a period
      opts.onRestart?.(r)
    },
    reboot: (why) => r.reboots.push(why),
    check: () => {},
  })
  r.tick = (ms, drains) => {
    // The tick was due a period after the last one; it runs `ms` after it (later: the interpreter was busy).
    const due = r.now + 1000
    r.now += ms
    // A drain that ran meanwhile is next due within its period; one that did not stays overdue.
    if (drains > 0 && r.due >= 0) r.due = r.now + 100
    r.wd.watch(due)
  }
  return r
}

/** The board streaming: a frame every second tick, the drain five times a tick. */
function stream(r: Rig, ticks: number): void {
  for (let i = 0; i < ticks; i++) {
    r.produced += 640
    if (i % 2) r.made++
    r.tick(1000, 5)
  }
}

t.test('a drain timer that stops is restarted within two ticks, and that does not lead to a reboot', async (t) => {
  const r = rig()
  stream(r, 4)
  t.same(r.restarts, [])
  // The interpreter removed the interval: nothing drains, nothing is produced.
  r.tick(1000, 0)
  t.same(r.restarts, ['drain timer stopped'], 'noticed at the first tick with no drain')
  for (let k = 0; k < 10; k++) {
    r.tick(1000, 0)
  }
  t.ok(r.restarts.length >= 5, `a timer that keeps failing to start is tried again (${r.restarts.length} restarts)`)
  t.same(r.reboots, [], 'never a reboot for it')
  t.equal(r.wd.stats.timerRestarts, r.restarts.filter((w) => w === 'drain timer stopped').length)
})

t.test('after a restart, the new acquisition gets its stall windows before a stall restart', async (t) => {
  const r = rig()
  stream(r, 2)
  r.produced += 640
  r.tick(1000, 5)
  // The drain stopped right after a tick: the next tick restarts it.
  r.tick(1000, 0)
  t.same(r.restarts, ['drain timer stopped'])
  // The new acquisition drains; its first frame comes a window later.
  for (let k = 0; k < 3; k++) {
    r.produced += 640
    r.tick(1000, 5)
  }
  r.made++
  stream(r, 4)
  t.same(r.restarts, ['drain timer stopped'], 'no stall restart on top of it')
})

t.test('a tick held up by a blocking call gives the drain until the next tick', async (t) => {
  const r = rig()
  stream(r, 3)
  // A TCP connect blocked the interpreter for 4 s. The drain was due 50 ms after the watchdog's
  // tick, so the tick runs first when the interpreter is free again.
  r.due = r.now + 1050
  r.tick(4000, 0)
  t.same(r.restarts, [], 'not restarted for a blocked interpreter')
  r.produced += 640
  r.tick(1000, 5)
  t.same(r.restarts, [])
})

t.test('no drain timer expected (the ECG front end is missing): only the idle restarts retry it', async (t) => {
  const r = rig()
  r.due = -1
  for (let k = 0; k < 12; k++) r.tick(1000, 0)
  t.ok(r.restarts.length >= 1, 'the sensors are tried again')
  t.ok(r.restarts.every((w) => w.startsWith('no samples')), `only idle restarts: ${r.restarts.join('; ')}`)
  t.equal(r.wd.stats.timerRestarts, 0)
})

t.test('frames stop while the sensors produce: restarts, then a reboot', async (t) => {
  const r = rig()
  stream(r, 2)
  for (let k = 0; k < 40 && r.reboots.length === 0; k++) {
    r.produced += 640
    r.tick(1000, 5)
  }
  t.equal(r.restarts.filter((w) => w.startsWith('no frame')).length, 3)
  t.same(r.reboots, ['no frame after 3 pipeline restarts'])
})

t.test('a tick that could not even start (so did not re-arm) is re-armed by ensure()', async (t) => {
  const r = rig()
  r.wd.start()
  t.teardown(() => r.wd.stop())
  r.wd.ensure()
  t.equal(r.wd.stats.rearms, 0, 'on time: left alone')
  // Its timeout ran out of memory before its first statement: nothing ticks, nothing re-arms.
  r.now += 2500
  r.wd.ensure()
  t.equal(r.wd.stats.rearms, 1, 're-armed once overdue by more than a period')
  t.ok(r.wd.timer !== undefined, 'a timer is set')
  r.wd.ensure()
  t.equal(r.wd.stats.rearms, 1, 'and not again right away')
})
