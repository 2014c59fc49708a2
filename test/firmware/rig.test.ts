/**
 * hardware-sim/rig.ts: the board the fleet simulator and the firmware tests share.
 * Wiring works (SE wake forwarded, MAX30102 and AD8232 read, battery sensed) and the
 * built firmware runs from .bootcde with the given configuration.
 */
import t from 'tap'
import { nodeHash } from '../../protocol/node/hash-node.ts'
import { deviceIdFromPublicKey, isValidDeviceId } from '../../protocol/portable/device-id.ts'
import { createBoardRig } from '../../hardware-sim/rig.ts'

t.test('SE rig: the wake is forwarded, the key reads back, the same dir keeps the key', async (t) => {
  const rig = await createBoardRig({ seed: 4 })
  const pub = rig.readPublicKey()
  t.equal(pub.length, 65)
  t.equal(pub[0], 4, 'uncompressed P-256 point')
  t.ok(isValidDeviceId(nodeHash, deviceIdFromPublicKey(nodeHash, pub)))
  rig.board.close()
  const again = await createBoardRig({ seed: 4, dir: rig.dir })
  t.teardown(() => {
    again.close()
    rig.close()
  })
  t.same(again.readPublicKey(), pub, 'a rig on the same dir is the same board (flash and SE state)')
})

t.test('bare rig without SE streams frames into flash when the gateway is unreachable', async (t) => {
  const rig = await createBoardRig({
    seed: 2, se: false,
    config: { id: 'rigtestrigtestaa' + 'a', profile: 'bare', secret: '11'.repeat(32), gw: { host: '127.0.0.1', mqttPort: 1, httpPort: 1 } },
  })
  t.teardown(() => rig.close())
  t.equal(rig.se, null)
  // advance() runs virtual time synchronously: no socket event can land in it, so the
  // counts below are the same on any machine.
  rig.board.advance(9_000) // 2 s windows
  const s = rig.status()!
  t.ok(s.up, 'firmware started from the configuration')
  t.equal(s.stats.frames, 4, 'one frame built and signed per 2 s window')
  t.equal(s.sampler!.missed, 0, 'no ECG sample missed')
  t.equal(s.uplink!.stored, s.stats.frames, 'every frame stored in the flash ring while offline')
  t.match(rig.lines.join('\n'), /up as rigtestrigtestaaa \(bare\)/)
})
