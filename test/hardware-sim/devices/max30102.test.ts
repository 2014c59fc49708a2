import t from 'tap'
import { Max30102, REG, INT1, INT2, MODE, PART_ID, MAX30102_ADDRESS } from '../../../hardware-sim/devices/max30102.ts'
import type { PpgSource } from '../../../hardware-sim/signals/types.ts'

/** A small deterministic PPG: DC plus a 1.2 Hz pulse; `fingerOff` after offAtMs leaves only ambient. */
function testSource(opts: { red?: number; ir?: number; ambient?: number; ac?: number; offAtMs?: number; ramp?: boolean } = {}): PpgSource {
  const red = opts.red ?? 0.4
  const ir = opts.ir ?? 0.5
  const ambient = opts.ambient ?? 0
  const ac = opts.ac ?? 0
  return {
    light(tMs) {
      if (opts.offAtMs !== undefined && tMs >= opts.offAtMs) return { red: 0, ir: 0, ambient }
      if (opts.ramp) return { red: tMs / 100000, ir: ir, ambient } // red encodes the sample time
      const p = Math.sin(2 * Math.PI * 1.2 * (tMs / 1000))
      return { red: red * (1 + ac * p), ir: ir * (1 + ac * p), ambient }
    },
    fingerOn(tMs) {
      return opts.offAtMs === undefined || tMs < opts.offAtMs
    },
  }
}

/** Register access the way a driver does it: write [reg, data...], or write [reg] then read n. */
class Bus {
  now = 0
  constructor(readonly dev: Max30102) {}
  set(reg: number, ...vals: number[]): void {
    this.dev.write(Uint8Array.from([reg, ...vals]), this.now)
  }
  get(reg: number, n = 1): number[] {
    this.dev.write(Uint8Array.of(reg), this.now)
    return [...this.dev.read(n, this.now)]
  }
  one(reg: number): number {
    return this.get(reg)[0]
  }
  /** Reads `samples` samples of `ch` channels from FIFO_DATA in one burst, decoding 18-bit values. */
  fifo(samples: number, ch: number): number[][] {
    const b = this.get(REG.FIFO_DATA, samples * ch * 3)
    const out: number[][] = []
    for (let s = 0; s < samples; s++) {
      const row: number[] = []
      for (let c = 0; c < ch; c++) {
        const o = (s * ch + c) * 3
        row.push(((b[o] & 0x03) << 16) | (b[o + 1] << 8) | b[o + 2])
      }
      out.push(row)
    }
    return out
  }
  /** SpO2 mode, 100 sps, 411 µs, 4096 nA, 7 mA on both LEDs, no averaging. */
  spo2(extraFifoConfig = 0): void {
    this.set(REG.FIFO_CONFIG, extraFifoConfig)
    this.set(REG.SPO2_CONFIG, (1 << 5) | (1 << 2) | 3)
    this.set(REG.LED1_PA, 35, 35)
    this.set(REG.MODE_CONFIG, MODE.SPO2)
  }
}

const quiet = { noiseNa: 0 }

t.test('identity and power-on defaults; PWR_RDY set at power-up and cleared by reading', async (t) => {
  const dev = new Max30102({ source: testSource(), ...quiet })
  const bus = new Bus(dev)
  t.equal(dev.address, MAX30102_ADDRESS)
  t.equal(bus.one(REG.PART_ID), PART_ID)
  t.equal(bus.one(REG.PART_ID), 0x15)
  t.equal(bus.one(REG.REV_ID), 0x03)
  t.same(bus.get(REG.INT_STATUS_1, 2), [INT1.PWR_RDY, 0])
  t.equal(bus.one(REG.INT_STATUS_1), 0, 'cleared by the read')
  t.same(bus.get(REG.INT_ENABLE_1, 12), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], '0x02..0x0D all reset to 0')
  t.equal(dev.intPin.level(0), true, 'INT idles high')
})

