/**
 * The MAX30102 driver (firmware/drivers/max30102.ts) against the register-level device model,
 * on the FIFO bugs reference drivers are known for (datasheet, registers 0x04-0x06): the unread
 * count is (WR_PTR - RD_PTR) mod 32 across the 31 -> 0 wrap; WR == RD is empty OR full (32), and
 * a full FIFO with OVF_COUNTER 0 must not read as empty; OVF_COUNTER counts lost samples up to
 * 0x1F and they become a gap in the frame, never invented samples; and a SPO2_SR x LED_PW pair
 * the chip cannot run is refused with a clear error.
 */
import t from 'tap'
import { Max30102 as Driver, OVF_MAX } from '../../firmware/drivers/max30102.ts'
import { Max30102Decoding } from '../../firmware/drivers/max30102-decode.ts'
import { Max30102 as Model, REG } from '../../hardware-sim/devices/max30102.ts'
import { Acquirer } from '../../firmware/acquire.ts'
import { Max30003 as EcgDriver } from '../../firmware/drivers/max30003.ts'
import { Max30003 as EcgModel } from '../../hardware-sim/devices/max30003.ts'
import { steadyFinger } from '../../hardware-sim/rig.ts'

function rig(decoding = false) {
  const clock = { now: 0 }
  const model = new Model({ source: steadyFinger, seed: 7, noiseNa: 0 })
  const bus = {
    writeTo: (_a: number, d: number[] | Uint8Array) => { model.write(Uint8Array.from(d), clock.now) },
    readFrom: (_a: number, n: number) => model.read(n, clock.now),
  }
  const drv = decoding ? new Max30102Decoding(bus, 0x57) : new Driver(bus, 0x57)
  /** WR_PTR, OVF_COUNTER, RD_PTR as the chip holds them (read through the model, not the driver). */
  const ptrs = (): number[] => {
    model.write(Uint8Array.of(REG.FIFO_WR_PTR), clock.now)
    return [...model.read(3, clock.now)]
  }
  return { clock, model, drv, ptrs }
}

t.test('pointer wrap 31 -> 0: the count is (WR - RD) mod 32', async (t) => {
  const { clock, drv, ptrs } = rig()
  drv.init({ sps: 100 }) // 1 sample per 10 ms, no averaging
  clock.now = 300
  t.equal(drv.burst(32)!.length, 30 * 6, '30 samples')
  clock.now = 350 // 5 more: WR wraps from 31 to 3
  t.same(ptrs(), [3, 0, 30], 'WR 3 < RD 30 after the wrap')
  t.not(drv.burst(32), null)
  t.equal(drv.n, 5, '(3 - 30) mod 32 = 5')
  t.same(ptrs(), [3, 0, 3])
})

t.test('a FIFO that just filled (WR == RD, OVF 0) reads as 32 samples, not as empty', async (t) => {
  for (const decoding of [false, true]) {
    const { clock, drv, ptrs } = rig(decoding)
    drv.init({ sps: 100 })
    clock.now = 100
    drv.burst(32)
    clock.now = 420 // exactly 32 more
    t.same(ptrs(), [10, 0, 10], 'full: WR == RD and nothing lost yet')
    if (decoding) {
      const red = new Uint32Array(40)
      const ir = new Uint32Array(40)
      t.equal((drv as Max30102Decoding).read(red, ir, 0, 40), 32, 'decoding driver: 32 samples')
      t.ok(ir[31]! > 0, 'real samples')
    } else {
      const rx = drv.burst(32)
      t.equal(drv.n, 32, 'burst driver: 32 samples')
      t.equal(rx && rx.length, 192)
    }
    t.equal(drv.lost, 0, 'none lost')
    t.same(ptrs(), [10, 0, 10], 'all read: RD caught up')
    clock.now = 430
    drv.burst(32)
    t.equal(drv.n, 1, 'and the next read finds only the new sample')
  }
})

t.test('WR == RD with OVF > 0: full, the lost samples counted; OVF saturates at 0x1F', async (t) => {
  const { clock, drv, ptrs } = rig()
  drv.init({ sps: 100 })
  clock.now = 400 // 40 samples, rollover on: the newest 32 kept, 8 lost
  t.same(ptrs(), [8, 8, 8])
  drv.burst(32)
  t.equal(drv.n, 32)
  t.equal(drv.lost, 8, 'lost = OVF_COUNTER')
  t.equal(drv.lostSamples, 8)
  t.equal(drv.overflows, 1)
  t.equal(ptrs()[1], 0, 'popping cleared OVF_COUNTER')
  clock.now = 400 + 1000 // 100 samples: 68 lost, more than the counter holds
  t.equal(ptrs()[1], 0x1f, 'OVF_COUNTER saturates at 0x1F (datasheet), not 0xF')
  drv.burst(32)
  t.equal(drv.lost, OVF_MAX, 'the driver reports the saturated count: a floor')
  t.equal(OVF_MAX, 0x1f)
})

