/**
 * MAX30102 pulse oximeter on I2C (address 0x57), modelled register by
 * register from the Maxim datasheet (19-7740): interrupt status/enable,
 * 32-sample FIFO with write/read pointers and overflow counter, FIFO, mode
 * and SpO2 configuration, LED pulse amplitudes, multi-LED slots, die
 * temperature, revision and part ID.
 *
 * The part is passive: on every bus access it first catches up to the
 * board's time, running its ADC at the configured sample rate (each
 * conversion samples the PpgSource at that instant), averaging SMP_AVE
 * conversions per FIFO sample and pushing them into the FIFO.
 *
 * Optical front end (documented scale, see docs/hardware-sim-devices.md):
 *   photocurrent [nA] = 4096 nA × (light × I_LED / 7 mA + ambient) + noise
 *   counts = photocurrent / ADC range × 2^18, clipped to 0..2^18−1, with the
 *            18 − n low bits zero for an n-bit pulse width (15..18 bits).
 * So a light fraction of 0.5 at 7 mA sits mid-scale in the 4096 nA range,
 * doubling the LED current doubles the counts, doubling the range halves them;
 * with the finger off the light fractions collapse and only ambient remains.
 */
import type { I2CDevice, DigitalSource } from '../hardware.ts'
import type { PpgSource } from '../signals/types.ts'
import { createRng, type Rng } from '../../protocol/node/rng.ts'

export const MAX30102_ADDRESS = 0x57
export const PART_ID = 0x15

/** Register addresses. */
export const REG = {
  INT_STATUS_1: 0x00,
  INT_STATUS_2: 0x01,
  INT_ENABLE_1: 0x02,
  INT_ENABLE_2: 0x03,
  FIFO_WR_PTR: 0x04,
  OVF_COUNTER: 0x05,
  FIFO_RD_PTR: 0x06,
  FIFO_DATA: 0x07,
  FIFO_CONFIG: 0x08,
  MODE_CONFIG: 0x09,
  SPO2_CONFIG: 0x0a,
  LED1_PA: 0x0c,
  LED2_PA: 0x0d,
  MULTI_LED_1: 0x11,
  MULTI_LED_2: 0x12,
  TEMP_INT: 0x1f,
  TEMP_FRAC: 0x20,
  TEMP_CONFIG: 0x21,
  REV_ID: 0xfe,
  PART_ID: 0xff,
} as const

/** Interrupt bits: status 1 / enable 1. */
export const INT1 = { A_FULL: 0x80, PPG_RDY: 0x40, ALC_OVF: 0x20, PWR_RDY: 0x01 } as const
/** Interrupt bits: status 2 / enable 2. */
export const INT2 = { DIE_TEMP_RDY: 0x02 } as const

export const MODE = { HEART_RATE: 0x02, SPO2: 0x03, MULTI_LED: 0x07 } as const
export const MODE_SHDN = 0x80
export const MODE_RESET = 0x40

/** SPO2_ADC_RGE[1:0] → full scale in nA. */
export const ADC_RANGE_NA = [2048, 4096, 8192, 16384] as const
/** SPO2_SR[2:0] → samples per second. */
export const SAMPLE_RATES = [50, 100, 200, 400, 800, 1000, 1600, 3200] as const
/** LED_PW[1:0] → pulse width in µs and ADC resolution in bits. */
export const PULSE_WIDTH_US = [69, 118, 215, 411] as const
export const RESOLUTION_BITS = [15, 16, 17, 18] as const
/** SMP_AVE[2:0] → conversions averaged per FIFO sample. */
export const SMP_AVE = [1, 2, 4, 8, 16, 32, 32, 32] as const
/**
 * Highest valid sample rate per pulse width (datasheet tables of allowed settings for SpO2 and
 * HR modes: each conversion slot must fit the LED pulses, so 3200 sps only at 69 us in HR mode
 * and not at all in SpO2 mode). An invalid pair is not an error on the chip: it converts as fast
 * as the pulses allow, i.e. at the capped rate, which is what this model does.
 */
export const MAX_SPS_SPO2 = [1600, 1000, 800, 400] as const
export const MAX_SPS_HR = [3200, 1600, 1000, 1000] as const
/** OVF_COUNTER[4:0] saturates at 0x1F (datasheet, register 0x05). */
export const OVF_MAX = 0x1f

