import t, { type Test } from 'tap'
import mqtt from 'mqtt'
import { encodeLength, PacketReader, encodePublish, decodePublish, type Packet } from '../../firmware/mqtt-codec.ts'
import { MqttClient, backoffDelay, idSeed } from '../../firmware/mqtt.ts'
import { dialNode } from './helpers/espruino-env.ts'
import { proxyTo, startAedes } from './helpers/aedes.ts'
import { expectQuiet, waitFor } from '../helpers/wait.ts'

const latin1 = (b: Uint8Array) => Buffer.from(b).toString('latin1')

t.test('remaining length encoding matches the table in MQTT 3.1.1 section 2.2.3', async (t) => {
  const cases: [number, number[]][] = [
    [0, [0x00]], [127, [0x7f]], [128, [0x80, 0x01]], [16383, [0xff, 0x7f]],
    [16384, [0x80, 0x80, 0x01]], [2097151, [0xff, 0xff, 0x7f]], [2097152, [0x80, 0x80, 0x80, 0x01]],
    [268435455, [0xff, 0xff, 0xff, 0x7f]],
  ]
  for (const [n, bytes] of cases) t.same([...Buffer.from(encodeLength(n), 'latin1')], bytes, `length ${n}`)
  t.throws(() => encodeLength(268435456), /out of range/)
})

t.test('the parser reassembles split packets and separates coalesced ones', async (t) => {
  const payload = latin1(Uint8Array.from({ length: 300 }, (_, i) => i & 255))
  const one = encodePublish('a/b', payload, 1, 7, false)
  const two = encodePublish('c', 'x', 0, 0, false)
  const wire = one + two + one
  // Every split point, byte by byte, and all at once.
  for (const chunk of [1, 2, 3, 64, wire.length]) {
    const got: Packet[] = []
    const r = new PacketReader(4096)
    for (let i = 0; i < wire.length; i += chunk) r.push(wire.substr(i, chunk), (p) => got.push(p))
    t.equal(got.length, 3, `chunk ${chunk}: three packets`)
    const p0 = decodePublish(got[0]!)
    t.same([p0.topic, p0.packetId, p0.qos, p0.payload === payload], ['a/b', 7, 1, true], `chunk ${chunk}: first publish intact`)
    t.equal(decodePublish(got[1]!).payload, 'x')
  }
})

t.test('the parser refuses malformed lengths and oversized packets', async (t) => {
  const r = new PacketReader(100)
  t.throws(() => r.push('\x30\xff\xff\xff\xff\x01', () => {}), /bad remaining length/)
  t.throws(() => new PacketReader(100).push('\x30\xc8\x01', () => {}), /exceeds 100/)
})

t.test('backoff doubles to the cap and the jitter depends on the device ID, not Math.random', async (t) => {
  const a = idSeed('DEVICEAAAAAAAAAAA')
  const b = idSeed('DEVICEBBBBBBBBBBB')
  t.ok(a >= 0 && a < 2 ** 31)
  t.not(a, b)
  const da = [0, 1, 2, 3, 10].map((n) => backoffDelay(n, a, 1000, 30000))
  t.ok(da[0]! >= 1000 && da[0]! < 1500, 'first delay within [min, 1.5 min)')
  t.ok(da[2]! >= 4000 && da[2]! < 6000)
  t.ok(da[4]! >= 30000 && da[4]! < 45000, 'capped')
  t.same(da, [0, 1, 2, 3, 10].map((n) => backoffDelay(n, a, 1000, 30000)), 'deterministic per device')
  t.not(backoffDelay(0, a, 1000, 30000), backoffDelay(0, b, 1000, 30000), 'devices spread out')
})

async function startBroker(t: Test, opts: { auth?: (id: string, user: string, pass: Buffer) => boolean } = {}) {
  const { broker, port } = await startAedes(t)
  const auths: { id: string; user: string; pass: Buffer }[] = []
  broker.authenticate = (client, user, pass, done) => {
    auths.push({ id: client.id, user: user ?? '', pass: pass ?? Buffer.alloc(0) })
    done(null, opts.auth ? opts.auth(client.id, user ?? '', pass ?? Buffer.alloc(0)) : true)
  }
  return { broker, port, auths }
}