t.test('invalid SPO2_SR x LED_PW pairs are refused; allowed ones configure the chip', async (t) => {
  const { clock, model, drv } = rig()
  t.throws(() => drv.init({ sps: 3200 }), /MAX30102: 3200sps\/411us\/average 1 not allowed/)
  t.throws(() => drv.init({ sps: 800, pw: 411 }), /800sps\/411us\/average 1 not allowed/)
  t.throws(() => drv.init({ sps: 1000, pw: 215 }), /1000sps\/215us\/average 1 not allowed/)
  t.throws(() => drv.init({ sps: 3200, pw: 69 }), /3200sps\/69us\/average 1 not allowed/, '3200 sps is heart-rate mode only')
  t.throws(() => drv.init({ sps: 120 }), /120sps\/411us\/average 1 not allowed/)
  t.throws(() => drv.init({ sps: 100, pw: 100 }), /100sps\/100us\/average 1 not allowed/)
  drv.init({ sps: 1600, pw: 69 })
  model.write(Uint8Array.of(REG.SPO2_CONFIG), clock.now)
  t.equal(model.read(1, clock.now)[0], 0x20 | (6 << 2) | 0, 'SPO2_CONFIG: 4096 nA, 1600 sps, 69 us')
  t.equal(model.sampleRate(), 1600, 'the chip runs at the rate asked for')
  clock.now += 10
  const rx = drv.burst(32)!
  t.equal(drv.n, 16, '16 samples in 10 ms')
  t.equal(rx[2]! & 7, 0, '69 us: 15-bit samples, the 3 low bits zero')
  drv.init({ sps: 1000, pw: 118 })
  t.equal(model.sampleRate(), 1000)
})

t.test('the device model caps an invalid pair the way the chip does, per mode', async (t) => {
  const { clock, model } = rig()
  const set = (reg: number, v: number) => model.write(Uint8Array.of(reg, v), clock.now)
  set(REG.MODE_CONFIG, 0x03) // SpO2
  set(REG.SPO2_CONFIG, 0x20 | (7 << 2) | 0) // 3200 sps, 69 us
  t.equal(model.sampleRate(), 1600, 'SpO2 mode: 3200 sps is not available, 1600 at most')
  set(REG.MODE_CONFIG, 0x02) // heart rate
  t.equal(model.sampleRate(), 3200, 'heart-rate mode: 3200 sps at 69 us')
  set(REG.SPO2_CONFIG, 0x20 | (7 << 2) | 3)
  t.equal(model.sampleRate(), 1000, 'heart-rate mode at 411 us: capped')
})

/** The acquisition with the real drivers and models, the PPG burst driven by hand. */
function acquisition() {
  let now = 0
  const ecgModel = new EcgModel({ source: { mv: () => 0, leadOff: () => false } })
  const ppgModel = new Model({ source: steadyFinger, seed: 3 })
  const ecg = new EcgDriver({ send: (tx) => ecgModel.transfer(tx, now) }, () => now)
  const ppg = new Driver({
    writeTo: (_a: number, d: number[] | Uint8Array) => { ppgModel.write(Uint8Array.from(d), now) },
    readFrom: (_a: number, n: number) => ppgModel.read(n, now),
  }, 0x57)
  ecg.init({ rate: 128, gain: 20 })
  ppg.init({ sps: 100, average: 2 }) // 50 FIFO samples/s, one every 20 ms
  const gaps: number[][] = []
  const acq: Acquirer = new Acquirer(ecg, () => ecgModel.intb.level(now), ppg, { ecgHz: 128, ppgHz: 50, windowS: 2, drainMs: 180 }, () => now, (w, token) => {
    for (let i = 0; i < w.gaps.length; i += 3) if (w.gaps[i] === 1) gaps.push(w.gaps.slice(i, i + 3))
    acq.release(w, token)
  })
  acq.start()
  clearInterval(acq.timer)
  // window hand-ons run from setTimeout: let them run after each drain
  const drainAt = async (ms: number) => { now = ms; acq.drain(); await new Promise((r) => setTimeout(r, 2)) }
  /** A drain at `ms` that bursts the PPG FIFO. */
  const burstAt = (ms: number) => { acq.sincePpg = acq.ppgEvery; return drainAt(ms) }
  return { acq, gaps, drainAt, burstAt }
}

t.test('in the frame: a full FIFO gives all 32 samples; lost samples become a gap of exactly that many', async (t) => {
  const a = acquisition()
  for (let ms = 180; ms <= 1800; ms += 180) await a.drainAt(ms)
  await a.burstAt(1900)
  const last = a.acq.lastPpgMs
  const s0 = { ppg: a.acq.stats.ppg, lost: a.acq.stats.ppgLost }
  await a.burstAt(last + 640) // exactly 32 samples waiting: WR == RD, OVF 0
  t.equal(a.acq.stats.ppg - s0.ppg, 32, 'all 32 read')
  t.equal(a.acq.stats.ppgLost - s0.lost, 0, 'nothing lost, no gap')
  const s1 = { ppg: a.acq.stats.ppg, lost: a.acq.stats.ppgLost }
  await a.burstAt(last + 640 + 1040) // 52 samples: 20 lost
  t.equal(a.acq.stats.ppg - s1.ppg, 32, 'the newest 32 read')
  t.equal(a.acq.stats.ppgLost - s1.lost, 20, 'OVF_COUNTER 20: 20 lost, counted')
  const s2 = a.acq.stats.ppgLost
  await a.burstAt(last + 640 + 1040 + 2000) // 100 samples: 68 lost, OVF_COUNTER saturated at 31
  t.equal(a.acq.stats.ppgLost - s2, 68, 'past saturation the elapsed time gives the count')
  for (let ms = last + 3680 + 180; ms <= 12000; ms += 180) await a.drainAt(ms)
  t.equal(a.gaps[0]![2], 20, 'the 20 lost: one gap')
  t.equal(a.gaps.slice(1).reduce((s, g) => s + g[2]!, 0), 68, `the 68 lost: a gap, split at window boundaries (${JSON.stringify(a.gaps)})`)
})
