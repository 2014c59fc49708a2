/**
 * The firmware's wall clock (firmware/clock.ts): stamps follow the gateway's time, never go
 * backwards, and a sync that moves the clock back holds them until the clock passes the last.
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

t.test('a sync back: stamps never go backwards (they wait for the clock, 1 ms apart)', async (t) => {
  const c = new Clock(() => 0)
  c.sync(EPOCH, 0, 0)
  const a = c.stamp(2_000)
  c.sync(EPOCH + 4_000 - 3_000, 0, 4_000) // the board's clock was 3 s fast
  const b = c.stamp(4_000)
  t.equal(b, a + 1, 'held just above the last stamp')
  t.equal(c.stamp(8_000), EPOCH + 5_000, 'the synced time once it is past the last stamp')
})

t.test('stamps of the same board ms are still strictly increasing', async (t) => {
  const c = new Clock(() => 0)
  c.sync(EPOCH, 0, 0)
  const a = c.stamp(100)
  const b = c.stamp(100)
  t.ok(b > a)
})