t.test('register pointer: writes and reads auto-increment, except at FIFO_DATA', async (t) => {
  const bus = new Bus(new Max30102({ source: testSource(), ...quiet }))
  bus.set(REG.LED1_PA, 0x24, 0x3f)
  t.same(bus.get(REG.LED1_PA, 2), [0x24, 0x3f])
  bus.set(REG.MULTI_LED_1, 0xff, 0x21)
  t.same(bus.get(REG.MULTI_LED_1, 2), [0x77, 0x21], 'reserved bits read 0')
  bus.set(REG.PART_ID, 0x00)
  t.equal(bus.one(REG.PART_ID), 0x15, 'read-only')
  bus.spo2()
  bus.now = 50 // 5 samples
  const b = bus.get(REG.FIFO_WR_PTR, 9) // WR, OVF, RD, then FIFO_DATA repeatedly
  t.same(b.slice(0, 3), [5, 0, 0])
  t.equal(b[3] & 0xfc, 0, 'bits 23:18 are zero')
  t.same(bus.get(REG.FIFO_RD_PTR, 1), [1], 'the 6 FIFO bytes read one whole SpO2 sample')
})

t.test('FIFO pointer arithmetic, overflow counter saturating at 0x1F, cleared by a pop', async (t) => {
  const dev = new Max30102({ source: testSource(), ...quiet })
  const bus = new Bus(dev)
  bus.spo2()
  bus.now = 100
  t.same(bus.get(REG.FIFO_WR_PTR, 3), [10, 0, 0])
  bus.fifo(3, 2)
  t.same(bus.get(REG.FIFO_WR_PTR, 3), [10, 0, 3])
  bus.now = 350 // 35 produced, 3 read: exactly 32 unread
  t.same(bus.get(REG.FIFO_WR_PTR, 3), [3, 0, 3], 'full: WR == RD, nothing lost yet')
  bus.now = 380 // 3 more: lost
  t.same(bus.get(REG.FIFO_WR_PTR, 3), [3, 3, 3], 'full: WR == RD, OVF = 3')
  t.equal(dev.fifoCount(bus.now), 32)
  bus.now = 2000
  t.equal(bus.one(REG.OVF_COUNTER), 31, 'saturates at 0x1F (datasheet), not at 0xF')
  t.same(bus.get(REG.FIFO_WR_PTR, 3), [3, 31, 3], 'without rollover the FIFO keeps its oldest samples')
  bus.fifo(1, 2)
  t.same(bus.get(REG.FIFO_WR_PTR, 3), [3, 0, 4], 'popping a sample clears OVF_COUNTER')
  bus.set(REG.FIFO_WR_PTR, 0, 0, 0)
  t.equal(dev.fifoCount(bus.now), 0, 'clearing the pointers empties the FIFO')
  // empty FIFO: reads do not advance
  bus.fifo(1, 2)
  t.equal(bus.one(REG.FIFO_RD_PTR), 0)
})

t.test('rollover keeps the newest 32 samples; a long gap is accounted in bulk', async (t) => {
  const dev = new Max30102({ source: testSource({ ramp: true }), ...quiet })
  const bus = new Bus(dev)
  bus.spo2(0x10) // FIFO_ROLLOVER_EN
  bus.now = 500 // 50 samples at 10, 20, ..., 500 ms
  t.same(bus.get(REG.FIFO_WR_PTR, 3), [18, 18, 18], '50 samples into 32 places: 18 lost, counted exactly')
  const first = bus.fifo(1, 2)[0][0]
  // red = t/100000 → counts = red × 4096/4096 × 2^18 (35 × 0.2 mA = 7 mA)
  t.equal(first, Math.floor((190 / 100000) * 262144), 'oldest kept sample is #19 at 190 ms')
  bus.now = 3_600_000 + 500 // an hour later at 100 sps
  const wr = (50 + 360_000) & 31
  t.same(bus.get(REG.FIFO_WR_PTR, 3), [wr, 31, wr], 'pointers after 360000 more samples, FIFO full, OVF saturated')
  const samples = bus.fifo(32, 2).map((r) => r[0])
  t.equal(samples[31], 262143, 'the newest samples are kept (ramp clipped at full scale)')
  t.equal(bus.one(REG.OVF_COUNTER), 0)
})

