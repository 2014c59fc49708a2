/** The backoff's arithmetic on an injected clock: free attempts, doubling waits, bursts, sources, forgetting. */
import t from 'tap'
import { LoginBackoff, LoginThrottled, sourceOf } from '../../gateway/login-backoff.ts'

function clocked(o: ConstructorParameters<typeof LoginBackoff>[0] = {}) {
  const clock = { t: 1_000_000 }
  return { clock, b: new LoginBackoff({ now: () => clock.t, ...o }) }
}

const throttledFor = (f: () => unknown): number => {
  try {
    f()
  } catch (err) {
    if (err instanceof LoginThrottled) return err.retryAfterMs
    throw err
  }
  return 0
}

t.test('free attempts, then waits that double up to the cap', async (t) => {
  const { clock, b } = clocked({ maxDelayMs: 8_000 })
  t.same([0, 1, 2, 3, 4, 5, 6, 9].map((n) => b.delayAfter(n)), [0, 0, 0, 1_000, 2_000, 4_000, 8_000, 8_000])
  for (let i = 0; i < 3; i++) b.begin('alice', '10.0.0.9')(false)
  t.equal(throttledFor(() => b.begin('alice', '10.0.0.9')), 1_000, 'the 4th attempt waits 1 s')
  t.throws(() => b.begin('alice', '10.0.0.9'), { name: 'LoginThrottled', message: /too many wrong passwords for this account from your address; try again in 1 s/ })
  clock.t += 999
  t.equal(throttledFor(() => b.begin('alice', '10.0.0.9')), 1, 'a refused attempt does not restart the wait')
  clock.t += 1
  b.begin('alice', '10.0.0.9')(false)
  t.equal(throttledFor(() => b.begin('alice', '10.0.0.9')), 2_000, 'then 2 s')
  t.equal(throttledFor(() => b.begin('alice', '10.0.0.7')), 0, 'another source is not held up')
  t.equal(throttledFor(() => b.begin('bob', '10.0.0.9')), 0, 'nor another account from the same source')
  clock.t += 2_000
  b.begin('alice', '10.0.0.9')(true)
  t.equal(throttledFor(() => b.begin('alice', '10.0.0.9')), 0, 'the right password clears the record')
})

t.test('a parallel burst cannot slip past before the first failure is known', async (t) => {
  const { b } = clocked()
  const settles = [0, 1, 2].map(() => b.begin('alice', '10.0.0.9'))
  t.ok(throttledFor(() => b.begin('alice', '10.0.0.9')) > 0, 'the 4th concurrent attempt is refused while 3 are checked')
  for (const s of settles) s(null) // e.g. the registry was busy: not checked, not counted
  t.equal(throttledFor(() => b.begin('alice', '10.0.0.9')), 0, 'attempts never checked do not count')
})

t.test('records are forgotten, and bounded in number', async (t) => {
  const { clock, b } = clocked({ forgetAfterMs: 60_000, maxEntries: 3 })
  for (let i = 0; i < 3; i++) b.begin('alice', 'a')(false)
  clock.t += 60_000
  t.equal(throttledFor(() => b.begin('alice', 'a')), 0, 'an hour later (here a minute) it starts afresh')
  for (const s of ['b', 'c', 'd', 'e']) b.begin('x', s)(false)
  t.equal(b.size, 3, 'at most maxEntries')
})

t.test('sourceOf', async (t) => {
  t.equal(sourceOf('127.0.0.2'), '127.0.0.2')
  t.equal(sourceOf('::ffff:10.1.2.3'), '10.1.2.3', 'IPv4-mapped is the IPv4 address')
  t.equal(sourceOf('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64', 'IPv6 counts per /64')
  t.equal(sourceOf('2001:db8:1:2:ffff:ffff:ffff:fffe'), '2001:db8:1:2::/64')
  t.equal(sourceOf('2001:db8::1'), '2001:db8:0:0::/64')
  t.equal(sourceOf('::1'), '0:0:0:0::/64')
  t.equal(sourceOf('fe80::1%eth0'), 'fe80:0:0:0::/64')
  t.equal(sourceOf(undefined), 'unknown')
})
