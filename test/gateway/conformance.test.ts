/**
 * MQTT 3.1.1 conformance, side by side: the scenarios of the Eclipse Paho
 * interoperability client test (paho.mqtt.testing, interoperability/client_test.py:
 * basic, retained, offline queueing, will, zero-length client ID, overlapping
 * subscriptions, keepalive, redelivery on reconnect, subscribe failure, $ topics;
 * plus unsubscribe), written here with mqtt.js and a raw socket client, run
 * against (a) a plain Aedes, (b) our gateway with --allow-anonymous and (c) the same
 * clustered through a real redis-server (skipped when redis-server is absent).
 *
 * Paho runs its broker with a "nosubscribe" filter configured; here both brokers
 * refuse the same filter: the gateway because anonymous clients are kept out of
 * the clinical `mhealth/` namespace, the plain Aedes through authorizeSubscribe.
 *
 * Zero-length client ID [MQTT-3.1.3-7/8]: plain Aedes accepts an empty ID with
 * cleanSession=0 (it invents an ID), which 3.1.1 forbids; the gateway refuses it
 * with CONNACK 2. Both accept an empty ID with cleanSession=1. Asserted below.
 * Publishing to a `$` topic: plain Aedes relays it; the gateway refuses it (a
 * server may, Paho's comment on its $ test) by closing the publisher. Either way
 * no wildcard subscriber receives it, which is what the scenario checks.
 */
import t from 'tap'
import { createServer, type AddressInfo, type Server } from 'node:net'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { Aedes, type PublishPacket } from 'aedes'
import { startTestGateway, cleanup } from './helpers/gateway.ts'
import { CONNACK, PUBLISH, RawClient, SUBACK, connectPacket, subscribePacket } from './helpers/raw-mqtt.ts'
import { redisSkip, startRedis } from '../../testing/redis.ts'
import { expectQuiet, waitFor } from '../helpers/wait.ts'

const topics = ['TopicA', 'TopicA/B', 'Topic/C', 'TopicA/C', '/TopicA'] as const
const wildtopics = ['TopicA/+', '+/C', '#', '/#', '/+', '+/+', 'TopicA/#'] as const
const FORBIDDEN = 'mhealth/patient/p1/frames'

/** The parts of an Aedes instance the tests read (Aedes' type declarations leave them out). */
interface BrokerState {
  persistence: { createRetainedStream(filter: string): AsyncIterable<{ topic: string }> }
  clients: Record<string, unknown>
}
const stateOf = (aedes: Aedes) => aedes as unknown as BrokerState

interface Target {
  name: string
  port: number
  /** The broker behind the port: its retained store and client table are what the tests wait on. */
  broker: BrokerState
  /** A publish made by the server itself (the only way a `$` topic exists on the gateway). */
  serverPublish(topic: string, payload: Buffer): Promise<void>
  close(): Promise<void>
}

async function plainAedes(): Promise<Target> {
  const broker = await Aedes.createBroker({
    authorizeSubscribe: (_client, sub, cb) => cb(null, sub.topic === FORBIDDEN ? null : sub),
  })
  const server: Server = createServer(broker.handle)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    name: 'plain Aedes',
    port: (server.address() as AddressInfo).port,
    broker: stateOf(broker),
    serverPublish: (topic, payload) =>
      new Promise((r) => broker.publish({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false } as PublishPacket, () => r())),
    close: () => new Promise((r) => server.close(() => broker.close(() => r()))),
  }
}

async function anonymousGateway(): Promise<Target> {
  const gw = await startTestGateway({ allowAnonymous: true, httpPort: 0 })
  return {
    name: 'gateway --allow-anonymous',
    port: gw.ports.mqtt!,
    broker: stateOf(gw.broker.aedes),
    serverPublish: (topic, payload) =>
      new Promise((r) => gw.broker.aedes.publish({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false } as PublishPacket, () => r())),
    close: () => cleanup(gw),
  }
}

interface Received {
  topic: string
  payload: string
  qos: number
  retain: boolean
}

/** A connected mqtt.js client recording every message (listener attached before CONNACK). */
function client(port: number, opts: IClientOptions): Promise<MqttClient & { got: Received[] }> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...opts }) as MqttClient & { got: Received[] }
    c.got = []
    c.on('message', (topic, payload, p) => c.got.push({ topic, payload: payload.toString(), qos: p.qos, retain: p.retain }))
    c.once('connect', () => resolve(c))
    c.once('error', (e) => {
      c.end(true)
      reject(e)
    })
  })
}

