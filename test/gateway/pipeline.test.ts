/**
 * The frame pipeline end to end over real sockets: PUBACK only after the store
 * holds the frame durably, bad frames NACKed and never stored or forwarded,
 * duplicates acknowledged once stored once, ACLs on topics.
 */
import t from 'tap'
import { startTestGateway, cleanup } from './helpers/gateway.ts'
import { readFrames } from '../../testing/file-store.ts'
import { connect, connectDevice, endClient, frame, newDeviceKey, publishAcked, registerSim } from './helpers/devices.ts'
import type { MqttClient } from 'mqtt'
import { expectQuiet, nextEvent, waitFor } from '../helpers/wait.ts'

const framesTopic = (id: string) => `mhealth/dev/${id}/frames`
const controlTopic = (id: string) => `mhealth/dev/${id}/control`

function nextControl(c: MqttClient, id: string, kind: string): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const on = (topic: string, payload: Buffer) => {
      if (topic !== controlTopic(id)) return
      const m = JSON.parse(payload.toString()) as Record<string, unknown>
      if (m.t !== kind) return
      c.off('message', on)
      resolve(m)
    }
    c.on('message', on)
  })
}

/** Granted QoS, or 128 when refused (mqtt.js reports a 0x80 SUBACK as an error). */
const subscribe = (c: MqttClient, topic: string) =>
  new Promise<number>((resolve, reject) =>
    c.subscribe(topic, { qos: 1 }, (err, granted) => {
      if (err && /Subscribe error/.test(err.message)) return resolve(128)
      if (err) return reject(err)
      resolve(granted![0]!.qos)
    }),
  )

