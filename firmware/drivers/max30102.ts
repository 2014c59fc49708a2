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
const R_FIFO_CONFIG = 0x08, R_FIFO_DATA = 0x07, R_FIFO_WR_PTR = 0x04, R_INT_ENABLE1 = 0x02, R_LED1_PA = 0x0c, R_LED2_PA = 0x0d, R_MODE_CONFIG = 0x09, R_PART_ID = 0xff, R_TEMP_CONFIG = 0x21, R_TEMP_INT = 0x1f

const A_FIFO_WR_PTR = [R_FIFO_WR_PTR]
const A_FIFO_DATA = [R_FIFO_DATA]

export const PART_ID = 0x15
/** OVF_COUNTER[4:0] saturates here (datasheet, register 0x05: "It saturates at 0x1F"): a reading this high is a floor. */
export const OVF_MAX = 0x1f
/** SPO2_SR[4:2], LED_PW[1:0] (us; 69 us gives 15 bits ... 411 us 18) and SMP_AVE[7:5] codes, by index (datasheet register map). */
const RATES = [50, 100, 200, 400, 800, 1000, 1600, 3200]
const WIDTHS = [69, 118, 215, 411]
const AVES = [1, 2, 4, 8, 16, 32]
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

  /** Writes `a`: a register address, then bytes for it and the registers after it (auto-increment). */
  wr(a: number[]): void {
    this.bus.writeTo(this.addr, a)
  }

  w(reg: number, v: number): void {
    this.wr([reg, v])
  }

  r(reg: number, n: number): Uint8Array {
    this.wr([reg])
    return this.bus.readFrom(this.addr, n)
  }

  /**
   * Identity check, reset, configuration. Throws with what was found if it is not a MAX30102,
   * or if an option is out of range. `sps`: conversions per second (SPO2_SR: 50 ... 3200);
   * `pw`: LED pulse width in us (LED_PW: 69, 118, 215 or 411; 411 gives 18 bits, each shorter
   * step one bit less); `average`: conversions averaged into one FIFO sample (SMP_AVE: 1, 2, 4,
   * 8, 16 or 32). The FIFO rate is sps / average. Not every sps x pw pair runs in SpO2 mode
   * (datasheet table of allowed settings): a pair the chip cannot do is refused, never clamped,
   * so the rate the gateway is told is the rate the samples come at. Default 100 sps, 411 us.
   */
  init(o?: { sps?: number; average?: number; pw?: number }): void {
    // (0 is no valid value of any of them, so || picks the default only for a missing one)
    const sps = (o && o.sps) || 100
    const ave = (o && o.average) || 1
    const us = (o && o.pw) || 411
    const sr = RATES.indexOf(sps)
    const pw = WIDTHS.indexOf(us)
    const sa = AVES.indexOf(ave)
    // The datasheet's SpO2-mode table of allowed settings: the fastest SPO2_SR code at LED_PW code
    // p is 6 - p (1600 sps at 69 us, 1000 at 118, 800 at 215, 400 at 411; 3200 is HR mode only).
    if (sr < 0 || pw < 0 || sa < 0 || sr + pw > 6) throw new Error('MAX30102: ' + sps + 'sps/' + us + 'us/average ' + ave + ' not allowed')
    const id = this.r(R_PART_ID, 1)[0]
    if (id !== PART_ID) throw new Error('MAX30102: expected PART_ID 0x15 at 0x' + this.addr.toString(16) + ', got 0x' + (id === undefined ? '??' : id.toString(16)))
    this.w(R_MODE_CONFIG, 0x40) // RESET (bit 6): all registers to power-on state
    for (let i = 0; i < 10 && this.r(R_MODE_CONFIG, 1)[0] & 0x40; i++); // until RESET clears itself
    // Burst write, the register pointer auto-incrementing: INT_ENABLE1 = A_FULL_EN[7] (with
    // FIFO_A_FULL = 0 below, A_FULL flags a FULL FIFO, the one state the pointers cannot tell from
    // an empty one; polled, never watched), INT_ENABLE2 = 0, FIFO_WR_PTR = OVF_COUNTER = FIFO_RD_PTR = 0.
    this.wr([R_INT_ENABLE1, 0x80, 0, 0, 0, 0])
    // FIFO_CONFIG: SMP_AVE[7:5], FIFO_ROLLOVER_EN[4] = 1 (a late read finds the newest 32
    // samples; OVF_COUNTER counts the older ones lost), FIFO_A_FULL[3:0] = 0 (A_FULL at 32);
    // MODE_CONFIG stays 0 (off) until the end; SPO2_CONFIG: ADC_RGE[6:5] = 01 (4096 nA), SR[4:2], LED_PW[1:0].
    this.wr([R_FIFO_CONFIG, (sa << 5) | 0x10, 0, 0x20 | (sr << 2) | pw])
    this.wr([R_LED1_PA, this.redPa, this.irPa]) // LED1_PA, LED2_PA: 0.2 mA/LSB
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
    // Samples waiting: (WR_PTR - RD_PTR) mod 32 (datasheet). WR == RD is empty OR full: with
    // OVF_COUNTER > 0 samples were lost (counted in `lost`, never invented), and with OVF_COUNTER 0
    // the FIFO may have just filled, which only A_FULL tells (so INT_STATUS1 is read only then).
    this.wr(A_FIFO_WR_PTR)
    const p = this.bus.readFrom(this.addr, 3) // FIFO_WR_PTR, OVF_COUNTER, FIFO_RD_PTR
    let n = (p[0] - p[2]) & 31
    this.lost = p[1]
    if (p[1]) {
      this.overflows++
      this.lostSamples += p[1]
      n = 32
    } else if (!n && this.r(0, 1)[0] & 0x80) n = 32 // INT_STATUS1 A_FULL[7]
    if (n > max) n = max
    this.n = n
    if (n <= 0) return null
    this.wr(A_FIFO_DATA)
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
