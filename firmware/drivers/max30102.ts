/**
 * Maxim MAX30102 pulse oximeter over I2C (MAX30102 datasheet, register map table):
 * SpO2 mode (red + IR), 100 samples/s, 411 us pulses (18-bit), 4096 nA full scale.
 * The FIFO holds 32 samples of 6 bytes (red then IR, 3 bytes each, MSB first, 18 bits);
 * the firmware burst-reads what is there every ~100 ms, counts overflow, adjusts LED
 * currents to keep the IR/red DC level in range, reads the die temperature and flags
 * finger-off. Decodes into caller-supplied typed arrays: no allocation per sample.
 */
import type { I2CBus } from './atecc608.ts'

export const REG = {
  INT_STATUS1: 0x00,
  INT_ENABLE1: 0x02,
  FIFO_WR_PTR: 0x04,
  OVF_COUNTER: 0x05,
  FIFO_RD_PTR: 0x06,
  FIFO_DATA: 0x07,
  FIFO_CONFIG: 0x08,
  MODE_CONFIG: 0x09,
  SPO2_CONFIG: 0x0a,
  LED1_PA: 0x0c, // red
  LED2_PA: 0x0d, // IR
  TEMP_INT: 0x1f,
  TEMP_FRAC: 0x20,
  TEMP_CONFIG: 0x21,
  REV_ID: 0xfe,
  PART_ID: 0xff,
}

export const PART_ID = 0x15
export const FULL_SCALE = 262143
/** IR DC below this: nothing on the sensor (finger-off). */
export const FINGER_OFF_DC = 30000
/** DC band the LED current control aims for (fractions of full scale). */
export const DC_LOW = 0.35 * FULL_SCALE
export const DC_HIGH = 0.8 * FULL_SCALE

export class Max30102 {
  bus: I2CBus
  addr: number
  redPa: number
  irPa: number
  overflows: number
  lostSamples: number
  tempC: number
  fingerOff: boolean
  tempPending: boolean

  constructor(bus: I2CBus, addr: number) {
    this.bus = bus
    this.addr = addr
    this.redPa = 0x24
    this.irPa = 0x24
    this.overflows = 0
    this.lostSamples = 0
    this.tempC = NaN
    this.fingerOff = true
    this.tempPending = false
  }

  w(reg: number, v: number): void {
    this.bus.writeTo(this.addr, [reg, v])
  }

  r(reg: number, n: number): Uint8Array {
    this.bus.writeTo(this.addr, [reg])
    return this.bus.readFrom(this.addr, n)
  }

  /** Identity check, reset, configuration. Throws with what was found if it is not a MAX30102. */
  init(): void {
    const id = this.r(REG.PART_ID, 1)[0]
    if (id !== PART_ID) throw new Error('MAX30102: expected PART_ID 0x15 at 0x' + this.addr.toString(16) + ', got 0x' + (id === undefined ? '??' : id.toString(16)))
    this.w(REG.MODE_CONFIG, 0x40) // RESET (bit 6): all registers to power-on state
    for (let i = 0; i < 10; i++) if ((this.r(REG.MODE_CONFIG, 1)[0] & 0x40) === 0) break
    this.w(REG.INT_ENABLE1, 0x00) // polled, no interrupts
    this.w(REG.FIFO_CONFIG, 0x10) // SMP_AVE 000 (no averaging), FIFO_ROLLOVER_EN 1, A_FULL 0
    this.w(REG.SPO2_CONFIG, 0x27) // ADC_RGE 01 (4096 nA), SR 001 (100 sps), LED_PW 11 (411 us, 18 bit)
    this.w(REG.LED1_PA, this.redPa) // 0.2 mA/LSB
    this.w(REG.LED2_PA, this.irPa)
    this.w(REG.FIFO_WR_PTR, 0)
    this.w(REG.OVF_COUNTER, 0)
    this.w(REG.FIFO_RD_PTR, 0)
    this.w(REG.MODE_CONFIG, 0x03) // SpO2 mode: red + IR
  }

  /**
   * Reads every sample waiting in the FIFO into red/ir from index `at`, at most `max`.
   * Returns the count. An overflow (OVF_COUNTER > 0) means the FIFO filled and
   * OVF_COUNTER samples were lost: counted in lostSamples.
   */
  read(red: Uint32Array, ir: Uint32Array, at: number, max: number): number {
    const p = this.r(REG.FIFO_WR_PTR, 3) // WR_PTR, OVF_COUNTER, RD_PTR
    let n = (p[0] - p[2]) & 31
    if (p[1] > 0) {
      this.overflows++
      this.lostSamples += p[1]
      n = 32 // full FIFO: WR_PTR == RD_PTR
    }
    if (n === 0) return 0
    if (n > max - at) n = max - at
    if (n <= 0) return 0
    const d = this.r(REG.FIFO_DATA, n * 6)
    let sumIr = 0
    let sumRed = 0
    for (let i = 0; i < n; i++) {
      const o = i * 6
      red[at + i] = ((d[o] << 16) | (d[o + 1] << 8) | d[o + 2]) & FULL_SCALE
      ir[at + i] = ((d[o + 3] << 16) | (d[o + 4] << 8) | d[o + 5]) & FULL_SCALE
      sumRed += red[at + i]
      sumIr += ir[at + i]
    }
    this.control(sumRed / n, sumIr / n)
    return n
  }

  /**
   * LED current control: keep each channel's DC inside [DC_LOW, DC_HIGH] so the AC
   * (pulsatile) part neither clips nor drowns in quantisation; nothing to track when
   * there is no finger (low IR DC).
   */
  control(dcRed: number, dcIr: number): void {
    this.fingerOff = dcIr < FINGER_OFF_DC
    if (this.fingerOff) return
    const nr = step(this.redPa, dcRed)
    const ni = step(this.irPa, dcIr)
    if (nr !== this.redPa) this.w(REG.LED1_PA, (this.redPa = nr))
    if (ni !== this.irPa) this.w(REG.LED2_PA, (this.irPa = ni))
  }

  /** Starts a die temperature conversion (TEMP_EN); collect it with readTemp about 30 ms later. */
  startTemp(): void {
    this.w(REG.TEMP_CONFIG, 0x01)
    this.tempPending = true
  }

  /** Die temperature in degrees C (TINT signed integer + TFRAC x 0.0625), once the conversion finished. */
  readTemp(): number {
    if (!this.tempPending) return this.tempC
    if (this.r(REG.TEMP_CONFIG, 1)[0] & 1) return this.tempC // still converting
    const t = this.r(REG.TEMP_INT, 2)
    const whole = t[0] > 127 ? t[0] - 256 : t[0]
    this.tempC = whole + (t[1] & 15) * 0.0625
    this.tempPending = false
    return this.tempC
  }
}

/** One LED current step toward the DC band (0.2 mA per LSB, 0..51 mA). */
function step(pa: number, dc: number): number {
  if (dc > DC_HIGH && pa > 1) return pa - Math.max(1, pa >> 3)
  if (dc < DC_LOW && pa < 255) return Math.min(255, pa + Math.max(1, pa >> 3))
  return pa
}
