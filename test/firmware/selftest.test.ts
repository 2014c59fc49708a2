/**
 * selfTest() on a virtual board against the same values computed on Node: the fixed
 * version-2 test frame encoded field by field with the protocol's general CBOR encoder (not
 * the firmware's own), its Sig_structure hashed and its MAC_structure MACed with node:crypto
 * over the protocol's generic COSE structures. An engineer compares a flashed board's
 * printout with these.
 */
import t from 'tap'
import { createHash, createHmac } from 'node:crypto'
import { CborWriter } from '../../protocol/portable/cbor.ts'
import { sign1ToBeSigned, mac0ToBeMaced } from '../../protocol/portable/cose.ts'
import { selftestWindow, selftestKey, SELFTEST_ID, SELFTEST_FRAME, SELFTEST_META } from '../../firmware/selftest.ts'
import { Frame2 } from '../../firmware/frame2.ts'
import { createBoardRig, advanceUntil } from '../../hardware-sim/rig.ts'

/** The test frame's payload, key by key in ascending order (frame-v2 contract). */
function expectedPayload(): Uint8Array {
  const win = selftestWindow()
  const w = new CborWriter(4096)
  w.mapHeader(17)
  w.uint(0).uint(2)
  w.uint(1).ascii(SELFTEST_ID)
  w.uint(2).uint(1) // seq
  w.uint(3).uint(1) // boot
  w.uint(4).uint(1700000000000) // t0
  w.uint(5).uint(256) // ecgHz
  w.uint(7).uint(25) // ppgHz
  w.uint(13).uint(32 | 64) // FLAG_GAP (the PPG gap) | FLAG_RECOVERED (faults 1)
  w.uint(14).uint(0) // dropped
  w.uint(16).ascii('selftest')
  w.uint(17).int(3125) // 31.25 °C
  w.uint(18).bytes(win.ecg.subarray(0, 3 * win.ecgN))
  w.uint(19).bytes(win.ppg.subarray(0, 6 * win.ppgN))
  w.uint(20).uint(80) // gain
  w.uint(21).arrayHeader(1).arrayHeader(3).uint(1).uint(10).uint(2)
  w.uint(22).arrayHeader(2).uint(812).uint(797)
  w.uint(23).uint(1)
  return w.copy()
}

t.test('the test window: MAX30003 words and MAX30102 samples as the chips send them', async (t) => {
  const w = selftestWindow()
  const word = (k: number) => (w.ecg[3 * k]! << 16) | (w.ecg[3 * k + 1]! << 8) | w.ecg[3 * k + 2]!
  const count = (k: number) => ((word(k) >> 6) << 14) >> 14 // D[23:6], 18-bit two's complement
  t.equal(count(0), -200 * 16)
  t.equal(count(7), (((7 * 37) % 400) - 200) * 16)
  t.equal((word(0) >> 3) & 7, 0, 'ETAG valid')
  t.equal((word(255) >> 3) & 7, 2, 'the last word tagged valid, end of FIFO')
  t.equal((w.ppg[0]! << 16) | (w.ppg[1]! << 8) | w.ppg[2]!, 100000, 'red of sample 0')
  t.equal((w.ppg[9]! << 16) | (w.ppg[10]! << 8) | w.ppg[11]!, 150000 + 1231, 'IR of sample 1')
  t.same(Buffer.from(new Frame2(SELFTEST_FRAME, 256, 25).build(w, SELFTEST_META)).toString('hex'), Buffer.from(expectedPayload()).toString('hex'),
    'the firmware frame builder (on Node) gives the bytes the general encoder gives')
})

t.test('selfTest() prints the known CBOR, Sig_structure SHA-256, HMAC, and finds the SE', async (t) => {
  const payload = expectedPayload()
  const cbor = Buffer.from(payload).toString('hex')
  const sigSha = createHash('sha256').update(sign1ToBeSigned(SELFTEST_ID, payload)).digest('hex')
  const hmac = createHmac('sha256', selftestKey()).update(mac0ToBeMaced(SELFTEST_ID, payload)).digest('hex')

  const rig = await createBoardRig({ boot: false })
  t.teardown(() => rig.close())
  rig.board.boot()
  rig.lines.length = 0
  rig.board.repl('selfTest()')
  advanceUntil(rig.board, () => rig.lines.some((l) => l.startsWith('SELFTEST se')), 2000)
  const get = (k: string) => rig.lines.find((l) => l.startsWith('SELFTEST ' + k + ' '))?.slice(10 + k.length)
  t.equal(get('cbor'), cbor, 'CBOR hex matches Node')
  t.equal(get('sig-sha256'), sigSha, 'Sig_structure SHA-256 matches Node')
  t.equal(get('hmac'), hmac, 'bare-profile HMAC matches node:crypto')
  t.match(get('se'), /^ok rev 00006002/, 'the secure element answers')
})

t.test('selfTest() on a board without a secure element says so and still prints the known values', async (t) => {
  const payload = expectedPayload()
  const rig = await createBoardRig({ se: false, boot: false })
  t.teardown(() => rig.close())
  rig.board.boot()
  rig.board.repl('selfTest()')
  const se = rig.advanceUntilLine(/^SELFTEST se /, 2000)
  t.match(se, /^SELFTEST se absent \(secure element does not answer at 0x60\)/)
  t.ok(rig.lines.includes('SELFTEST cbor ' + Buffer.from(payload).toString('hex')), 'CBOR hex as on Node')
})