t.test('frame pipeline', async (t) => {
  const gw = await startTestGateway()
  t.teardown(() => cleanup(gw))
  const se = newDeviceKey('se')
  const bare = newDeviceKey('bare')
  registerSim(gw.registry, se, 'p-se')
  registerSim(gw.registry, bare, 'p-bare')
  const dev = await connectDevice(gw.mqttUrl, se)
  const devBare = await connectDevice(gw.mqttUrl, bare)
  t.teardown(() => Promise.all([endClient(dev), endClient(devBare)]))

  t.test('the device gets the gateway time when it subscribes to its control topic', async (t) => {
    const time = nextControl(dev, se.id, 'time')
    t.equal(await subscribe(dev, controlTopic(se.id)), 1)
    const m = await time
    t.type(m.now, 'number')
    await subscribe(devBare, controlTopic(bare.id))
  })

  t.test('PUBACK arrives only after the frame is durable in the store', async (t) => {
    gw.fileStore.syncDelayMs = 150
    let acked = false
    const f1 = frame(se, 1)
    const done = publishAcked(dev, framesTopic(se.id), f1).then(() => (acked = true))
    // The store has the frame (hasFrame turns true on append) and its fsync is held for 150 ms.
    await waitFor(() => gw.fileStore.hasFrame(se.id, 1), 'the frame to reach the store')
    t.equal(acked, false, 'no PUBACK while the fsync is pending')
    t.equal(gw.fileStore.syncs, 0)
    await done
    t.equal(gw.fileStore.syncs, 1, 'PUBACK followed the fsync')
    gw.fileStore.syncDelayMs = 0
    const stored = readFrames(gw.fileStore.file)
    t.equal(stored.length, 1)
    t.same([stored[0]!.deviceId, stored[0]!.seq], [se.id, 1])
    t.same(stored[0]!.frame, f1, 'the exact bytes received')
  })

  t.test('bare (HMAC) frames are accepted too', async (t) => {
    await publishAcked(devBare, framesTopic(bare.id), frame(bare, 7))
    t.ok(gw.fileStore.hasFrame(bare.id, 7))
  })

  t.test('a duplicate (same device+seq) is acknowledged and stored once', async (t) => {
    const f = frame(se, 2)
    await Promise.all([publishAcked(dev, framesTopic(se.id), f), publishAcked(dev, framesTopic(se.id), f)])
    await publishAcked(dev, framesTopic(se.id), f)
    t.equal(readFrames(gw.fileStore.file).filter((x) => x.deviceId === se.id && x.seq === 2).length, 1)
    t.equal(gw.metrics.framesDuplicate.get(), 2)
  })

  t.test('bad frames: NACK with the reason, not stored, counted by reason', async (t) => {
    const cases: Array<[string, Buffer, string]> = [
      ['garbage bytes', Buffer.from('definitely not cbor'), 'cbor'],
      ['flipped signature bit', (() => { const f = frame(se, 100); f[f.length - 1]! ^= 1; return f })(), 'signature'],
      ['frame signed by another device', frame(newDeviceKey('se'), 101), 'kid-mismatch'],
      ['t0 an hour in the future', frame(se, 102, { t0: Date.now() + 3600_000 }), 'time'],
      ['empty payload', Buffer.alloc(0), 'size'],
    ]
    for (const [name, bytes, reason] of cases) {
      const nack = nextControl(dev, se.id, 'nack')
      await publishAcked(dev, framesTopic(se.id), bytes)
      const m = await nack
      t.equal(m.reason, reason, name)
    }
    const stored = readFrames(gw.fileStore.file).filter((x) => x.seq >= 100)
    t.equal(stored.length, 0, 'nothing stored')
    const text = await (await fetch(gw.httpUrl + '/metrics')).text()
    t.match(text, /mhealth_frames_rejected_total\{reason="signature"\} 1/)
    t.match(text, /mhealth_frames_rejected_total\{reason="cbor"\} 1/)
  })

  t.test('a bare device cannot send ES256 frames and vice versa (key)', async (t) => {
    const nack = nextControl(devBare, bare.id, 'nack')
    // A Sign1 frame under the bare device's ID, signed by some P-256 key.
    const imposter = { ...newDeviceKey('se'), id: bare.id } as never
    await publishAcked(devBare, framesTopic(bare.id), frame(imposter, 5))
    t.equal((await nack).reason, 'key')
  })

  t.test('publishing to another device\'s topic closes the connection [MQTT-3.3.5-2]', async (t) => {
    const k = newDeviceKey('se') // its own device: a second connection as `se` would take over `dev`'s session
    registerSim(gw.registry, k, 'p-z')
    const c = await connectDevice(gw.mqttUrl, k)
    const closed = new Promise((r) => c.once('close', () => r(null)))
    c.publish(framesTopic(bare.id), frame(k, 200), { qos: 1 })
    await closed
    c.end(true)
    t.notOk(gw.fileStore.hasFrame(k.id, 200))
    t.ok(gw.logs.some((e) => e.msg === 'publish refused' && e.reason === 'not-own-frames-topic'))
  })

  t.test('device subscriptions outside its control topic are refused (SUBACK 0x80)', async (t) => {
    const k = newDeviceKey('bare')
    registerSim(gw.registry, k, 'p-z')
    const c = await connectDevice(gw.mqttUrl, k)
    t.equal(await subscribe(c, controlTopic(se.id)), 128)
    t.equal(await subscribe(c, 'mhealth/#'), 128)
    t.equal(await subscribe(c, '$SYS/#'), 128)
    t.equal(await subscribe(c, framesTopic(k.id)), 128)
    t.equal(await subscribe(c, controlTopic(k.id)), 1)
    await endClient(c)
  })

  t.test('clinicians: consent decides, revocation cuts a live subscription at once', async (t) => {
    gw.registry.addUser('dr.who', 'clinician', 'correct horse battery')
    const bad = await connect(gw.mqttUrl, { clientId: 'u:dr.who', username: 'dr.who', password: Buffer.from('wrong password') }).catch((e) => e)
    t.equal((bad as { code?: number }).code, 4, 'wrong password: CONNACK 4')
    const doc = await connect(gw.mqttUrl, { clientId: 'u:dr.who:tab1', username: 'dr.who', password: Buffer.from('correct horse battery') })
    t.teardown(() => endClient(doc))
    t.equal(await subscribe(doc, 'mhealth/patient/p-se/frames'), 128, 'no consent yet')
    t.equal(await subscribe(doc, 'mhealth/patient/+/frames'), 128, 'no wildcards')
    gw.consent.grant('p-se', 'dr.who')
    t.equal(await subscribe(doc, 'mhealth/patient/p-se/frames'), 1)
    const received: number[] = []
    doc.on('message', (topic, payload) => {
      if (topic === 'mhealth/patient/p-se/frames') received.push(payload.length)
    })
    const f = frame(se, 300)
    await publishAcked(dev, framesTopic(se.id), f)
    // Bad frames are not forwarded anywhere.
    await publishAcked(dev, framesTopic(se.id), Buffer.from('junk'))
    await waitFor(() => received.length > 0, 'the verified frame at the clinician')
    await expectQuiet(200, 'a second copy, or the junk frame, at the clinician')
    t.same(received, [f.length], 'the verified frame, once')
    gw.consent.revoke('p-se', 'dr.who')
    await publishAcked(dev, framesTopic(se.id), frame(se, 301))
    await expectQuiet(200, 'a frame at the clinician whose consent was revoked')
    t.same(received, [f.length], 'nothing after revocation')
    // A refused PUBLISH closes the connection [MQTT-3.3.5-2]; mqtt.js never calls back for it.
    const closed = new Promise((r) => doc.once('close', () => r(true)))
    doc.publish('mhealth/patient/p-se/frames', 'x', { qos: 1 })
    t.equal(await closed, true, 'users may not publish')
  })

  t.test('revoking a device through the admin API disconnects it at once', async (t) => {
    const k = newDeviceKey('se')
    registerSim(gw.registry, k, 'p-x')
    const c = await connectDevice(gw.mqttUrl, k)
    const closed = new Promise((r) => c.once('close', () => r(null)))
    const res = await fetch(`${gw.httpUrl}/api/devices/${k.id}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${gw.identity.adminToken}` } })
    t.equal(res.status, 200)
    t.match(await res.json(), { revoked: true, disconnected: true })
    await closed
    c.end(true)
    t.equal(gw.registry.getDevice(k.id)!.status, 'revoked')
  })

  t.test('a revocation written by another process is picked up', async (t) => {
    const k = newDeviceKey('bare')
    registerSim(gw.registry, k, 'p-y')
    const c = await connectDevice(gw.mqttUrl, k)
    const closed = nextEvent(c, 'close', 'the gateway to disconnect the device revoked by another process')
    const Database = (await import('better-sqlite3')).default
    const other = new Database(gw.registry.file)
    other.prepare("UPDATE devices SET status='revoked', revoked_ms=? WHERE id=?").run(Date.now(), k.id)
    other.close()
    await closed
    c.end(true)
    t.ok(gw.logs.some((e) => e.msg === 'device disconnected: revoked' && e.deviceId === k.id), 'disconnected because it was revoked')
  })
})

