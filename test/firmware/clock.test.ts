/**
 * The firmware's wall clock (firmware/clock.ts): stamps follow the gateway's time, never go
 * backwards, and a sync that moves the clock back is slewed, not clamped.
 */
import t from 'tap'
import { Clock } from '../../firmware/clock.ts'

const EPOCH = 1_765_000_000_000

t.test('stamps are board time plus the synced offset', async (t) => {
  let now = 5_000
  const c = new Clock(() => now)
  c.sync(EPOCH, 40, now)
  t.equal(c.stamp(5_000), EPOCH + 20)
  t.equal(c.stamp(7_000), EPOCH + 2_020)
  now = 9_000
  t.equal(c.now(), EPOCH + 4_020)
})

t.test('a sync forward moves the stamps forward at once', async (t) => {
  const c = new Clock(() => 0)
  c.sync(EPOCH, 0, 0)
  t.equal(c.stamp(0), EPOCH)
  c.sync(EPOCH + 12_000, 0, 2_000)
  t.equal(c.stamp(2_000), EPOCH + 12_000)
})

t.test('a sync back: stamps keep about their spacing (9/10) until the clock catches up, never backwards', async (t) => {
  const c = new Clock(() => 0)
  c.sync(EPOCH, 0, 0)
  const stamps = [c.stamp(0), c.stamp(2_000)]
  // The gateway says the board's clock is 3 s fast.
  c.sync(EPOCH + 4_000 - 3_000, 0, 4_000)
  for (let b = 4_000; b <= 70_000; b += 2_000) stamps.push(c.stamp(b))
  const steps = stamps.slice(1).map((s, i) => s - stamps[i]!)
  t.ok(steps.every((d) => d >= 1_800 && d <= 2_000), `each 2 s window 1.8-2 s after the last: ${steps.join(' ')}`)
  t.equal(stamps.at(-1), EPOCH + 70_000 - 3_000, 'caught up with the synced time')
  t.ok(steps.filter((d) => d === 1_800).length >= 14, 'the 3 s correction taken 200 ms a window')
})

t.test('stamps of the same board ms are still strictly increasing', async (t) => {
  const c = new Clock(() => 0)
  c.sync(EPOCH, 0, 0)
  const a = c.stamp(100)
  const b = c.stamp(100)
  t.ok(b > a)
})