const end = (c: MqttClient) => new Promise<void>((r) => (c.connected ? c.end(false, {}, () => r()) : (c.end(true), r())))
const pub = (c: MqttClient, topic: string, payload: string, qos: 0 | 1 | 2, retain = false) =>
  new Promise<void>((resolve, reject) => c.publish(topic, payload, { qos, retain }, (e) => (e ? reject(e) : resolve())))
/** Granted QoS per filter; 128 for a refused filter (mqtt.js turns an all-refused SUBACK into an error). */
const sub = (c: MqttClient, filters: Record<string, 0 | 1 | 2>) =>
  new Promise<number[]>((resolve, reject) =>
    c.subscribe(Object.fromEntries(Object.entries(filters).map(([f, qos]) => [f, { qos }])), (e, granted) => {
      if (e && /Subscribe error/.test(e.message)) return resolve(Object.keys(filters).map(() => 128))
      if (e) return reject(e)
      resolve(granted!.map((g) => g.qos))
    }),
  )
/** Topics of the retained messages the broker holds under `filter` (memory or Redis persistence). */
async function retainedTopics(broker: BrokerState, filter: string): Promise<string[]> {
  const out: string[] = []
  for await (const p of broker.persistence.createRetainedStream(filter)) out.push(p.topic)
  return out.sort()
}
/** Quiet window after the last expected message, for a message that must not follow it. */
const QUIET_MS = 300

/** Raw CONNECT; resolves with the CONNACK return code, or null when the server just closed. */
async function rawConnect(port: number, o: Parameters<typeof connectPacket>[0]): Promise<{ raw: RawClient; code: number | null }> {
  const raw = await RawClient.open(port)
  raw.send(connectPacket(o))
  await raw.until(() => raw.ofType(CONNACK).length > 0 || raw.closed, 5000, 'CONNACK or close')
  const ack = raw.ofType(CONNACK)[0]
  return { raw, code: ack ? ack.body[1]! : null }
}

/** The same, clustered through Redis (Aedes persistence and mq in Redis): semantics must not change. */
async function clusteredGateway(): Promise<Target> {
  const redis = await startRedis()
  const gw = await startTestGateway({ allowAnonymous: true, httpPort: 0, redisUrl: redis.url })
  return {
    name: 'gateway --allow-anonymous --redis',
    port: gw.ports.mqtt!,
    broker: stateOf(gw.broker.aedes),
    serverPublish: (topic, payload) =>
      new Promise((r) => gw.broker.aedes.publish({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false } as PublishPacket, () => r())),
    close: () => cleanup(gw).finally(() => redis.stop()),
  }
}

