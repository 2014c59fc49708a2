/**
 * The AD8232 firmware, a separate entry since the burst pipeline became the default
 * (docs/firmware.md, "The AD8232"): it still builds through the syntax gate and streams
 * version-1 frames (250 Hz delta-packed ECG, 100 Hz red/IR) that verify with the protocol's
 * decoder.
 */
import t from 'tap'
import { nodeHash } from '../../protocol/node/hash-node.ts'
import { deviceIdFromBytes } from '../../protocol/portable/device-id.ts'
import { verifyFrame } from '../../protocol/node/verify.ts'
import { createBoardRig } from '../../hardware-sim/rig.ts'
import { legacyBundle } from './helpers/legacy-bundle.ts'
import { ringFrames } from './helpers/board-frames.ts'

t.test('the AD8232 entry builds and streams version-1 frames', async (t) => {
  const bundle = await legacyBundle()
  t.ok(bundle.length < 48 * 1024, `${bundle.length} bytes`)
  const secret = new Uint8Array(32).fill(0x33)
  const id = deviceIdFromBytes(nodeHash, new Uint8Array(10).fill(6))
  const rig = await createBoardRig({
    seed: 3, se: false, bundle,
    config: { id, profile: 'bare', secret: Buffer.from(secret).toString('hex'), windowS: 1, gw: { host: '127.0.0.1', mqttPort: 1, httpPort: 1 } },
  })
  t.teardown(() => rig.close())
  rig.board.advance(5_000)
  t.match(rig.lines.join('\n'), /mh-fw\/0\.1\.1-ad8232 up as/)
  const frames = ringFrames(rig.board).map((b) => verifyFrame(b, { profile: 'bare', secret }).payload)
  t.ok(frames.length >= 4, `${frames.length} frames`)
  for (const p of frames) {
    t.equal(p.v, 1, 'version 1')
    t.equal(p.ecgHz, 250)
    t.equal((p.ecg as ArrayLike<number>).length, 250, 'a second of 250 Hz AD8232 samples')
  }
})
