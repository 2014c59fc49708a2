/**
 * Connects as the real interpreter does them (issue 12): Espruino's net.connect throws at once
 * when the port refuses or DNS fails, and an attempt can hang (a gateway that accepts TCP and
 * never answers, or a callback that never ran). The time fetch reports a throwing connect
 * through its callback, asynchronously; the MQTT client counts it and retries with its
 * backoff, and its deadline check ends an attempt that never got a CONNACK and replaces a
 * retry timer whose callback never ran.
 */
import t from 'tap'
import { fetchTime, type Dialer } from '../../firmware/http-time.ts'
import { MqttClient, type MqttOptions, type Socket } from '../../firmware/mqtt.ts'

/** Real timers, but Date.now under the test's control (the MQTT client's clock). */
function fakeNow(start: number): { set(ms: number): void; restore(): void } {
  const real = Date.now
  let now = start
  Date.now = () => now
  return { set: (ms) => { now = ms }, restore: () => { Date.now = real } }
}

const tick = () => new Promise((r) => setTimeout(r, 5))

t.test('time fetch: a connect that throws is an error in the callback, never an exception', async (t) => {
  for (const msg of ['Unable to create socket', 'Unable to locate host']) {
    const refusing: Dialer = { connect: () => { throw new Error(msg) } }
    let called = 0
    let got: string | null = null
    let sync = true
    fetchTime(refusing, 'gw', 8081, () => 1000, 5000, (err) => {
      called++
      got = err
      t.notOk(sync, 'the callback comes later, from a callback of its own')
    })
    sync = false
    await tick()
    t.equal(called, 1)
    t.match(String(got), new RegExp('time: connect failed: .*' + msg))
  }
})

t.test('time fetch: a socket that never answers times out once', async (t) => {
  let ended = 0
  const silent: Dialer = { connect: () => ({ write: () => true, end: () => { ended++ }, on: () => {} }) }
  const errs: string[] = []
  fetchTime(silent, 'gw', 8081, () => 0, 20, (err) => errs.push(String(err)))
  await new Promise((r) => setTimeout(r, 60))
  t.same(errs, ['time: no answer in 20 ms'])
  t.equal(ended, 1, 'the socket is closed')
})

function client(o: Partial<MqttOptions>, log: string[]): MqttClient {
  return new MqttClient({
    clientId: 'ambqgaydambqgaydm', keepAliveS: 30, backoffMinMs: 10, backoffMaxMs: 40, maxPacket: 4096,
    credentials: (cb) => cb('u', 'p'),
    dial: () => { throw new Error('unused') },
    log: (m) => log.push(m),
    ...o,
  })
}

t.test('MQTT: a refused connect is counted and retried with the backoff', async (t) => {
  const log: string[] = []
  let dials = 0
  const c = client({ dial: () => { dials++; throw new Error('InternalError: Unable to create socket') } }, log)
  c.start()
  await new Promise((r) => setTimeout(r, 150))
  c.stop()
  t.ok(dials >= 3, `${dials} attempts`)
  t.equal(c.stats.dialErrors, dials)
  t.match(log.join('\n'), /dial failed: .*Unable to create socket, retry in \d+ ms/)
})

t.test('MQTT: an attempt without CONNACK is given up at the deadline and retried; a late credentials callback dials nothing', async (t) => {
  const clock = fakeNow(1_000_000)
  t.teardown(() => clock.restore())
  const log: string[] = []
  const socks: { ended: boolean }[] = []
  const dial = (): Socket => {
    const s = { ended: false, write: () => true, end: () => { s.ended = true }, on: () => {} }
    socks.push(s)
    return s
  }
  const c = client({ dial, connectTimeoutMs: 20_000 }, log)
  c.start()
  t.equal(socks.length, 1, 'dialled; the gateway accepts TCP and says nothing')
  clock.set(1_010_000)
  t.equal(c.check(), false, 'within the deadline: nothing to do')
  clock.set(1_020_001)
  t.equal(c.check(), true, 'past the deadline')
  t.ok(socks[0]!.ended, 'the silent socket is closed')
  t.equal(c.stats.stalls, 1)
  t.match(log.join('\n'), /no CONNACK within 20000 ms/)
  await new Promise((r) => setTimeout(r, 30)) // the retry (backoff 10..15 ms) dials again
  t.equal(socks.length, 2, 'retried')
  c.stop()

  // Credentials whose callback comes after the deadline (a signer that was given up).
  let late: ((u: string, p: string) => void) | null = null
  const c2 = client({ dial, credentials: (cb) => { late = cb } }, log)
  const before = socks.length
  clock.set(2_000_000)
  c2.start()
  clock.set(2_030_000)
  t.equal(c2.check(), true, 'an attempt stuck in its credentials is given up too')
  late!('u', 'p')
  t.equal(socks.length, before, 'the late callback of the given-up attempt dials nothing')
  c2.stop()
})

t.test('MQTT: a retry timer whose callback never ran is replaced', async (t) => {
  const clock = fakeNow(5_000_000)
  t.teardown(() => clock.restore())
  const log: string[] = []
  let dials = 0
  const c = client({ dial: () => { dials++; throw new Error('refused') } }, log)
  // As if the interpreter had abandoned the retry's callback: a timer that fired and did nothing.
  const realSetTimeout = globalThis.setTimeout
  ;(globalThis as any).setTimeout = () => 0
  try {
    c.start()
  } finally {
    ;(globalThis as any).setTimeout = realSetTimeout
  }
  t.equal(dials, 1)
  t.not(c.retryTimer, undefined, 'a retry is scheduled (and will never run)')
  clock.set(5_000_000 + 60_000)
  t.equal(c.check(), true)
  t.equal(dials, 2, 'the check opened a new attempt itself')
  c.stop()
})

t.test('MQTT: a CONNACK that comes after the deadline, on the given-up socket, is ignored', async (t) => {
  const clock = fakeNow(9_000_000)
  t.teardown(() => clock.restore())
  const log: string[] = []
  const data: ((d: string) => void)[] = []
  const dial = (): Socket => ({ write: () => true, end: () => {}, on: (ev: string, cb: (a?: any) => void) => { if (ev === 'data') data.push(cb) } })
  const c = client({ dial, connectTimeoutMs: 20_000 }, log)
  c.start()
  clock.set(9_030_000)
  t.equal(c.check(), true, 'given up')
  data[0]!('\x20\x02\x00\x00') // CONNACK, accepted, on the old socket
  t.equal(c.connected, false, 'not taken as connected: publishes would go nowhere')
  c.stop()
})
