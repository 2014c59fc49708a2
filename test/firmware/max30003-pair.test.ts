/**
 * The firmware's MAX30003 driver against the simulator's MAX30003 model: two readings of the
 * datasheet, written apart, must agree. A ramp source makes every sample say when it was
 * taken, so a lost, repeated or reordered sample shows as a step that is not one period.
 */
import t from 'tap'
import { Max30003 as Driver, REG } from '../../firmware/drivers/max30003.ts'
import { Max30003 as Model, decodeFifoWord } from '../../hardware-sim/devices/max30003.ts'
import type { EcgSource } from '../../hardware-sim/signals/types.ts'
import { EcgSynth } from '../../hardware-sim/signals/ecg-synth.ts'

/** 0.001 mV per ms: slow enough to stay inside full scale for minutes at gain 20. */
const ramp: EcgSource = { mv: (tMs) => -10 + tMs / 1000, leadOff: () => false }

function pair(rate: number, gain = 20) {
  let now = 0
  const model = new Model({ source: ramp })
  const driver = new Driver({ send: (tx) => model.transfer(tx, now) }, () => now)
  driver.init({ rate, gain, efit: 16 })
  // The transport checks below follow a ramp sample by sample: turn the digital high-pass
  // (DHPF, D[14]) and low-pass (DLPF, D[13:12]) off so the samples are the ramp itself.
  driver.write(REG.CNFG_ECG, driver.read(REG.CNFG_ECG) & ~0x7000)
  return { model, driver, setNow: (ms: number) => { now = ms }, get now() { return now } }
}

/** Counts of each 3-byte FIFO word in buf[0..n*3). */
function counts(buf: Uint8Array, n: number): number[] {
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push(decodeFifoWord((buf[3 * i] << 16) | (buf[3 * i + 1] << 8) | buf[3 * i + 2]).counts)
  return out
}

for (const rate of [128, 256, 512]) {
  t.test(`${rate} sps: drains every 50..110 ms lose and repeat nothing`, async (t) => {
    const p = pair(rate)
    const buf = new Uint8Array(3 * 64)
    const got: number[] = []
    let ms = 0
    // Intervals inside the FIFO's slack at every rate (32 words: 62.5 ms at 512 sps).
    const step = rate === 512 ? [20, 35, 50, 55] : [50, 70, 90, 110]
    for (let i = 0; i < 200; i++) {
      ms += step[i % step.length]
      p.setNow(ms)
      const r = p.driver.drain(buf, 0)
      t.equal(r.overflow, false, `drain ${i} at ${ms} ms: no overflow`)
      got.push(...counts(buf, r.n))
    }
    // The model's own count of samples made by now, minus those still in its FIFO.
    const made = Math.round((ms - 0) * rate / 1000)
    t.ok(got.length >= made - 33 && got.length <= made + 1, `${got.length} samples drained of ~${made} made`)
    // 0.001 mV/ms at gain 20, VREF 1000 mV: counts rise by 2.62144 per ms, i.e. 2621.44/rate per sample.
    const perSample = 2621.44 / rate
    // The first samples stand for instants before the SYNCH (the chip's group delay), so the
    // model holds them at the source's first value: the transport check starts after them.
    let bad = 0
    for (let i = 16; i < got.length; i++) if (Math.abs(got[i] - got[i - 1] - perSample) > 1.01) bad++
    t.equal(bad, 0, 'every step between consecutive samples is one sample period')
    t.equal(p.driver.overflows, 0)
  })
}

t.test('a drain later than the FIFO holds is an overflow: reported, FIFO reset, no invented samples', async (t) => {
  const p = pair(256)
  const buf = new Uint8Array(3 * 64)
  // The first drain after init may only finish the PLL wait (SYNCH again): drain twice.
  p.setNow(60)
  p.driver.drain(buf, 0)
  p.setNow(100)
  const first = p.driver.drain(buf, 0)
  t.equal(first.overflow, false)
  t.ok(first.n > 0, `a drain 40 ms after the last: ${first.n} samples`)
  // 400 ms without a drain: 102 samples due, the FIFO holds 32.
  p.setNow(500)
  const r = p.driver.drain(buf, 0)
  t.equal(r.overflow, true, 'overflow reported')
  t.equal(r.n, 0, 'no samples handed on from a corrupted FIFO')
  t.ok(r.lostSamples >= 90 && r.lostSamples <= 110, `lost ${r.lostSamples} samples, estimated from 400 ms at 256 sps`)
  // After the reset the stream continues: samples again, consecutive, no overflow.
  const after: number[] = []
  for (let ms = 560; ms <= 1500; ms += 60) {
    p.setNow(ms)
    const d = p.driver.drain(buf, 0)
    t.equal(d.overflow, false, `drain at ${ms} ms after the reset`)
    after.push(...counts(buf, d.n))
  }
  t.ok(after.length >= 200, `${after.length} samples after the reset`)
  let bad = 0
  for (let i = 1; i < after.length; i++) if (Math.abs(after[i] - after[i - 1] - 2621.44 / 256) > 1.01) bad++
  t.equal(bad, 0, 'consecutive after the reset')
})

t.test('lead-off and R-to-R reach the driver through STATUS and RTOR', async (t) => {
  let off = false
  let now = 0
  const synth = new EcgSynth({ heartRateBpm: 75, hrvStdBpm: 0, seed: 3 }) // RR = 800 ms
  const beats: EcgSource = { mv: (tMs) => synth.mv(tMs), leadOff: () => off }
  const model = new Model({ source: beats })
  const driver = new Driver({ send: (tx) => model.transfer(tx, now) }, () => now)
  driver.init({ rate: 256, gain: 80, efit: 16 })
  const buf = new Uint8Array(3 * 64)
  const rr: number[] = []
  for (now = 60; now < 10000; now += 60) {
    driver.drain(buf, 0)
    const s = driver.status()
    if (s.rrMs > 0) rr.push(s.rrMs)
    t.equal(s.leadsOff, false, `leads on at ${now} ms`)
    if (t.passing() === false) break
  }
  t.ok(rr.length >= 8, `${rr.length} R-to-R intervals`)
  const late = rr.slice(2)
  t.ok(late.every((x) => Math.abs(x - 800) <= 16), `intervals near 800 ms: ${late.join(', ')}`)
  off = true
  let seen = false
  for (const end = now + 1000; now < end; now += 60) {
    driver.drain(buf, 0)
    if (driver.status().leadsOff) seen = true
  }
  t.ok(seen, 'an electrode off for 1 s is reported')
})
