import t from 'tap'
import { Ad8232 } from '../../../hardware-sim/devices/ad8232.ts'
import { Battery, lipoVoltage } from '../../../hardware-sim/devices/battery.ts'
import type { EcgSource } from '../../../hardware-sim/signals/types.ts'

const constant = (mv: number, offFrom = Infinity): EcgSource => ({ mv: () => mv, leadOff: (tMs) => tMs >= offFrom })
const sine = (mv: number, hz: number): EcgSource => ({ mv: (tMs) => mv * Math.sin(2 * Math.PI * hz * (tMs / 1000)), leadOff: () => false })

t.test('flat gain: mid-rail + 1100 × lead mV, clipped to the rails', async (t) => {
  const flat = { highPassHz: 0, lowPassHz: Infinity }
  t.equal(new Ad8232({ source: constant(0), ...flat }).output.voltage(5), 1.65)
  t.ok(Math.abs(new Ad8232({ source: constant(1), ...flat }).output.voltage(5) - 2.75) < 1e-12, '1 mV → 2.75 V')
  t.ok(Math.abs(new Ad8232({ source: constant(-0.5), ...flat }).output.voltage(5) - 1.1) < 1e-12, '-0.5 mV → 1.10 V')
  t.equal(new Ad8232({ source: constant(2), ...flat }).output.voltage(5), 3.3, 'clipped high (ADC saturation)')
  t.equal(new Ad8232({ source: constant(-2), ...flat }).output.voltage(5), 0, 'clipped low')
})

t.test('0.5–40 Hz passband: DC removed, in-band sine at the predicted gain, 150 Hz attenuated', async (t) => {
  const dc = new Ad8232({ source: constant(0.8) })
  t.ok(Math.abs(dc.output.voltage(0) - 1.65) < 1e-9, 'settled on DC: mid-rail')
  for (const hz of [1, 10, 150]) {
    const amp = 0.5
    const dev = new Ad8232({ source: sine(amp, hz) })
    let lo = Infinity
    let hi = -Infinity
    for (let ms = 0; ms < 12_000; ms += 0.5) {
      const v = dev.output.voltage(ms)
      if (ms > 8000) {
        lo = Math.min(lo, v)
        hi = Math.max(hi, v)
      }
    }
    const measured = (hi - lo) / 2 / (amp / 1000)
    const expected = dev.gainAt(hz)
    t.ok(Math.abs(measured - expected) / expected < 0.03, `${hz} Hz: gain ${measured.toFixed(1)} ≈ ${expected.toFixed(1)}`)
    if (hz === 10) t.ok(expected > 1000, 'in band ≈ 1100')
    if (hz === 150) t.ok(expected < 400, 'out of band')
  }
})

t.test('lead-off raises LO+ and LO−, output rails; SDN low = shutdown', async (t) => {
  const dev = new Ad8232({ source: constant(0.2, 1000) })
  t.equal(dev.loPlus.level(500), false)
  t.equal(dev.loMinus.level(500), false)
  t.ok(dev.output.voltage(500) < 3.3)
  t.equal(dev.loPlus.level(1000), true)
  t.equal(dev.loMinus.level(1000), true)
  t.equal(dev.output.voltage(1000), 3.3)
  dev.sdn.set(false, 1100)
  t.equal(dev.output.voltage(1200), 1.65, 'shutdown: mid-rail (real pin floats)')
  t.equal(dev.loPlus.level(1200), false, 'comparators off in shutdown')
  dev.sdn.set(true, 1300)
  t.equal(dev.loPlus.level(1300), true)
  t.throws(() => new Ad8232({ source: constant(0), highPassHz: 50, lowPassHz: 40 }), /passband/)
  t.throws(() => new Ad8232({} as never), /expected an EcgSource/)
})

t.test('battery: 4.2 V → 3.3 V over the runtime, divided onto the pin, brown-out threshold and faults', async (t) => {
  const day = 24 * 3600_000
  const b = new Battery({ runtimeMs: day })
  t.equal(b.cellVoltage(0), 4.2)
  t.equal(b.voltage(0), 2.1, '2:1 divider')
  t.ok(Math.abs(b.cellVoltage(day / 2) - lipoVoltage(0.5)) < 1e-12)
  t.ok(Math.abs(b.cellVoltage(day) - 3.3) < 1e-12)
  let prev = Infinity
  for (let h = 0; h <= 24; h++) {
    const v = b.cellVoltage(h * 3600_000)
    t.ok(v <= prev, `monotonic at ${h} h`)
    prev = v
  }
  t.equal(b.brownedOut(day / 2), false)
  t.equal(b.brownedOut(day + 1), false, 'at empty: 3.3 V, not below')
  b.brownOutV = 3.5
  t.equal(b.brownedOut(day), true, 'threshold adjustable')
  b.brownOutV = 3.3
  b.sag(1.0, 1000, 2000)
  t.equal(b.brownedOut(1500), true, 'injected sag browns out')
  t.equal(b.brownedOut(2000), false)
  b.setStateOfCharge(0.02, 3000)
  t.ok(b.cellVoltage(3000) < 3.6)
  t.throws(() => new Battery({ runtimeMs: 0 }), /runtimeMs: expected > 0/)
  t.throws(() => b.setStateOfCharge(2, 0), /soc: expected 0..1/)
})
