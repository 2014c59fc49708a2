/**
 * The firmware drivers against the simulator's independent device models (written from
 * the same datasheets by another engineer): wake convention, packets, CRCs, FIFO layout.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { p256 } from '@noble/curves/nist.js'
import { Atecc608 as SeModel } from '../../hardware-sim/devices/atecc608.ts'
import { Max30102 as PpgModel } from '../../hardware-sim/devices/max30102.ts'
import { Atecc608 } from '../../firmware/drivers/atecc608.ts'
import { Max30102Decoding as Max30102 } from '../../firmware/drivers/max30102-decode.ts'
import type { I2CDevice } from '../../hardware-sim/hardware.ts'

/** Espruino-shaped I2C over device models; a write to address 0 is the wake pulse. */
function busOf(devs: I2CDevice[], now: () => number, wake?: (t: number) => void) {
  return {
    writeTo(a: number, d: number[] | Uint8Array) {
      if (a === 0 && wake) {
        wake(now())
        throw new Error("jshI2CWrite: slave doesn't ACK the transfer")
      }
      const dev = devs.find((x) => x.address === a)
      if (!dev || !dev.write(Uint8Array.from(d), now())) throw new Error("jshI2CWrite: slave doesn't ACK the transfer")
    },
    readFrom(a: number, n: number) {
      const dev = devs.find((x) => x.address === a)
      const r = dev ? dev.read(n, now()) : null
      if (!r) throw new Error("jshI2CRead: slave doesn't ACK the transfer")
      return r
    },
  }
}

const call = <T>(f: (cb: (e: string | null, d: T | null) => void) => void) =>
  new Promise<T>((res, rej) => f((e, d) => (e ? rej(new Error(e)) : res(d as T))))

t.test('ATECC608 driver against the model: personalise, public key, Nonce + Sign verifies', async (t) => {
  const model = new SeModel({ seed: 7 })
  const t0 = performance.now()
  const now = () => performance.now() - t0
  const se = new Atecc608(busOf([model], now, (tm) => model.wake(tm)), 0x60)
  const rev = await call<Uint8Array>((cb) => se.info(cb))
  t.equal(Buffer.from(rev).toString('hex'), '00006002', 'Info(Revision) of an ATECC608A')
  await t.rejects(call((cb) => se.publicKey(0, cb)), /execution error/, 'a blank part has no key yet')
  const pub = await call<Uint8Array>((cb) => se.personalize(0, cb))
  t.equal(pub.length, 64)
  const again = await call<Uint8Array>((cb) => se.publicKey(0, cb))
  t.same([...again], [...pub], 'GenKey mode 0 returns the same public key')
  for (const msg of ['frame one', 'frame two']) {
    const digest = createHash('sha256').update(msg).digest()
    const sig = await call<Uint8Array>((cb) => se.signDigest(0, new Uint8Array(digest), cb))
    t.ok(p256.verify(sig, digest, Uint8Array.from([4, ...pub]), { prehash: false, lowS: false }), `signature over "${msg}" verifies`)
  }
  t.equal(se.signs, 2)
  const pub2 = await call<Uint8Array>((cb) => se.personalize(0, cb))
  t.same([...pub2], [...pub], 'personalising a locked part keeps its key')
  await t.rejects(call((cb) => se.signDigest(0, new Uint8Array(31), cb)), /expected 32 bytes, got 31/)
})

t.test('ATECC608 driver: an absent part is reported, not hung', async (t) => {
  const se = new Atecc608(busOf([], () => 0, () => {}), 0x60)
  await t.rejects(call((cb) => se.info(cb)), /does not answer at 0x60/)
  t.notOk(se.busy, 'the driver is free again')
})

t.test('MAX30102 driver against the model: 100 samples/s, 18-bit, LED control, temperature', async (t) => {
  let now = 0
  const source = {
    light: (tm: number) => ({ red: 0.3 * (1 + 0.01 * Math.sin(tm / 130)), ir: 0.4 * (1 + 0.01 * Math.sin(tm / 130)), ambient: 0 }),
    fingerOn: () => true,
  }
  const model = new PpgModel({ source, seed: 1, dieTempC: 33.25 })
  const m = new Max30102(busOf([model], () => now), 0x57)
  m.init()
  const red = new Uint32Array(400)
  const ir = new Uint32Array(400)
  let n = 0
  for (let i = 0; i < 30; i++) {
    now += 100
    n += m.read(red, ir, n, 400)
    if (i === 5) m.startTemp()
    if (i === 7) m.readTemp()
  }
  t.equal(n, 300, '3 s at 100 Hz (simulated time: exact)')
  t.equal(m.overflows, 0)
  t.ok(ir.subarray(0, n).every((v) => v <= 262143), '18-bit values')
  t.notOk(m.fingerOff)
  const dc = ir.subarray(n - 20, n).reduce((a, b) => a + b, 0) / 20
  t.ok(dc > 0.3 * 262143 && dc < 0.85 * 262143, `IR DC steered into the band (${Math.round(dc)}, LED ${m.irPa})`)
  t.ok(Math.abs(m.tempC - 33.25) <= 0.0625, `die temperature ${m.tempC}`)
  // Stop polling for 0.5 s: the 32-sample FIFO overflows, and the loss is counted. 50 samples
  // into 32 places lose 18: OVF_COUNTER (5 bits, saturating at 0x1F, datasheet) counts them all.
  now += 500
  m.read(red, ir, 0, 400)
  t.equal(m.overflows, 1)
  t.equal(m.lostSamples, 18, 'every lost sample counted')
})

t.test('MAX30102 driver: a saturating finger gets less LED current until the DC is back in range', async (t) => {
  let now = 0
  const model = new PpgModel({ source: { light: () => ({ red: 0.9, ir: 0.95, ambient: 0 }), fingerOn: () => true }, seed: 2 })
  const m = new Max30102(busOf([model], () => now), 0x57)
  m.init()
  const red = new Uint32Array(64)
  const ir = new Uint32Array(64)
  let n = 0
  for (let i = 0; i < 60; i++) {
    now += 100
    n = m.read(red, ir, 0, 64)
  }
  const dc = ir.subarray(0, n).reduce((a, b) => a + b, 0) / n
  t.ok(m.irPa < 0x24, `IR current lowered to ${m.irPa}`)
  t.ok(dc <= 0.8 * 262143 && dc >= 0.3 * 262143, `IR DC ${Math.round(dc)} inside the band`)
})