function clientFor(port: number, extra: Partial<ConstructorParameters<typeof MqttClient>[0]> = {}) {
  const password = latin1(Uint8Array.from({ length: 256 }, (_, i) => i))
  return new MqttClient({
    clientId: 'DEV1', credentials: (cb) => cb('DEV1', password),
    dial: (onOpen) => dialNode('127.0.0.1', port, onOpen),
    keepAliveS: 30, subscribe: 'mhealth/dev/DEV1/control', backoffMinMs: 30, backoffMaxMs: 200, maxPacket: 8192,
    ...extra,
  })
}

t.test('against Aedes: binary password, QoS 1 binary publish acked, control messages received', async (t) => {
  const b = await startBroker(t)
  const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.port}`, { clientId: 'watcher' })
  t.teardown(() => sub.endAsync())
  const received: Buffer[] = []
  sub.on('message', (_topic, msg) => received.push(msg))
  await sub.subscribeAsync('mhealth/dev/DEV1/frames', { qos: 1 })

  const acks: number[] = []
  const msgs: string[] = []
  let up = 0
  // Aedes emits 'subscribe' after the SUBACK, once the subscription is live.
  let subscribed = false
  b.broker.on('subscribe', (subs, client) => {
    if (client?.id === 'DEV1' && subs.some((s) => s.topic === 'mhealth/dev/DEV1/control')) subscribed = true
  })
  const c = clientFor(b.port, { onAck: (id) => acks.push(id), onMessage: (_tp, p) => msgs.push(p), onConnect: () => up++ })
  t.teardown(() => c.stop())
  c.start()
  await waitFor(() => up === 1, 'CONNACK')
  const mine = b.auths.find((a) => a.id === 'DEV1')!
  t.same([...mine.pass], Array.from({ length: 256 }, (_, i) => i), 'password bytes arrive unchanged')
  t.equal(mine.user, 'DEV1')

  const frame = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 255)
  const id = c.publish('mhealth/dev/DEV1/frames', latin1(frame))
  await waitFor(() => acks.length === 1 && received.length === 1, 'PUBACK and delivery')
  t.equal(acks[0], id)
  t.same([...received[0]!], [...frame], 'payload is binary-safe')
  t.equal(c.inflightCount, 0)

  await waitFor(() => subscribed, 'the board to subscribe to its control topic')
  b.broker.publish({ cmd: 'publish', topic: 'mhealth/dev/DEV1/control', payload: Buffer.from('{"t":"time","now":1}'), qos: 1, retain: false, dup: false }, () => {})
  await waitFor(() => msgs.length === 1, 'control message')
  t.equal(msgs[0], '{"t":"time","now":1}')
})

t.test('an unacknowledged publish is retransmitted with DUP after reconnect, then acked once', async (t) => {
  const b = await startBroker(t)
  const proxy = await proxyTo(t, b.port)
  const seen: { dup: boolean; payload: string }[] = []
  b.broker.on('publish', (p, client) => {
    if (client && p.topic.endsWith('/frames')) seen.push({ dup: p.dup, payload: p.payload.toString('latin1') })
  })
  const acks: number[] = []
  let ups = 0
  const c = clientFor(proxy.port, { onAck: (id) => acks.push(id), onConnect: () => ups++ })
  t.teardown(() => c.stop())
  c.start()
  await waitFor(() => ups === 1, 'first CONNACK')
  proxy.blackholeDown = true
  const id = c.publish('mhealth/dev/DEV1/frames', 'frame-A')
  await waitFor(() => seen.length === 1, 'broker got it')
  proxy.cut(true)
  proxy.blackholeDown = false
  await waitFor(() => ups === 2 && acks.length === 1, 'reconnect and ack')
  t.equal(acks[0], id)
  t.equal(c.stats.retransmits, 1)
  t.equal(seen.length, 2, 'delivered again after the lost PUBACK (at-least-once)')
})

t.test('keep-alive: PINGREQ keeps an idle link up; a silent broker is detected and left', async (t) => {
  const b = await startBroker(t)
  const proxy = await proxyTo(t, b.port)
  const closes: string[] = []
  let ups = 0
  const c = clientFor(proxy.port, { keepAliveS: 1, onClose: (r) => closes.push(r), onConnect: () => ups++ })
  t.teardown(() => c.stop())
  c.start()
  await waitFor(() => ups === 1, 'CONNACK')
  await expectQuiet(2500, 'a drop of the idle link (its PINGREQs keep it up)')
  t.same(closes, [], 'idle for 2.5 keep-alives without being dropped')
  proxy.blackholeDown = true
  await waitFor(() => closes.length === 1, 'keep-alive timeout')
  t.match(closes[0], /keep-alive timeout|closed|ended/)
  proxy.blackholeDown = false
  await waitFor(() => ups === 2, 'reconnect')
})

t.test('a PUBACK that never comes (lost with the data a callback dropped): check() ends the link, the reconnect sends it again', async (t) => {
  const b = await startBroker(t)
  const proxy = await proxyTo(t, b.port)
  const closes: string[] = []
  const acks: number[] = []
  let ups = 0
  const c = clientFor(proxy.port, { ackTimeoutMs: 300, onClose: (r) => closes.push(r), onConnect: () => ups++, onAck: (id) => acks.push(id) })
  t.teardown(() => c.stop())
  c.start()
  await waitFor(() => ups === 1, 'CONNACK')
  proxy.blackholeDown = true
  const id = c.publish('mhealth/dev/DEV1/frames', 'frame-A')
  t.equal(c.check(), false, 'within the deadline: nothing to do')
  await new Promise((r) => setTimeout(r, 400))
  proxy.blackholeDown = false
  t.equal(c.check(), true, 'past the deadline: the link is ended')
  t.match(closes[0], /no PUBACK/)
  await waitFor(() => ups === 2 && acks.length === 1, 'reconnect, retransmit and ack')
  t.same(acks, [id])
  t.equal(c.stats.retransmits, 1)
  t.equal(c.inflightCount, 0)
})

t.test('a refused CONNECT is retried with backoff and a fresh password each time', async (t) => {
  let n = 0
  const b = await startBroker(t, { auth: () => ++n >= 3 })
  let calls = 0
  let ups = 0
  const c = clientFor(b.port, {
    credentials: (cb) => { calls++; cb('DEV1', 'token-' + calls) },
    onConnect: () => ups++,
  })
  t.teardown(() => c.stop())
  c.start()
  await waitFor(() => ups === 1, 'third attempt accepted')
  t.same(b.auths.map((a) => a.pass.toString()), ['token-1', 'token-2', 'token-3'])
})

t.test('kick(): when the network returns, a long backoff is cut back to the first step', async (t) => {
  const b = await startBroker(t)
  let ups = 0
  let refuse = true
  const c = clientFor(b.port, {
    backoffMinMs: 50, backoffMaxMs: 60_000,
    // While "WiFi is down" every dial fails at once.
    dial: (onOpen) => {
      if (!refuse) return dialNode('127.0.0.1', b.port, onOpen)
      const s = dialNode('127.0.0.1', 1, () => {})
      return s
    },
    onConnect: () => ups++,
  })
  t.teardown(() => c.stop())
  c.start()
  await waitFor(() => c.attempt >= 6, 'backoff grown by failed dials')
  t.ok(backoffDelay(c.attempt, c.seed, 50, 60_000) >= 1600, 'the next retry would be seconds away')
  refuse = false
  c.kick()
  t.equal(c.attempt, 1, 'the pending retry was replaced by a first-step one')
  await waitFor(() => ups === 1, 'connected after kick')
  c.kick()
  t.equal(ups, 1, 'kick while connected does nothing')
})
