import t from 'tap'
import vm from 'node:vm'
import { instrument } from '../../../hardware-sim/cost/instrument.ts'
import { CALIBRATION, CostModel, NATIVE_COSTS, sha256Blocks, usPerUnitFor, type Setting } from '../../../hardware-sim/cost/model.ts'

const close = (a: number, b: number, rel = 1e-12): boolean => Math.abs(a - b) <= rel * Math.max(1, Math.abs(b))

t.test('the calibration loop lands exactly on 50x, 90x and 180x the x86 time', async (t) => {
  const ctx = vm.createContext({ __cost: { u: 0 } })
  vm.runInContext(instrument(CALIBRATION.loop.source).code, ctx)
  const units = (ctx.__cost as { u: number }).u
  t.equal(units, CALIBRATION.loop.units)
  const want: Record<Setting, number> = { low: 50 * 99_000, central: 90 * 99_000, high: 180 * 99_000 }
  for (const s of ['low', 'central', 'high'] as Setting[]) {
    const m = new CostModel(s)
    t.ok(close(m.unitsUs(units), want[s]), `${s}: ${m.unitsUs(units)} µs`)
  }
  t.ok(close(new CostModel().usPerUnit, (90 * 99_000) / 1_400_012.5), 'central is the default')
})

t.test('one measured loop on a real board replaces the slowdown factors', async (t) => {
  const cal = { ...CALIBRATION, measuredLoopUs: 7_000_000 }
  for (const s of ['low', 'central', 'high'] as Setting[]) t.ok(close(usPerUnitFor(s, cal), 7_000_000 / CALIBRATION.loop.units))
  t.ok(close(new CostModel('high', { usPerUnit: 2 }).unitsUs(10), 20), 'an explicit µs/unit wins')
})

t.test('I2C: 9 bit times per byte plus start, address and stop, plus the driver overhead', async (t) => {
  const m = new CostModel()
  const o = NATIVE_COSTS.i2cTransactionUs
  t.ok(close(m.i2cUs(1, 100_000) - m.i2cUs(0, 100_000), 90), '90 µs per byte at 100 kHz')
  t.ok(close(m.i2cUs(1, 400_000) - m.i2cUs(0, 400_000), 22.5), '22.5 µs per byte at 400 kHz')
  t.ok(close(m.i2cUs(0, 100_000), o + 110), 'an address-only transaction (a NACKed poll): 11 bit times')
  t.ok(close(m.i2cUs(192, 400_000), o + ((11 + 9 * 192) * 1e6) / 400_000), 'a full MAX30102 FIFO burst (32 x 6 bytes) at 400 kHz')
  t.throws(() => m.i2cUs(-1, 100_000), RangeError)
  t.throws(() => m.i2cUs(1.5, 100_000), RangeError)
  t.throws(() => m.i2cUs(1, 0), RangeError)
})

t.test('SPI: 8 clocks per byte at the baud rate plus the transaction overhead', async (t) => {
  const m = new CostModel()
  t.ok(close(m.spiUs(0, 4e6), NATIVE_COSTS.spiTransactionUs))
  t.ok(close(m.spiUs(97, 4e6) - m.spiUs(0, 4e6), (97 * 8) / 4), '97 bytes at 4 MHz: 194 µs on the wire')
  t.throws(() => m.spiUs(1, -1), RangeError)
})

t.test('SHA-256 per 64-byte block, HMAC through PBKDF2 as two passes', async (t) => {
  t.same([0, 55, 56, 64, 119, 120].map(sha256Blocks), [1, 1, 2, 2, 2, 3], 'padding: 9 bytes of the message length and 0x80')
  const m = new CostModel()
  const { sha256BlockUs: b, sha256CallUs: c, pbkdf2CallUs: p } = NATIVE_COSTS
  t.ok(close(m.sha256Us(600), c + 10 * b))
  // 32-byte key: inner = ipad block + 100-byte message + 4-byte index -> 168 bytes, 3 blocks; outer 2 blocks.
  t.ok(close(m.hmacSha256Us(32, 100), p + 5 * b))
  t.ok(close(m.hmacSha256Us(100, 100), p + (2 + 3 + 2) * b), 'a key over 64 bytes is hashed first')
})

t.test('flash: a page program per 256-byte page touched, erase per 4 KB sector', async (t) => {
  const m = new CostModel()
  const { flashPageProgramUs: pp, flashByteUs: pb, flashSectorEraseUs: se } = NATIVE_COSTS
  t.equal(m.flashWriteUs(0), 0)
  t.ok(close(m.flashWriteUs(256), pp + 256 * pb))
  t.ok(close(m.flashWriteUs(256, 128), 2 * pp + 256 * pb), 'unaligned: two pages')
  t.ok(close(m.flashWriteUs(1000, 4000), 5 * pp + 1000 * pb), 'pages 15..19')
  t.ok(close(m.flashEraseUs(3), 3 * se))
})

t.test('interpreter-side native costs scale with the setting, hardware ones do not', async (t) => {
  const lo = new CostModel('low')
  const hi = new CostModel('high')
  t.ok(close(hi.nativeCallUs() / lo.nativeCallUs(), 180 / 50))
  t.ok(close(hi.dispatchUs() / lo.dispatchUs(), 180 / 50))
  t.ok(close(hi.dispatchUs(), CALIBRATION.callbackUnits * hi.usPerUnit))
  t.equal(hi.i2cUs(6, 400_000), lo.i2cUs(6, 400_000))
  t.ok(close(lo.analogReadUs(), lo.nativeCallUs() + NATIVE_COSTS.adcReadUs))
})

t.test('bad settings and overrides are refused with what was expected', async (t) => {
  t.throws(() => new CostModel('fast' as Setting), /expected setting low, central or high, got "fast"/)
  t.throws(() => new CostModel('central', { usPerUnit: 0 }), /expected usPerUnit > 0/)
  t.throws(() => new CostModel('central', { native: { sha256BlockUs: -1 } }), /expected native.sha256BlockUs >= 0/)
  t.throws(() => new CostModel('central', { callbackUnits: -5 }), /expected nativeCallUnits and callbackUnits >= 0/)
})