/** LED current per LSB of LEDx_PA. */
export const LED_MA_PER_LSB = 0.2
/** Scale of the optical model: light fraction 1 at 7 mA gives 4096 nA. */
export const REF_LED_MA = 7
export const REF_FULL_SCALE_NA = 4096
/** Die temperature conversion time (datasheet: 29 ms typ). */
export const TEMP_CONVERSION_MS = 29

const FIFO_DEPTH = 32
/** Writable bits per register; absent registers are read-only or reserved. */
const WRITE_MASK: Record<number, number> = {
  [REG.INT_ENABLE_1]: 0xe0,
  [REG.INT_ENABLE_2]: 0x02,
  [REG.FIFO_WR_PTR]: 0x1f,
  [REG.OVF_COUNTER]: 0x1f,
  [REG.FIFO_RD_PTR]: 0x1f,
  [REG.FIFO_CONFIG]: 0xff,
  [REG.MODE_CONFIG]: 0xc7,
  [REG.SPO2_CONFIG]: 0x7f,
  [REG.LED1_PA]: 0xff,
  [REG.LED2_PA]: 0xff,
  [REG.MULTI_LED_1]: 0x77,
  [REG.MULTI_LED_2]: 0x77,
  [REG.TEMP_CONFIG]: 0x01,
}

export interface Max30102Options {
  source: PpgSource
  /** Seed for the ADC noise. */
  seed?: number
  /** Die temperature in °C, constant or as a function of board time. Default 31.5. */
  dieTempC?: number | ((nowMs: number) => number)
  /** ADC noise (standard deviation per conversion) in nA; default 0.05 nA ≈ 3 LSB in the 4096 nA range. */
  noiseNa?: number
  /** REV_ID value; default 0x03. */
  revId?: number
  /** Board time of power-up (PWR_RDY is set then). Default 0. */
  powerOnMs?: number
}

export class Max30102 implements I2CDevice {
  readonly address = MAX30102_ADDRESS
  /** INT pin: open-drain, active low; reads low while an enabled interrupt is pending. */
  readonly intPin: DigitalSource
  private readonly source: PpgSource
  private readonly rng: Rng
  private readonly dieTemp: (nowMs: number) => number
  private readonly noiseNa: number
  private readonly revId: number

  private regs = new Uint8Array(256)
  private ptr = 0
  private lastMs: number
  private fifo = new Uint32Array(FIFO_DEPTH * 3)
  private count = 0
  private byteIdx = 0
  /** Next ADC conversion time, or NaN when not sampling. */
  private nextConvMs = NaN
  private accum = [0, 0, 0]
  private accumN = 0
  private tempDoneMs = NaN

  constructor(opts: Max30102Options) {
    if (!opts || typeof opts.source?.light !== 'function') throw new TypeError('source: expected a PpgSource with light(tMs)')
    const noise = opts.noiseNa ?? 0.05
    if (!(noise >= 0)) throw new RangeError(`noiseNa: expected >= 0, got ${noise}`)
    this.source = opts.source
    this.rng = createRng(opts.seed ?? 0x30102)
    const t = opts.dieTempC ?? 31.5
    this.dieTemp = typeof t === 'function' ? t : () => t
    this.noiseNa = noise
    this.revId = (opts.revId ?? 0x03) & 0xff
    this.lastMs = opts.powerOnMs ?? 0
    this.powerOnReset()
    this.regs[REG.INT_STATUS_1] = INT1.PWR_RDY // set once at power-up
    this.intPin = { level: (nowMs: number) => !this.interruptPending(nowMs) }
  }

  // ---- I2CDevice ----

  /** data[0] sets the register pointer; following bytes are written with auto-increment (not past FIFO_DATA). */
  write(data: Uint8Array, nowMs: number): boolean {
    this.catchUp(nowMs)
    if (data.length === 0) return true
    this.ptr = data[0]
    for (let i = 1; i < data.length; i++) {
      this.writeReg(this.ptr, data[i], nowMs)
      if (this.ptr !== REG.FIFO_DATA) this.ptr = (this.ptr + 1) & 0xff
    }
    return true
  }

