/**
 * Two gateways, one device population, through a real redis-server started here
 * (Debian package redis-server; skipped with a message when it is absent):
 * messages cross gateways both ways, a persistent session and its queued control
 * messages follow a board to the other gateway, a frame already stored through
 * one gateway is acknowledged but not stored again by the other (also while the
 * first is still storing it, and taken over when the first died holding its claim),
 * auth counters and revocations are shared through the one registry file.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PublishPacket } from 'aedes'
import mqtt, { type MqttClient } from 'mqtt'
import { startTestGateway, cleanup, type TestGateway } from './helpers/gateway.ts'
import { readFrames } from '../../testing/file-store.ts'
import { connect, connectDevice, endClient, frame, newDeviceKey, publishAcked, registerSim, token } from './helpers/devices.ts'
import { parseRedisUrl, ClusterConfigError } from '../../gateway/cluster.ts'
import { redisSkip, startRedis } from '../../testing/redis.ts'
import { Redis } from 'ioredis'
import { nextEvent, waitFor } from '../helpers/wait.ts'

const framesTopic = (id: string) => `mhealth/dev/${id}/frames`
const controlTopic = (id: string) => `mhealth/dev/${id}/control`

/** Resolves with the next message on `topic` (payload as text). */
const nextMessage = (c: MqttClient, topic: string) =>
  new Promise<Buffer>((resolve) => {
    const on = (tp: string, payload: Buffer) => {
      if (tp !== topic) return
      c.off('message', on)
      resolve(payload)
    }
    c.on('message', on)
  })

const subscribe = (c: MqttClient, topic: string) =>
  new Promise<void>((resolve, reject) => c.subscribe(topic, { qos: 1 }, (err, g) => (err ? reject(err) : g![0]!.qos === 128 ? reject(new Error('refused')) : resolve())))

