/**
 * Verification in worker threads gives the same answers as inline, and a gateway
 * configured with `verify: 'pool'` stores good frames and NACKs bad ones.
 */
import t from 'tap'
import { inlineChecker } from '../../gateway/protocol-codec.ts'
import { poolChecker, autoChecker } from '../../gateway/verify-pool.ts'
import type { DeviceKey, FrameChecker } from '../../gateway/frame-check.ts'
import { startTestGateway, cleanup } from './helpers/gateway.ts'
import { makeChecker } from '../../gateway/gateway.ts'
import { connectDevice, endClient, frame, newDeviceKey, publishAcked, registerSim, type SimKey } from './helpers/devices.ts'

const keyOf = (k: SimKey): DeviceKey =>
  k.type === 'p256' ? { profile: 'se', publicKey: k.publicKey, secret: null } : { profile: 'bare', publicKey: null, secret: k.secret }

async function outcome(c: FrameChecker, f: Uint8Array, key: DeviceKey, kid: string): Promise<string> {
  try {
    const facts = await c.check(f, key, kid)
    return `ok seq=${facts.seq} kid=${facts.kid}`
  } catch (err) {
    return `rejected ${(err as { code?: string }).code}`
  }
}

t.test('pool and auto checkers agree with inline', async (t) => {
  const inline = inlineChecker()
  const pool = poolChecker(2)
  const auto = autoChecker(1, inlineChecker())
  t.teardown(() => Promise.all([pool.close(), auto.close()]))
  const se = newDeviceKey('se')
  const bare = newDeviceKey('bare')
  const flipped = frame(se, 3)
  flipped[flipped.length - 1]! ^= 1
  const cases: Array<[string, Uint8Array, SimKey, string]> = [
    ['ES256 frame', frame(se, 1), se, se.id],
    ['HMAC frame', frame(bare, 2), bare, bare.id],
    ['flipped signature', flipped, se, se.id],
    ['garbage', Buffer.from('not a frame'), se, se.id],
    ['kid of another device', frame(se, 4), se, bare.id],
    ['ES256 frame for a bare key', frame(se, 5), bare, se.id],
    // a payload that is a view into a larger buffer (as from a socket)
    ['frame inside a larger buffer', Buffer.concat([Buffer.alloc(100, 7), frame(bare, 6), Buffer.alloc(50, 9)]).subarray(100, 100 + frame(bare, 6).length), bare, bare.id],
  ]
  for (const [name, f, k, kid] of cases) {
    const want = await outcome(inline, f, keyOf(k), kid)
    t.equal(await outcome(pool, f, keyOf(k), kid), want, `pool: ${name} (${want})`)
    t.equal(await outcome(auto, f, keyOf(k), kid), want, `auto: ${name}`)
  }
  const noKey: DeviceKey = { profile: 'se', publicKey: null, secret: null }
  const wantNoKey = await outcome(inline, frame(se, 7), noKey, se.id)
  t.equal(await outcome(pool, frame(se, 7), noKey, se.id), wantNoKey, `pool: se device without a key (${wantNoKey})`)
  const many = await Promise.all(Array.from({ length: 300 }, (_, i) => pool.check(frame(bare, 100 + i), keyOf(bare), bare.id)))
  t.same(many.map((f) => f.seq), Array.from({ length: 300 }, (_, i) => 100 + i), '300 concurrent checks, each answered with its own frame')
  await pool.close()
  await t.rejects(pool.check(frame(bare, 1), keyOf(bare), bare.id), /closed/)
})

t.test('makeChecker follows the config', async (t) => {
  const c = await makeChecker({ verify: 'inline', verifyWorkers: 0 })
  const se = newDeviceKey('se')
  t.match(await outcome(c, frame(se, 1), keyOf(se), se.id), /^ok/)
  await c.close()
})

t.test('a gateway verifying in a worker pool', async (t) => {
  const gw = await startTestGateway({}, { checker: poolChecker(1) })
  t.teardown(() => cleanup(gw))
  const se = newDeviceKey('se')
  registerSim(gw.registry, se, 'p-1')
  const dev = await connectDevice(gw.mqttUrl, se)
  await publishAcked(dev, `mhealth/dev/${se.id}/frames`, frame(se, 1))
  const bad = frame(se, 2)
  bad[bad.length - 1]! ^= 1
  await publishAcked(dev, `mhealth/dev/${se.id}/frames`, bad)
  t.ok(gw.fileStore.hasFrame(se.id, 1))
  t.notOk(gw.fileStore.hasFrame(se.id, 2))
  t.equal(gw.metrics.framesRejected.get({ reason: 'signature' }), 1)
  await endClient(dev)
})