t.test('a store that fails to persist a frame gets it no PUBACK; sent again, it is stored once', async (t) => {
  const gw = await startTestGateway()
  t.teardown(() => cleanup(gw))
  const k = newDeviceKey('bare')
  registerSim(gw.registry, k, 'p-eio')
  const store = gw.fileStore
  const real = store.appendFrame.bind(store)
  let fail = 1
  store.appendFrame = async (f, m) => {
    if (fail-- > 0) throw new Error('EIO: i/o error, write')
    return real(f, m)
  }
  const dev = await connectDevice(gw.mqttUrl, k)
  const closed = nextEvent(dev, 'close', 'the gateway closes the connection')
  let acked = false
  dev.publish(framesTopic(k.id), frame(k, 1), { qos: 1 }, (err) => (acked = !err))
  await closed
  t.notOk(acked, 'no PUBACK: the connection closed instead (before this, a NACK "internal" and a PUBACK)')
  t.equal(readFrames(store.file).length, 0, 'nothing stored')
  const again = await connectDevice(gw.mqttUrl, k)
  t.teardown(() => endClient(again))
  await publishAcked(again, framesTopic(k.id), frame(k, 1))
  t.same(readFrames(store.file).map((f) => f.seq), [1], 'the resent frame is stored, once')
})