for (const [make, skip] of [[plainAedes, false], [anonymousGateway, false], [clusteredGateway, redisSkip()]] as const) {
  t.test(make.name, { skip }, async (t) => {
    const target = await make()
    t.teardown(() => target.close())
    const port = target.port

    t.test('basic: QoS 0/1/2 round trip, second CONNECT and bad protocol name close the connection', async (t) => {
      const a = await client(port, { clientId: 'myclientid', clean: true })
      await end(a)
      const b = await client(port, { clientId: 'myclientid', clean: true })
      t.same(await sub(b, { [topics[0]]: 2 }), [2])
      await pub(b, topics[0], 'qos 0', 0)
      await pub(b, topics[0], 'qos 1', 1)
      await pub(b, topics[0], 'qos 2', 2)
      await waitFor(() => b.got.length === 3, 'three messages back', 5000)
      t.same(b.got.map((m) => [m.payload, m.qos]).sort(), [['qos 0', 0], ['qos 1', 1], ['qos 2', 2]])
      await end(b)

      const twice = await rawConnect(port, { clientId: 'twice', clean: true })
      t.equal(twice.code, 0)
      twice.raw.send(connectPacket({ clientId: 'twice', clean: true }))
      await twice.raw.until(() => twice.raw.closed, 5000, 'close after a second CONNECT (a protocol violation [MQTT-3.1.0-2])')
      t.equal(twice.raw.ofType(CONNACK).length, 1, 'closed without answering the second CONNECT')

      const bad = await rawConnect(port, { clientId: 'badproto', clean: true, protocolName: 'hj' })
      await bad.raw.until(() => bad.raw.closed, 5000, 'close after a bad protocol name')
      t.not(bad.code, 0, 'no successful CONNACK for protocol name "hj" [MQTT-3.1.2-1]')
    })

    t.test('retained messages: set, delivered on subscribe, cleared by an empty retained publish', async (t) => {
      const a = await client(port, { clientId: 'myclientid', clean: true })
      await pub(a, topics[1], 'qos 0', 0, true)
      await pub(a, topics[2], 'qos 1', 1, true)
      await pub(a, topics[3], 'qos 2', 2, true)
      // The QoS 0 publish has no acknowledgement: wait until the broker has stored all three.
      await waitFor(async () => (await retainedTopics(target.broker, wildtopics[5])).length === 3, 'the broker to store three retained messages', 5000)
      await sub(a, { [wildtopics[5]]: 2 })
      await waitFor(() => a.got.length >= 3, 'the three retained messages on subscribe', 5000)
      await expectQuiet(QUIET_MS, 'a fourth retained message')
      t.equal(a.got.length, 3)
      t.ok(a.got.every((m) => m.retain), 'flagged retained')
      await end(a)

      const b = await client(port, { clientId: 'myclientid', clean: true })
      await pub(b, topics[1], '', 0, true)
      await pub(b, topics[2], '', 1, true)
      await pub(b, topics[3], '', 2, true)
      await waitFor(async () => (await retainedTopics(target.broker, wildtopics[5])).length === 0, 'the broker to clear the retained messages', 5000)
      await sub(b, { [wildtopics[5]]: 2 })
      await expectQuiet(QUIET_MS, 'a retained message after they were cleared')
      t.same(b.got, [], 'no retained messages left')
      await end(b)
    })

    t.test('offline message queueing for a persistent session', async (t) => {
      const a = await client(port, { clientId: 'myclientid', clean: false })
      await sub(a, { [wildtopics[5]]: 2 })
      await end(a)
      const b = await client(port, { clientId: 'myclientid2', clean: true })
      await pub(b, topics[1], 'qos 0', 0)
      await pub(b, topics[2], 'qos 1', 1)
      await pub(b, topics[3], 'qos 2', 2)
      await end(b)
      const a2 = await client(port, { clientId: 'myclientid', clean: false })
      await waitFor(() => a2.got.length >= 2, 'the queued QoS 1 and 2 messages', 5000)
      // QoS 0 may be queued too (the spec lets the server choose): give it the time to arrive.
      await expectQuiet(QUIET_MS, 'a message beyond the three published')
      t.ok([2, 3].includes(a2.got.length), `QoS 1 and 2 queued (QoS 0 too: ${a2.got.length === 3})`)
      t.ok(a2.got.some((m) => m.payload === 'qos 1') && a2.got.some((m) => m.payload === 'qos 2'))
      await end(a2)
      await end(await client(port, { clientId: 'myclientid', clean: true })) // drop the session
    })

    t.test('will message on abnormal disconnect', async (t) => {
      const b = await client(port, { clientId: 'myclientid2', clean: false })
      await sub(b, { [topics[2]]: 2 })
      const a = await client(port, { clientId: 'myclientid', clean: true, keepalive: 2, will: { topic: topics[2], payload: Buffer.from('client not disconnected'), qos: 0, retain: false } })
      a.stream.destroy() // no DISCONNECT: the server must publish the will [MQTT-3.1.2-8]
      a.end(true)
      await waitFor(() => b.got.length === 1, 'the will message', 5000)
      t.equal(b.got[0]?.payload, 'client not disconnected')
      await end(b)
      await end(await client(port, { clientId: 'myclientid2', clean: true }))
    })

    t.test('zero-length client ID [MQTT-3.1.3-7/8]', async (t) => {
      const persistent = await rawConnect(port, { clientId: '', clean: false })
      persistent.raw.destroy()
      const clean = await rawConnect(port, { clientId: '', clean: true })
      clean.raw.destroy()
      t.equal(clean.code, 0, 'accepted with cleanSession=1 (the server assigns an ID)')
      if (target.name === 'plain Aedes') t.equal(persistent.code, 0, 'plain Aedes ACCEPTS an empty ID with cleanSession=0 (not 3.1.1 conformant; documented)')
      else t.equal(persistent.code, 2, 'refused with CONNACK 2 (identifier rejected) with cleanSession=0')
    })

    t.test('overlapping subscriptions: one message at the highest QoS, or one per subscription', async (t) => {
      const a = await client(port, { clientId: 'myclientid', clean: true })
      t.same(await sub(a, { [wildtopics[6]]: 2, [wildtopics[0]]: 1 }), [2, 1])
      await pub(a, topics[3], 'overlapping topic filters', 2)
      await waitFor(() => a.got.length >= 1, 'the message through the overlapping filters', 5000)
      // One copy or one per matching subscription (both allowed): wait for a possible second.
      await expectQuiet(QUIET_MS, 'a copy beyond one per subscription')
      const qos = a.got.map((m) => m.qos).sort()
      t.ok((qos.length === 1 && qos[0] === 2) || (qos.length === 2 && qos[0] === 1 && qos[1] === 2), `got QoS ${JSON.stringify(qos)}`)
      await end(a)
    })

    t.test('keepalive: a silent client is disconnected after 1.5 x keepalive and its will published', async (t) => {
      const b = await client(port, { clientId: 'myclientid2', clean: true, keepalive: 0 })
      await sub(b, { [topics[4]]: 2 })
      const connectedAt = Date.now()
      const { raw, code } = await rawConnect(port, { clientId: 'myclientid', clean: true, keepalive: 1, will: { topic: topics[4], payload: Buffer.from('keepalive expiry') } })
      t.equal(code, 0)
      await raw.until(() => raw.closed, 5000, 'the server to close the silent connection [MQTT-3.1.2-24]')
      // A timer never fires early: closing before one keepalive period would be a bug, not load.
      t.ok(Date.now() - connectedAt >= 1000, `not before the keepalive period (closed after ${Date.now() - connectedAt} ms)`)
      await waitFor(() => b.got.length === 1, 'the will published after the keepalive expiry', 5000)
      t.equal(b.got[0]?.payload, 'keepalive expiry')
      await end(b)
    })

    t.test('redelivery on reconnect of unacknowledged QoS 1/2 messages', async (t) => {
      const { raw, code } = await rawConnect(port, { clientId: 'myclientid2', clean: false })
      t.equal(code, 0)
      raw.send(subscribePacket(1, wildtopics[6], 2))
      await raw.until(() => raw.ofType(SUBACK).length === 1, 5000, 'SUBACK')
      const a = await client(port, { clientId: 'myclientid', clean: true })
      await pub(a, topics[1], 'r1', 1)
      await pub(a, topics[3], 'r2', 2)
      await raw.until(() => raw.ofType(PUBLISH).length === 2, 5000, 'two PUBLISHes')
      raw.destroy() // never acknowledged
      await end(a)
      await waitFor(() => !target.broker.clients['myclientid2'], 'the broker to notice the raw client is gone', 5000)
      const b = await client(port, { clientId: 'myclientid2', clean: false })
      await waitFor(() => b.got.length === 2, 'both messages redelivered', 5000)
      t.same(b.got.map((m) => m.payload).sort(), ['r1', 'r2'])
      await end(b)
      await end(await client(port, { clientId: 'myclientid2', clean: true }))
    })

    t.test('subscribe failure: SUBACK 0x80 for a forbidden filter', async (t) => {
      const a = await client(port, { clientId: 'myclientid', clean: true })
      t.same(await sub(a, { [FORBIDDEN]: 2 }), [128])
      t.same(await sub(a, { [topics[0]]: 1 }), [1], 'connection still usable')
      await end(a)
    })

    t.test('$ topics are not matched by filters starting with a wildcard [MQTT-4.7.2-1]', async (t) => {
      const b = await client(port, { clientId: 'myclientid2', clean: true, keepalive: 0 })
      await sub(b, { [wildtopics[5]]: 2, '#': 2 })
      t.same(await retainedTopics(target.broker, '#'), [], 'no retained message left by earlier tests to arrive here')
      const p = await client(port, { clientId: 'dollar-publisher', clean: true })
      p.publish('$' + topics[1], '', { qos: 1 }) // relayed by plain Aedes, refused by the gateway
      await target.serverPublish('$SYS/conformance/x', Buffer.from('server'))
      await expectQuiet(QUIET_MS, 'a $ topic message through + or #')
      t.same(b.got, [], 'nothing through + or #')
      const s = await client(port, { clientId: 'dollar-sub', clean: true })
      await sub(s, { '$SYS/conformance/+': 0 })
      await target.serverPublish('$SYS/conformance/x', Buffer.from('server'))
      await waitFor(() => s.got.length === 1, 'the $SYS message through an explicit $ filter', 5000)
      await Promise.all([end(b), end(p), end(s)])
    })

    t.test('unsubscribe stops delivery for that filter only', async (t) => {
      const a = await client(port, { clientId: 'myclientid', clean: true })
      await sub(a, { [topics[1]]: 1, [topics[3]]: 1 })
      await new Promise<void>((r, j) => a.unsubscribe(topics[1], (e) => (e ? j(e) : r())))
      await pub(a, topics[1], 'gone', 1)
      await pub(a, topics[3], 'kept', 1)
      await waitFor(() => a.got.length >= 1, 'the message on the filter still subscribed', 5000)
      await expectQuiet(QUIET_MS, 'a message on the unsubscribed filter')
      t.same(a.got.map((m) => m.payload), ['kept'])
      await end(a)
    })
  })
}
