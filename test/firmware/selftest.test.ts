/**
 * selfTest() on a virtual board against the same values computed on Node with
 * protocol/node: an engineer compares a flashed board's printout with these.
 */
import t from 'tap'
import { createHash, createHmac } from 'node:crypto'
import { CborWriter } from '../../protocol/portable/cbor.ts'
import { encodePayload } from '../../protocol/portable/frame.ts'
import { sign1ToBeSigned, mac0ToBeMaced, buildMac0 } from '../../protocol/portable/cose.ts'
import { verifyFrame } from '../../protocol/node/verify.ts'
import { selftestPayload, selftestKey, SELFTEST_ID } from '../../firmware/selftest.ts'
import { createBoardRig, advanceUntil } from '../../hardware-sim/rig.ts'

t.test('selfTest() prints the known CBOR, Sig_structure SHA-256, HMAC, and finds the SE', async (t) => {
  const payload = encodePayload(new CborWriter(4096), selftestPayload())
  const cbor = Buffer.from(payload).toString('hex')
  const sigSha = createHash('sha256').update(sign1ToBeSigned(SELFTEST_ID, payload)).digest('hex')
  const hmac = createHmac('sha256', selftestKey()).update(mac0ToBeMaced(SELFTEST_ID, payload)).digest()
  // The Node side agrees the frame is well-formed and authentic under the test key.
  const f = verifyFrame(buildMac0(SELFTEST_ID, payload, hmac), { profile: 'bare', secret: selftestKey() })
  t.equal(f.payload.seq, 1)
  t.same(Array.prototype.slice.call(f.payload.ecg as ArrayLike<number>, 0, 3), [1848, 1885, 1922], 'ECG samples decode as built')

  const rig = await createBoardRig({ boot: false })
  t.teardown(() => rig.close())
  rig.board.boot()
  rig.lines.length = 0
  rig.board.repl('selfTest()')
  advanceUntil(rig.board, () => rig.lines.some((l) => l.startsWith('SELFTEST se')), 2000)
  const get = (k: string) => rig.lines.find((l) => l.startsWith('SELFTEST ' + k + ' '))?.slice(10 + k.length)
  t.equal(get('cbor'), cbor, 'CBOR hex matches Node')
  t.equal(get('sig-sha256'), sigSha, 'Sig_structure SHA-256 matches Node')
  t.equal(get('hmac'), hmac.toString('hex'), 'bare-profile HMAC matches node:crypto')
  t.match(get('se'), /^ok rev 00006002/, 'the secure element answers')
})

t.test('selfTest() on a board without a secure element says so and still prints the known values', async (t) => {
  const payload = encodePayload(new CborWriter(4096), selftestPayload())
  const rig = await createBoardRig({ se: false, boot: false })
  t.teardown(() => rig.close())
  rig.board.boot()
  rig.board.repl('selfTest()')
  const se = rig.advanceUntilLine(/^SELFTEST se /, 2000)
  t.match(se, /^SELFTEST se absent \(secure element does not answer at 0x60\)/)
  t.ok(rig.lines.includes('SELFTEST cbor ' + Buffer.from(payload).toString('hex')), 'CBOR hex as on Node')
})