t.test('counts follow LED current, ADC range and pulse-width resolution', async (t) => {
  const src = testSource({ red: 0.5, ir: 0.3 })
  const bus = new Bus(new Max30102({ source: src, ...quiet }))
  bus.spo2()
  bus.now = 10
  t.same(bus.fifo(1, 2)[0], [131072, Math.floor(0.3 * 262144)], '7 mA, 4096 nA: 0.5 → mid-scale')
  bus.set(REG.LED1_PA, 17) // 3.4 mA
  bus.now = 20
  t.same(bus.fifo(1, 2)[0][0], Math.floor(0.5 * (3.4 / 7) * 262144), 'counts ∝ LED current')
  bus.set(REG.LED1_PA, 70) // 14 mA: full scale → clipped
  bus.now = 30
  t.equal(bus.fifo(1, 2)[0][0], 262143, 'clipped at 2^18 - 1')
  bus.set(REG.SPO2_CONFIG, (2 << 5) | (1 << 2) | 3) // 8192 nA range
  bus.now = 40
  t.equal(bus.fifo(1, 2)[0][0], 131072, 'double range halves counts (14 mA)')
  bus.set(REG.SPO2_CONFIG, (0 << 5) | (1 << 2) | 0) // 2048 nA, 69 µs → 15 bits
  bus.set(REG.LED1_PA, 10, 10) // 2 mA
  bus.now = 50
  const [r, ir] = bus.fifo(1, 2)[0]
  t.equal(r, Math.floor(0.5 * (2 / 7) * 2 * 262144) & ~7)
  t.equal(ir & 7, 0, '15-bit samples: 3 low bits zero')
  t.equal(ir, Math.floor(0.3 * (2 / 7) * 2 * 262144) & ~7)
})

t.test('finger off: DC collapses to ambient', async (t) => {
  const bus = new Bus(new Max30102({ source: testSource({ ambient: 0.01, offAtMs: 1000 }), ...quiet }))
  bus.spo2()
  bus.now = 985
  bus.set(REG.FIFO_WR_PTR, 0, 0, 0)
  bus.now = 1050
  const s = bus.fifo(6, 2)
  t.ok(s[0][1] > 100000, 'finger on')
  t.equal(s[5][1], Math.floor(0.01 * 262144), 'finger off: ambient only')
})

t.test('sample averaging, rate capping by pulse width, heart-rate mode, shutdown', async (t) => {
  const bus = new Bus(new Max30102({ source: testSource(), ...quiet }))
  bus.set(REG.FIFO_CONFIG, 2 << 5) // average 4
  bus.set(REG.SPO2_CONFIG, (1 << 5) | (3 << 2) | 1) // 400 sps, 118 µs
  bus.set(REG.LED1_PA, 35, 35)
  bus.set(REG.MODE_CONFIG, MODE.SPO2)
  bus.now = 100
  t.equal(bus.one(REG.FIFO_WR_PTR), 10, '400 sps / 4 = 100 samples/s')
  bus.set(REG.FIFO_CONFIG, 0)
  bus.set(REG.FIFO_WR_PTR, 0, 0, 0)
  bus.set(REG.SPO2_CONFIG, (1 << 5) | (5 << 2) | 3) // 1000 sps with 411 µs: capped at 400 in SpO2 mode
  bus.now = 150
  t.equal(bus.one(REG.FIFO_WR_PTR), 20)
  bus.set(REG.MODE_CONFIG, MODE.HEART_RATE)
  bus.set(REG.FIFO_WR_PTR, 0, 0, 0)
  bus.now = 160 // HR mode 411 µs allows 1000 sps
  t.equal(bus.one(REG.FIFO_WR_PTR), 10)
  bus.fifo(1, 1)
  t.equal(bus.one(REG.FIFO_RD_PTR), 1, 'HR mode: 3 bytes per sample')
  bus.set(REG.MODE_CONFIG, MODE_SHDN_HR())
  const wr = bus.one(REG.FIFO_WR_PTR)
  bus.now = 500
  t.equal(bus.one(REG.FIFO_WR_PTR), wr, 'no samples in shutdown')
  // Multi-LED: slot1 IR, slot2 red, slot3 none → 2 channels, IR first
  bus.set(REG.MULTI_LED_1, 0x12, 0x00)
  bus.set(REG.SPO2_CONFIG, (1 << 5) | (1 << 2) | 3)
  bus.set(REG.MODE_CONFIG, MODE.MULTI_LED)
  bus.set(REG.FIFO_WR_PTR, 0, 0, 0)
  bus.now = 510
  const [a, b] = bus.fifo(1, 2)[0]
  t.ok(a > b, 'slot 1 holds IR (0.5), slot 2 red (0.4)')
})

function MODE_SHDN_HR(): number {
  return 0x80 | MODE.HEART_RATE
}

