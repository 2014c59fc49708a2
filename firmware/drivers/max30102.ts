/**
 * Maxim MAX30102 pulse oximeter over I2C (MAX30102 datasheet, register map table):
 * SpO2 mode (red + IR), 411 us pulses (18-bit), 4096 nA full scale; 100 conversions/s by
 * default, or the rate and SMP_AVE averaging given to init().
 * The FIFO holds 32 samples of 6 bytes (red then IR, 3 bytes each, MSB first, 18 bits;
 * datasheet "FIFO Data Register"). Two ways to empty it:
 * - burst(max): the raw bytes of every waiting sample in ONE readFrom (the frame-v2 pipeline
 *   copies them into its window with one typed-array set: no JavaScript per sample);
 * - read(red, ir, at, max): decoded into caller-supplied typed arrays (the AD8232 option's
 *   v1 frames, which delta-pack red/IR per sample).
 * Both count overflow, adjust LED currents to keep the IR/red DC level in range and flag
 * finger-off; the die temperature is read on request.
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

// The registers the driver uses, as plain numbers (REG is for callers and tests); the burst's
// register pointers as the arrays writeTo takes, made once.
const R_FIFO_CONFIG = 0x08, R_FIFO_DATA = 0x07, R_FIFO_RD_PTR = 0x06, R_FIFO_WR_PTR = 0x04, R_INT_ENABLE1 = 0x02, R_LED1_PA = 0x0c, R_LED2_PA = 0x0d, R_MODE_CONFIG = 0x09, R_OVF_COUNTER = 0x05, R_PART_ID = 0xff, R_SPO2_CONFIG = 0x0a, R_TEMP_CONFIG = 0x21, R_TEMP_INT = 0x1f

const A_FIFO_WR_PTR = [R_FIFO_WR_PTR]
const A_FIFO_DATA = [R_FIFO_DATA]

export const PART_ID = 0x15
/** SPO2_SR[4:2] codes for the conversion rates allowed at LED_PW 411 us in SpO2 mode (datasheet SpO2 configuration table). */
const SR_CODES: { [sps: number]: number } = { 50: 0, 100: 1, 200: 2, 400: 3 }
/** SMP_AVE[7:5] codes (datasheet FIFO configuration table). */
const AVE_CODES: { [n: number]: number } = { 1: 0, 2: 1, 4: 2, 8: 3, 16: 4, 32: 5 }
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
  /** Samples in the last burst() (6 bytes each). */
  n: number
  /** Samples the last burst() found lost (OVF_COUNTER; 0 without overflow). */
  lost: number

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
    this.n = 0
    this.lost = 0
  }

  w(reg: number, v: number): void {
    this.bus.writeTo(this.addr, [reg, v])
  }

  r(reg: number, n: number): Uint8Array {
    this.bus.writeTo(this.addr, [reg])
    return this.bus.readFrom(this.addr, n)
  }

  /**
   * Identity check, reset, configuration. Throws with what was found if it is not a MAX30102,
   * or if an option is out of range. `sps`: conversions per second (SPO2_SR: 50, 100, 200 or
   * 400, the rates the datasheet allows at a 411 us pulse in SpO2 mode); `average`: conversions
   * averaged into one FIFO sample (SMP_AVE: 1, 2, 4, 8, 16 or 32). The FIFO rate is sps / average.
   * Default 100 sps, no averaging.
   */
  init(o?: { sps?: number; average?: number }): void {
    const sps = o && o.sps !== undefined ? o.sps : 100
    const ave = o && o.average !== undefined ? o.average : 1
    const sr = SR_CODES[sps]
    const sa = AVE_CODES[ave]
    if (sr === undefined || sa === undefined) throw new Error('MAX30102: bad sps/average ' + sps + '/' + ave)
    const id = this.r(R_PART_ID, 1)[0]
    if (id !== PART_ID) throw new Error('MAX30102: expected PART_ID 0x15 at 0x' + this.addr.toString(16) + ', got 0x' + (id === undefined ? '??' : id.toString(16)))
    this.w(R_MODE_CONFIG, 0x40) // RESET (bit 6): all registers to power-on state
    for (let i = 0; i < 10; i++) if ((this.r(R_MODE_CONFIG, 1)[0] & 0x40) === 0) break
    this.w(R_INT_ENABLE1, 0x00) // polled, no interrupts
    // FIFO_CONFIG: SMP_AVE[7:5], FIFO_ROLLOVER_EN[4] = 1 (a late read finds the newest 32
    // samples; OVF_COUNTER counts the older ones lost), FIFO_A_FULL[3:0] = 0 (polled, unused).
    this.w(R_FIFO_CONFIG, (sa << 5) | 0x10)
    // SPO2_CONFIG: ADC_RGE[6:5] = 01 (4096 nA), SR[4:2], LED_PW[1:0] = 11 (411 us, 18 bit).
    this.w(R_SPO2_CONFIG, 0x20 | (sr << 2) | 3)
    this.w(R_LED1_PA, this.redPa) // 0.2 mA/LSB
    this.w(R_LED2_PA, this.irPa)
    this.w(R_FIFO_WR_PTR, 0)
    this.w(R_OVF_COUNTER, 0)
    this.w(R_FIFO_RD_PTR, 0)
    this.w(R_MODE_CONFIG, 0x03) // SpO2 mode: red + IR
  }

  /**
   * The raw bytes of the samples waiting in the FIFO, at most `max`, in ONE readFrom of 6n
   * bytes (red then IR per sample, 3 bytes each, as the chip sends them); null when none.
   * Sets `n` (samples) and `lost` (OVF_COUNTER: samples lost since the last read; with
   * rollover they are the oldest, so they come before this burst's samples). Work does not
   * depend on n; LED control is track(), called now and then.
   */
  burst(max: number): Uint8Array | null {
    this.bus.writeTo(this.addr, A_FIFO_WR_PTR)
    const p = this.bus.readFrom(this.addr, 3) // FIFO_WR_PTR, OVF_COUNTER, FIFO_RD_PTR
    let n = (p[0] - p[2]) & 31
    this.lost = p[1]
    if (p[1] > 0) {
      this.overflows++
      this.lostSamples += p[1]
      n = 32 // full FIFO: WR_PTR == RD_PTR
    }
    if (n > max) n = max
    this.n = n
    if (n <= 0) return null
    this.bus.writeTo(this.addr, A_FIFO_DATA)
    return this.bus.readFrom(this.addr, n * 6)
  }

  /** LED control and finger-off from the last sample of a burst (its DC level): once in a while, not per burst. */
  track(d: Uint8Array, n: number): void {
    const o = n * 6 - 6
    this.control(((d[o] << 16) | (d[o + 1] << 8) | d[o + 2]) & FULL_SCALE, ((d[o + 3] << 16) | (d[o + 4] << 8) | d[o + 5]) & FULL_SCALE)
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
    if (nr !== this.redPa) this.w(R_LED1_PA, (this.redPa = nr))
    if (ni !== this.irPa) this.w(R_LED2_PA, (this.irPa = ni))
  }

  /** Starts a die temperature conversion (TEMP_EN); collect it with readTemp about 30 ms later. */
  startTemp(): void {
    this.w(R_TEMP_CONFIG, 0x01)
    this.tempPending = true
  }

  /** Die temperature in degrees C (TINT signed integer + TFRAC x 0.0625), once the conversion finished. */
  readTemp(): number {
    if (!this.tempPending) return this.tempC
    if (this.r(R_TEMP_CONFIG, 1)[0] & 1) return this.tempC // still converting
    const t = this.r(R_TEMP_INT, 2)
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
