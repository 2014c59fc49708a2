/**
 * Authenticated admission over real sockets: who gets a CONNACK 0, who is refused
 * with which code and which log reason [MQTT-3.2.2-5: refuse then close].
 */
import t from 'tap'
import { startTestGateway, cleanup } from './helpers/gateway.ts'
import { connect, connectDevice, endClient, frame, newDeviceKey, registerSim, token } from './helpers/devices.ts'
import { RawClient, publishPacket } from './helpers/raw-mqtt.ts'

const refusal = async (p: Promise<unknown>): Promise<number | undefined> => {
  try {
    const c = await p
    await endClient(c as never)
    return 0
  } catch (err) {
    return (err as { code?: number }).code
  }
}

t.test('device admission', async (t) => {
  const gw = await startTestGateway()
  t.teardown(() => cleanup(gw))
  const se = newDeviceKey('se')
  const bare = newDeviceKey('bare')
  registerSim(gw.registry, se)
  registerSim(gw.registry, bare, 'patient-2')
  const lastReason = () => [...gw.logs].reverse().find((e) => e.msg === 'connect refused')?.reason

  t.test('registered SE and bare devices are admitted', async (t) => {
    const a = await connectDevice(gw.mqttUrl, se)
    const b = await connectDevice(gw.mqttUrl, bare)
    t.ok(a.connected && b.connected)
    t.equal(gw.broker.devicesConnected(), 2)
    await Promise.all([endClient(a), endClient(b)])
  })

  t.test('unknown device ID: CONNACK 2 identifier rejected', async (t) => {
    const stranger = newDeviceKey('se')
    t.equal(await refusal(connectDevice(gw.mqttUrl, stranger)), 2)
    t.equal(lastReason(), 'unknown-device')
  })

  t.test('malformed client ID: CONNACK 2', async (t) => {
    t.equal(await refusal(connect(gw.mqttUrl, { clientId: 'not-a-device', username: 'x', password: Buffer.from('y') })), 2)
    t.equal(lastReason(), 'malformed-client-id')
  })

  t.test('empty client ID: CONNACK 2 [MQTT-3.1.3-8]', async (t) => {
    t.equal(await refusal(connect(gw.mqttUrl, { clientId: '', clean: true })), 2)
    t.equal(lastReason(), 'empty-client-id')
  })

  t.test('token signed by another key: CONNACK 4', async (t) => {
    const other = newDeviceKey('se')
    const forged = token({ ...other, id: se.id } as never)
    t.equal(await refusal(connect(gw.mqttUrl, { clientId: se.id, username: se.id, password: forged })), 4)
    t.equal(lastReason(), 'bad-token')
  })

  t.test('garbage password: CONNACK 4', async (t) => {
    t.equal(await refusal(connect(gw.mqttUrl, { clientId: se.id, username: se.id, password: Buffer.from('hunter2') })), 4)
    t.equal(lastReason(), 'bad-token')
  })

  t.test('username other than the device ID: CONNACK 4', async (t) => {
    t.equal(await refusal(connect(gw.mqttUrl, { clientId: se.id, username: 'someone', password: token(se) })), 4)
    t.equal(lastReason(), 'username-mismatch')
  })

  t.test('token outside the clock window: CONNACK 4', async (t) => {
    t.equal(await refusal(connectDevice(gw.mqttUrl, se, { tokenOpts: { iatMs: Date.now() - 10 * 60_000 } })), 4)
    t.equal(lastReason(), 'token-out-of-window')
    t.equal(await refusal(connectDevice(gw.mqttUrl, se, { tokenOpts: { iatMs: Date.now() + 10 * 60_000 } })), 4)
  })

  t.test('replayed token (same counter) is refused: CONNACK 4', async (t) => {
    const tok = token(se, { counter: 1_000_000 })
    const first = await connect(gw.mqttUrl, { clientId: se.id, username: se.id, password: tok })
    await endClient(first)
    t.equal(await refusal(connect(gw.mqttUrl, { clientId: se.id, username: se.id, password: tok })), 4)
    t.equal(lastReason(), 'token-replayed')
    t.equal(await refusal(connectDevice(gw.mqttUrl, se, { tokenOpts: { counter: 999_999 } })), 4, 'a lower counter too')
    t.equal(gw.registry.getDevice(se.id)!.lastAuthCounter, 1_000_000, 'counter persisted')
  })

  t.test('revoked device: CONNACK 5', async (t) => {
    const k = newDeviceKey('bare')
    registerSim(gw.registry, k)
    gw.registry.revoke(k.id)
    t.equal(await refusal(connectDevice(gw.mqttUrl, k)), 5)
    t.equal(lastReason(), 'device-revoked')
  })

  t.test('metrics count refusals by reason', async (t) => {
    const text = await (await fetch(gw.httpUrl + '/metrics')).text()
    t.match(text, /mhealth_connects_refused_total\{reason="unknown-device"\} 1/)
    t.match(text, /mhealth_connects_refused_total\{reason="token-replayed"\} 2/)
  })

  t.test('PUBLISH before CONNECT closes the connection and stores nothing [MQTT-3.1.0-1]', async (t) => {
    const before = gw.fileStore.pending() + gw.metrics.framesAccepted.get()
    const raw = await RawClient.open(gw.ports.mqtt!)
    raw.send(publishPacket(`mhealth/dev/${se.id}/frames`, frame(se, 1)))
    await raw.until(() => raw.closed, 5000, 'the gateway to close a connection that published before CONNECT')
    t.same(raw.packets, [], 'closed without an answer')
    t.equal(gw.metrics.framesAccepted.get() + gw.fileStore.pending(), before)
    t.notOk(gw.fileStore.hasFrame(se.id, 1), 'the frame is not stored')
  })
})