t.test('interrupts: PPG_RDY, A_FULL threshold, clear on read, INT pin', async (t) => {
  const dev = new Max30102({ source: testSource(), ...quiet })
  const bus = new Bus(dev)
  bus.one(REG.INT_STATUS_1) // clear PWR_RDY
  bus.set(REG.INT_ENABLE_1, INT1.A_FULL | INT1.PPG_RDY)
  bus.spo2(0x0f) // A_FULL when 15 free = 17 unread
  bus.now = 160
  t.equal(bus.one(REG.INT_STATUS_1), INT1.PPG_RDY, '16 samples: not almost full yet')
  t.equal(dev.intPin.level(bus.now), true, 'INT released after the status read')
  bus.now = 170
  t.equal(dev.intPin.level(bus.now), false, 'INT low while pending')
  t.equal(bus.one(REG.INT_STATUS_1), INT1.A_FULL | INT1.PPG_RDY, '17 samples')
  t.equal(bus.one(REG.INT_STATUS_1), 0, 'cleared by reading')
  bus.now = 180
  bus.fifo(1, 2)
  t.equal(bus.one(REG.INT_STATUS_1), 0, 'reading FIFO_DATA clears PPG_RDY and A_FULL')
  bus.set(REG.INT_ENABLE_1, 0)
  bus.now = 300
  t.equal(bus.one(REG.INT_STATUS_1), 0, 'disabled sources do not flag')
})

t.test('die temperature: TEMP_EN self-clears after the conversion; TINT two\'s complement, TFRAC 1/16 °C', async (t) => {
  const dev = new Max30102({ source: testSource(), dieTempC: -5.3, ...quiet })
  const bus = new Bus(dev)
  bus.set(REG.INT_ENABLE_2, INT2.DIE_TEMP_RDY)
  bus.set(REG.TEMP_CONFIG, 1)
  bus.now = 10
  t.equal(bus.one(REG.TEMP_CONFIG), 1, 'converting')
  t.equal(bus.one(REG.INT_STATUS_2), 0)
  bus.now = 30
  t.equal(bus.one(REG.TEMP_CONFIG), 0)
  t.same(bus.get(REG.TEMP_INT, 2), [0xfa, 11], '-6 + 11/16 = -5.3125')
  t.equal(bus.one(REG.INT_STATUS_2), 0, 'reading TFRAC cleared DIE_TEMP_RDY')
  const warm = new Bus(new Max30102({ source: testSource(), dieTempC: 36.25, ...quiet }))
  warm.set(REG.INT_ENABLE_2, INT2.DIE_TEMP_RDY)
  warm.set(REG.TEMP_CONFIG, 1)
  warm.now = 40
  t.equal(warm.one(REG.INT_STATUS_2), INT2.DIE_TEMP_RDY)
  t.same(warm.get(REG.TEMP_INT, 2), [36, 4])
})

t.test('RESET restores defaults, clears the FIFO and reads back 0', async (t) => {
  const dev = new Max30102({ source: testSource(), ...quiet })
  const bus = new Bus(dev)
  bus.spo2(0x5f)
  bus.set(REG.INT_ENABLE_1, 0xe0)
  bus.now = 100
  bus.set(REG.MODE_CONFIG, 0x40 | MODE.SPO2)
  t.equal(bus.one(REG.MODE_CONFIG), 0, 'RESET self-clears and MODE is back to 0')
  t.same(bus.get(REG.INT_STATUS_1, 13), new Array(13).fill(0))
  t.equal(bus.one(REG.PART_ID), 0x15)
  bus.now = 500
  t.equal(bus.one(REG.FIFO_WR_PTR), 0, 'not sampling after reset')
})

t.test('noise is small and seeded; bad arguments refused', async (t) => {
  const run = (seed: number) => {
    const bus = new Bus(new Max30102({ source: testSource(), seed }))
    bus.spo2()
    bus.now = 200
    return bus.fifo(20, 2).map((r) => r[1])
  }
  const a = run(1)
  t.same(run(1), a, 'same seed, same samples')
  t.notSame(run(2), a)
  for (const v of a) t.ok(Math.abs(v - 131072) < 60, `noise within a few LSB (${v - 131072})`)
  t.throws(() => new Max30102({} as never), /expected a PpgSource/)
  t.throws(() => new Max30102({ source: testSource(), noiseNa: -1 }), /noiseNa: expected >= 0/)
  const dev = new Max30102({ source: testSource() })
  dev.read(1, 10)
  t.throws(() => dev.read(1, 5), /time went backwards/)
  t.throws(() => dev.read(1.5, 20), /expected a byte count/)
})