  /** Reads from the register pointer with auto-increment; FIFO_DATA does not advance the pointer. */
  read(n: number, nowMs: number): Uint8Array {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`n: expected a byte count >= 0, got ${n}`)
    this.catchUp(nowMs)
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) {
      out[i] = this.readReg(this.ptr)
      if (this.ptr !== REG.FIFO_DATA) this.ptr = (this.ptr + 1) & 0xff
    }
    return out
  }

  /** Number of unread samples (for tests and the simulator UI; firmware uses the pointers). */
  fifoCount(nowMs: number): number {
    this.catchUp(nowMs)
    return this.count
  }

  // ---- registers ----

  private powerOnReset(): void {
    this.regs.fill(0)
    this.regs[REG.REV_ID] = this.revId
    this.regs[REG.PART_ID] = PART_ID
    this.count = 0
    this.byteIdx = 0
    this.fifo.fill(0)
    this.nextConvMs = NaN
    this.accumN = 0
    this.tempDoneMs = NaN
  }

  private writeReg(reg: number, value: number, nowMs: number): void {
    const mask = WRITE_MASK[reg]
    if (mask === undefined) return // read-only or reserved
    const v = value & mask
    switch (reg) {
      case REG.MODE_CONFIG:
        if (v & MODE_RESET) {
          // RESET: every register back to its power-on state; the bit clears itself.
          this.powerOnReset()
          return
        }
        this.regs[reg] = v
        if (v & MODE_SHDN) this.regs[REG.INT_STATUS_1] = this.regs[REG.INT_STATUS_2] = 0 // interrupts cleared in shutdown
        this.restartSampling(nowMs)
        return
      case REG.SPO2_CONFIG:
      case REG.FIFO_CONFIG:
      case REG.MULTI_LED_1:
      case REG.MULTI_LED_2: {
        const changedTiming = reg !== REG.FIFO_CONFIG || (this.regs[reg] & 0xe0) !== (v & 0xe0)
        this.regs[reg] = v
        if (changedTiming) this.restartSampling(nowMs)
        return
      }
      case REG.FIFO_WR_PTR:
      case REG.FIFO_RD_PTR:
        this.regs[reg] = v
        // Moving a pointer redefines the unread samples (datasheet: clear both pointers before a new run).
        this.count = (this.regs[REG.FIFO_WR_PTR] - this.regs[REG.FIFO_RD_PTR]) & (FIFO_DEPTH - 1)
        this.byteIdx = 0
        return
      case REG.TEMP_CONFIG:
        if (v & 0x01) {
          this.regs[reg] = 0x01
          this.tempDoneMs = nowMs + TEMP_CONVERSION_MS
        }
        return
      default:
        this.regs[reg] = v
    }
  }

  private readReg(reg: number): number {
    switch (reg) {
      case REG.INT_STATUS_1: {
        const v = this.regs[reg]
        this.regs[reg] = 0 // reading clears
        return v
      }
      case REG.INT_STATUS_2: {
        const v = this.regs[reg]
        this.regs[reg] = 0
        return v
      }
      case REG.TEMP_FRAC:
        this.regs[REG.INT_STATUS_2] &= ~INT2.DIE_TEMP_RDY // reading TFRAC also clears DIE_TEMP_RDY
        return this.regs[reg]
      case REG.FIFO_DATA:
        return this.readFifoByte()
      default:
        return this.regs[reg]
    }
  }

  /**
   * One byte of FIFO_DATA: 3 bytes per active LED channel per sample, MSB
   * first, bits 23:18 zero. The read pointer advances (and OVF_COUNTER
   * clears) after the last byte of a sample. An empty FIFO returns the stale
   * sample at the read pointer without advancing.
   */
  private readFifoByte(): number {
    this.regs[REG.INT_STATUS_1] &= ~(INT1.A_FULL | INT1.PPG_RDY)
    const channels = Math.max(1, this.channelSources().length)
    const rd = this.regs[REG.FIFO_RD_PTR]
    const ch = Math.floor(this.byteIdx / 3)
    const v = ch < 3 ? this.fifo[rd * 3 + ch] : 0
    const b = this.byteIdx % 3
    const byte = b === 0 ? (v >> 16) & 0x03 : b === 1 ? (v >> 8) & 0xff : v & 0xff
    this.byteIdx++
    if (this.byteIdx >= channels * 3) {
      this.byteIdx = 0
      if (this.count > 0) {
        this.regs[REG.FIFO_RD_PTR] = (rd + 1) & (FIFO_DEPTH - 1)
        this.count--
        this.regs[REG.OVF_COUNTER] = 0
      }
    }
    return byte
  }

  // ---- sampling ----

  /** Which LED each FIFO channel holds: 1 = LED1 (red), 2 = LED2 (IR). Empty when not sampling. */
  private channelSources(): number[] {
    const m = this.regs[REG.MODE_CONFIG]
    if (m & MODE_SHDN) return []
    switch (m & 0x07) {
      case MODE.HEART_RATE:
        return [1]
      case MODE.SPO2:
        return [1, 2]
      case MODE.MULTI_LED: {
        const slots = [this.regs[REG.MULTI_LED_1] & 7, this.regs[REG.MULTI_LED_1] >> 4, this.regs[REG.MULTI_LED_2] & 7, this.regs[REG.MULTI_LED_2] >> 4]
        const out: number[] = []
        // Slots are used in order; the first disabled slot ends the sequence. Codes 3..7 drive no LED on the MAX30102.
        for (const s of slots) {
          if (s === 0) break
          out.push(s === 1 || s === 2 ? s : 0)
        }
        return out.slice(0, 3)
      }
      default:
        return []
    }
  }

  /** Conversions per second the chip actually runs at: SPO2_SR, capped by the pulse width's limit. */
  sampleRate(): number {
    const cfg = this.regs[REG.SPO2_CONFIG]
    const pw = cfg & 0x03
    const sps = SAMPLE_RATES[(cfg >> 2) & 0x07]
    const max = (this.regs[REG.MODE_CONFIG] & 7) === MODE.HEART_RATE ? MAX_SPS_HR[pw] : MAX_SPS_SPO2[pw]
    return Math.min(sps, max)
  }

  private conversionPeriodMs(): number {
    return 1000 / this.sampleRate()
  }

  private restartSampling(nowMs: number): void {
    this.accumN = 0
    this.nextConvMs = this.channelSources().length > 0 ? nowMs + this.conversionPeriodMs() : NaN
  }

  private catchUp(nowMs: number): void {
    if (!Number.isFinite(nowMs)) throw new RangeError(`nowMs: expected a finite time, got ${nowMs}`)
    if (nowMs < this.lastMs) throw new RangeError(`nowMs: time went backwards (${nowMs} < ${this.lastMs})`)
    this.lastMs = nowMs
    if (!Number.isNaN(this.tempDoneMs) && nowMs >= this.tempDoneMs) this.finishTemperature()
    if (Number.isNaN(this.nextConvMs) || nowMs < this.nextConvMs) return
    const period = this.conversionPeriodMs()
    const ave = SMP_AVE[this.regs[REG.FIFO_CONFIG] >> 5]
    const rollover = (this.regs[REG.FIFO_CONFIG] & 0x10) !== 0
    const channels = this.channelSources()
    let pending = Math.floor((nowMs - this.nextConvMs) / period) + 1 // conversions due
    while (pending > 0) {
      // Long gaps: once the outcome is fixed (full FIFO without rollover, or rollover that keeps only
      // the last 32), account for the lost samples in bulk instead of converting each one.
      const samplesDue = Math.floor((this.accumN + pending) / ave)
      if (!rollover && this.count === FIFO_DEPTH && samplesDue > 0) {
        this.lose(samplesDue)
        const convs = samplesDue * ave - this.accumN
        this.accumN = 0
        this.nextConvMs += convs * period
        pending -= convs
        continue
      }
      if (rollover && samplesDue > 2 * FIFO_DEPTH && this.accumN === 0) {
        const skip = samplesDue - FIFO_DEPTH
        this.pushOverwritten(skip)
        this.nextConvMs += skip * ave * period
        pending -= skip * ave
        continue
      }
      this.convert(this.nextConvMs, channels)
      this.nextConvMs += period
      pending--
      if (this.accumN === ave) {
        this.push(this.accum.map((s) => s / ave), channels.length)
        this.accum = [0, 0, 0]
        this.accumN = 0
      }
    }
  }

  /** One ADC conversion of every active channel at time tMs, accumulated for averaging. */
  private convert(tMs: number, channels: number[]): void {
    const light = this.source.light(tMs)
    const range = ADC_RANGE_NA[(this.regs[REG.SPO2_CONFIG] >> 5) & 0x03]
    const ambientNa = REF_FULL_SCALE_NA * light.ambient
    if (ambientNa >= range && this.regs[REG.INT_ENABLE_1] & INT1.ALC_OVF) this.regs[REG.INT_STATUS_1] |= INT1.ALC_OVF
    for (let c = 0; c < channels.length; c++) {
      const led = channels[c]
      const ma = led === 1 ? this.regs[REG.LED1_PA] * LED_MA_PER_LSB : led === 2 ? this.regs[REG.LED2_PA] * LED_MA_PER_LSB : 0
      const frac = led === 1 ? light.red : led === 2 ? light.ir : 0
      const na = REF_FULL_SCALE_NA * ((frac * ma) / REF_LED_MA) + ambientNa + this.noiseNa * this.rng.gaussian()
      this.accum[c] += (na / range) * 262144
    }
    this.accumN++
  }

  private quantise(counts: number): number {
    const bits = RESOLUTION_BITS[this.regs[REG.SPO2_CONFIG] & 0x03]
    const c = Math.min(262143, Math.max(0, Math.floor(counts)))
    return c & ~((1 << (18 - bits)) - 1) // left-justified: unused low bits read 0
  }

  private push(values: number[], nch: number): void {
    const wr = this.regs[REG.FIFO_WR_PTR]
    if (this.count === FIFO_DEPTH) {
      if ((this.regs[REG.FIFO_CONFIG] & 0x10) === 0) {
        this.lose(1)
        return
      }
      // FIFO_ROLLOVER_EN: the oldest sample is overwritten; the read pointer moves with it.
      this.regs[REG.FIFO_RD_PTR] = (this.regs[REG.FIFO_RD_PTR] + 1) & (FIFO_DEPTH - 1)
      this.count--
      this.bumpOverflow(1)
    }
    for (let c = 0; c < 3; c++) this.fifo[wr * 3 + c] = c < nch ? this.quantise(values[c]) : 0
    this.regs[REG.FIFO_WR_PTR] = (wr + 1) & (FIFO_DEPTH - 1)
    this.count++
    const en = this.regs[REG.INT_ENABLE_1]
    if (en & INT1.PPG_RDY) this.regs[REG.INT_STATUS_1] |= INT1.PPG_RDY
    // A_FULL fires when only FIFO_A_FULL free slots remain.
    if (en & INT1.A_FULL && this.count >= FIFO_DEPTH - (this.regs[REG.FIFO_CONFIG] & 0x0f)) this.regs[REG.INT_STATUS_1] |= INT1.A_FULL
  }

  /**
   * `n` samples pushed with rollover on, all of which later pushes will
   * overwrite before anyone can read them: only the pointer arithmetic, the
   * overflow count and the interrupt flags matter, so they are applied at once.
   */
  private pushOverwritten(n: number): void {
    const newCount = Math.min(FIFO_DEPTH, this.count + n)
    this.bumpOverflow(this.count + n - newCount)
    const wr = (this.regs[REG.FIFO_WR_PTR] + n) & (FIFO_DEPTH - 1)
    this.regs[REG.FIFO_WR_PTR] = wr
    this.regs[REG.FIFO_RD_PTR] = (wr - newCount) & (FIFO_DEPTH - 1)
    this.count = newCount
    const en = this.regs[REG.INT_ENABLE_1]
    if (en & INT1.PPG_RDY) this.regs[REG.INT_STATUS_1] |= INT1.PPG_RDY
    if (en & INT1.A_FULL && this.count >= FIFO_DEPTH - (this.regs[REG.FIFO_CONFIG] & 0x0f)) this.regs[REG.INT_STATUS_1] |= INT1.A_FULL
  }

  /** Samples dropped because the FIFO is full and rollover is off. */
  private lose(n: number): void {
    this.bumpOverflow(n)
  }

  private bumpOverflow(n: number): void {
    this.regs[REG.OVF_COUNTER] = Math.min(OVF_MAX, this.regs[REG.OVF_COUNTER] + n)
  }

  private finishTemperature(): void {
    const t = this.dieTemp(this.tempDoneMs)
    // TINT is two's complement whole degrees, TFRAC adds 0.0625 °C steps (always positive).
    const whole = Math.floor(t)
    const frac = Math.min(15, Math.round((t - whole) / 0.0625))
    this.regs[REG.TEMP_INT] = whole & 0xff
    this.regs[REG.TEMP_FRAC] = frac
    this.regs[REG.TEMP_CONFIG] = 0 // TEMP_EN clears itself
    if (this.regs[REG.INT_ENABLE_2] & INT2.DIE_TEMP_RDY) this.regs[REG.INT_STATUS_2] |= INT2.DIE_TEMP_RDY
    this.tempDoneMs = NaN
  }

  private interruptPending(nowMs: number): boolean {
    this.catchUp(nowMs)
    return this.regs[REG.INT_STATUS_1] !== 0 || this.regs[REG.INT_STATUS_2] !== 0
  }
}