t.test('redis URL parsing', async (t) => {
  t.same(parseRedisUrl('redis://127.0.0.1:6400/2'), { host: '127.0.0.1', port: 6400, username: undefined, password: undefined, db: 2 })
  t.match(parseRedisUrl('redis://:s%40cret@h'), { host: 'h', port: 6379, password: 's@cret', db: 0 })
  t.throws(() => parseRedisUrl('http://h:1'), ClusterConfigError)
  t.throws(() => parseRedisUrl('not a url'), /expected a URL like redis:\/\//)
  t.throws(() => parseRedisUrl('redis://h/x'), /database number/)
})

t.test('two gateways sharing one device population', { skip: redisSkip() }, async (t) => {
  const redis = await startRedis()
  const tmp = mkdtempSync(join(tmpdir(), 'mh-cluster-'))
  const gateways: TestGateway[] = []
  // Gateways first (their Redis connections close cleanly), then the server.
  t.teardown(async () => {
    await Promise.all(gateways.map(cleanup))
    await redis.stop()
    rmSync(tmp, { recursive: true, force: true })
  })
  const shared = { redisUrl: redis.url, registryFile: join(tmp, 'registry.sqlite') }
  const a: TestGateway = await startTestGateway(shared)
  gateways.push(a)
  const b: TestGateway = await startTestGateway(shared)
  gateways.push(b)

  const key = newDeviceKey('se')
  registerSim(a.registry, key, 'p-1') // registered through A, known to B: one registry
  t.ok(b.registry.getDevice(key.id), 'B sees the registration')
  b.registry.addUser('dr.b', 'clinician', 'correct horse battery')
  b.consent.grant('p-1', 'dr.b')

  const dev = await connectDevice(a.mqttUrl, key, { clean: false, clientId: key.id })
  await subscribe(dev, controlTopic(key.id))
  const doc = await connect(b.mqttUrl, { clientId: 'u:dr.b', username: 'dr.b', password: Buffer.from('correct horse battery') })
  t.teardown(() => endClient(doc))
  // No wait for Redis: Aedes sends the SUBACK only after its Redis SUBSCRIBE is confirmed.
  await subscribe(doc, 'mhealth/patient/p-1/frames')

  t.test('a frame verified and stored by A reaches the clinician on B', async (t) => {
    const f = frame(key, 1)
    const got = nextMessage(doc, 'mhealth/patient/p-1/frames')
    await publishAcked(dev, framesTopic(key.id), f)
    t.same(await got, f)
    t.ok(a.fileStore.hasFrame(key.id, 1), 'stored by A')
    t.notOk(b.fileStore.hasFrame(key.id, 1), 'not by B')
  })

  t.test('a control message published on B reaches the device on A', async (t) => {
    const got = nextMessage(dev, controlTopic(key.id))
    b.broker.aedes.publish({ cmd: 'publish', topic: controlTopic(key.id), payload: Buffer.from('{"t":"config","hz":250}'), qos: 1, retain: false, dup: false } as PublishPacket, () => {})
    t.same(JSON.parse((await got).toString()), { t: 'config', hz: 250 })
  })

  t.test('the board moves to B: session, queued messages and stored frames follow it', async (t) => {
    await endClient(dev)
    const aClients = (a.broker.aedes as unknown as { clients: Record<string, unknown> }).clients
    await waitFor(() => !aClients[key.id], 'A to drop the board\'s connection')
    // Published while the board is offline: queued in its persistent session in Redis (the
    // callback runs once the message is enqueued for every offline subscription).
    await new Promise<void>((resolve, reject) =>
      b.broker.aedes.publish({ cmd: 'publish', topic: controlTopic(key.id), payload: Buffer.from('{"t":"config","queued":true}'), qos: 1, retain: false, dup: false } as PublishPacket, (err) => (err ? reject(err) : resolve())),
    )
    const queued: Buffer[] = []
    const dev2 = mqtt.connect(b.mqttUrl, { clientId: key.id, username: key.id, password: token(key), clean: false, protocolVersion: 4, reconnectPeriod: 0 })
    dev2.on('message', (tp, p) => tp === controlTopic(key.id) && queued.push(p))
    const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
      dev2.once('connect', resolve)
      dev2.once('error', reject)
    })
    t.teardown(() => endClient(dev2))
    t.equal(connack.sessionPresent, true, 'B finds the session A created [MQTT-3.2.2-2]')
    await waitFor(() => queued.length > 0, 'the queued control message from B')
    t.same(queued.map((p) => JSON.parse(p.toString())), [{ t: 'config', queued: true }], 'the queued control message is delivered by B, once')

    // Its PUBACK from A was "lost": the board resends seq 1 to B.
    await publishAcked(dev2, framesTopic(key.id), frame(key, 1))
    t.equal(b.metrics.framesDuplicate.get(), 1, 'B acknowledged it as a duplicate')
    t.equal(readFrames(b.fileStore.file).length, 0, 'B stored nothing')
    t.equal(readFrames(a.fileStore.file).filter((f) => f.seq === 1).length, 1, 'one copy, on A')
    await publishAcked(dev2, framesTopic(key.id), frame(key, 2))
    t.ok(b.fileStore.hasFrame(key.id, 2), 'and continues with new frames on B')

    // A revocation written through A's registry cuts the board off B.
    const closed = nextEvent(dev2, 'close', 'B to disconnect the board revoked through A')
    a.registry.revoke(key.id)
    await closed
    t.ok(b.logs.some((e) => e.msg === 'device disconnected: revoked' && e.deviceId === key.id), 'B disconnected the revoked board')
  })

  t.test('a frame resent to B while A is still storing it is stored once and acknowledged by both', async (t) => {
    const k = newDeviceKey('se')
    registerSim(a.registry, k, 'p-3')
    const probe = new Redis(redis.url)
    t.teardown(() => probe.disconnect())
    const devA = await connectDevice(a.mqttUrl, k)
    const acceptedA = a.metrics.framesAccepted.get()
    const dupB = b.metrics.framesDuplicate.get()
    a.fileStore.syncDelayMs = 800 // A's store is slow: the frame sits between "claimed" and "durable"
    t.teardown(() => void (a.fileStore.syncDelayMs = 0))
    devA.publish(framesTopic(k.id), frame(k, 7), { qos: 1 })
    const claim = `mhealth:claim:${k.id}:7`
    await waitFor(async () => (await probe.exists(claim)) === 1, 'A to claim frame 7 in Redis', 3000, 5)
    t.equal(await probe.exists(claim), 1, 'A holds the claim while storing')
    // The board gives up on A (no PUBACK yet) and resends the same frame to B; connecting
    // there with its client ID takes the session over from A, A keeps storing.
    const devB = await connectDevice(b.mqttUrl, k)
    t.teardown(() => Promise.all([endClient(devA), endClient(devB)]))
    t.equal(await probe.zscore(`mhealth:frames:${k.id}`, '7'), null, 'A has not finished storing it yet: not marked stored')
    await publishAcked(devB, framesTopic(k.id), frame(k, 7))
    t.equal(b.metrics.framesDuplicate.get(), dupB + 1, 'B acknowledged it as a duplicate, after A marked it stored')
    t.equal(a.metrics.framesAccepted.get(), acceptedA + 1, "A's pipeline stored it (and sent its PUBACK)")
    const copies = [...readFrames(a.fileStore.file), ...readFrames(b.fileStore.file)].filter((f) => f.deviceId === k.id && f.seq === 7)
    t.equal(copies.length, 1, 'one copy in total')
    t.equal(await probe.exists(claim), 0, 'the claim is gone')

    // A gateway that died holding a claim: the claim lapses and B stores the frame itself.
    await probe.set(`mhealth:claim:${k.id}:8`, 'a-gateway-that-died', 'PX', 300)
    await publishAcked(devB, framesTopic(k.id), frame(k, 8))
    t.ok(b.fileStore.hasFrame(k.id, 8), 'B took over and stored it')
    t.equal([...readFrames(a.fileStore.file), ...readFrames(b.fileStore.file)].filter((f) => f.deviceId === k.id && f.seq === 8).length, 1)
    t.not(await probe.zscore(`mhealth:frames:${k.id}`, '8'), null, 'and marked it stored')
  })

  t.test('an auth token accepted by A is a replay on B', async (t) => {
    const k = newDeviceKey('bare')
    registerSim(a.registry, k, 'p-2')
    const tok = token(k)
    const c = await connect(a.mqttUrl, { clientId: k.id, username: k.id, password: tok })
    await endClient(c)
    const err = await connect(b.mqttUrl, { clientId: k.id, username: k.id, password: tok }).catch((e: unknown) => e)
    t.equal((err as { code?: number }).code, 4, 'CONNACK 4')
    t.ok(b.logs.some((e) => e.msg === 'connect refused' && e.reason === 'token-replayed'))
  })
})
