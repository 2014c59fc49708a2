/**
 * MAX30003 single-channel ECG front end on SPI, modelled from the Maxim/ADI
 * datasheet (Rev 3, 9/2021) register by register: STATUS, EN_INT/EN_INT2
 * (INTB/INT2B), MNGR_INT, MNGR_DYN, SW_RST, SYNCH, FIFO_RST, INFO, CNFG_GEN,
 * CNFG_CAL, CNFG_EMUX, CNFG_ECG, CNFG_RTOR1/2, the 32-word ECG FIFO (normal
 * and burst reads) and RTOR. Map, tables and word format: ./max30003-map.ts;
 * high-pass and R-to-R detector: ./max30003-rtor.ts.
 *
 * SPI (datasheet "SPI Interface"): a transaction is CSB low, a command byte
 * A[6:0]‖R/W (1 = read), 24 data bits MSB first. Effects happen at the 32nd
 * SCLK: a shorter write is dropped, a shorter read returns what was clocked
 * but clears nothing and pops nothing. Burst reads of ECG_FIFO_BURST return
 * one more FIFO word per further 24 clocks, each popped once complete.
 * MISO is 0 during the command byte and for write transactions (the
 * datasheet only states it for NO_OP; an assumption for the rest).
 *
 * The part is passive: each access (and each INTB level query) first catches
 * up to the board's time, producing the samples due since the last update.
 * Sample k after EN_ECG/SYNCH is taken at t0 + k/rate from the EcgSource at
 * t − latency (the datasheet's filter latency, applied as a pure delay),
 * high-passed at 0.5 Hz when DHPF = 1, scaled as ADC = V × 2^17 × GAIN / VREF
 * and clipped to 18 bits.
 *
 * FIFO overflow (datasheet "ECG FIFO Memory"): when the write pointer has
 * gone round and caught up with the read pointer, EOVF is set and the record
 * is corrupt until FIFO_RST or SYNCH. The datasheet does not say which words
 * survive; the model keeps the 32 oldest unread samples, drops every later
 * one, and answers every read after those 32 with the OVERFLOW tag.
 */
import type { DigitalSource, SPIDevice } from '../hardware.ts'
import type { EcgSource } from '../signals/types.ts'
import {
  REG, STATUS, ETAG, INT_TERMS, RESET_VALUES, WRITE_MASK, FMSTR_HZ, ECG_GAIN, VREF_MV, ADC_MAX, ADC_MIN,
  field, sampleRate, rtorResolutionMs, effectiveDlpf, latencyMs, fifoWord, countsFromMv, calibrationMv,
} from './max30003-map.ts'
import { HighPass, RtoRDetector } from './max30003-rtor.ts'

export * from './max30003-map.ts'

const FIFO_DEPTH = 32
/** DCLOFFINT needs the lead-off condition for more than 115 ms (datasheet STATUS DCLOFFINT). */
export const LEAD_OFF_MS = 115
/** Automatic fast recovery: output beyond 2048 × FAST_TH for over 125 ms engages it for 500 ms (MNGR_DYN FAST_TH). */
const FAST_ENGAGE_MS = 125
const FAST_HOLD_MS = 500
/** Status terms that are "held until cleared by STATUS read back". */
const HELD = STATUS.FSTINT | STATUS.DCLOFFINT | STATUS.LONINT | STATUS.PLLINT | 0x0f

export interface Max30003Options {
  source: EcgSource
  /** INFO[19:16] revision nibble; default 0x4 (an assumption: the sources consulted give no value). */
  revId?: number
  /** INFO[15:0]: part-ID nibble and the 3-nibble Maxim serial; default 0x3000 (what MAX30003 chips in the field read: 0x5X3000). */
  infoLow?: number
  /** ADC reference in mV; default 1000 (datasheet typical). */
  vrefMv?: number
  /** Board time of power-up. Default 0. */
  powerOnMs?: number
}

export class Max30003 implements SPIDevice {
  /** INTB: active low, asserted while a STATUS term enabled in EN_INT[23:8] is set. Reads high when INTB_TYPE = 00 (three-state; the board's pull-up). */
  readonly intb: DigitalSource
  /** INT2B: the same for EN_INT2. */
  readonly int2b: DigitalSource
  private readonly source: EcgSource
  private readonly info: number
  private readonly vrefMv: number

  private regs = new Uint32Array(128)
  private lastMs: number
  private firstCommand = true
  private fifo = new Uint32Array(FIFO_DEPTH)
  private rd = 0
  private count = 0
  private overflow = false
  /** Sampling: sample k falls at anchorMs + k × periodMs; NaN period when the channel is off. */
  private periodMs = NaN
  private anchorMs = 0
  private k = 1
  private sampleNo = 0
  private latch = 0
  private leadOffSinceMs = NaN
  private leadOffLive = false
  private lonArmed = false
  private wasFast = false
  private fastUntilMs = -Infinity
  private saturatedSinceMs = NaN
  private rrEventMs = -Infinity
  private sampEventMs = -Infinity
  private rtorTicks = 0
  private calStartMs = 0
  private readonly hpf = new HighPass()
  private readonly rtor = new RtoRDetector()

  constructor(opts: Max30003Options) {
    if (!opts || typeof opts.source?.mv !== 'function' || typeof opts.source.leadOff !== 'function') throw new TypeError('source: expected an EcgSource with mv(tMs) and leadOff(tMs)')
    const rev = opts.revId ?? 0x4
    if (!Number.isInteger(rev) || rev < 0 || rev > 15) throw new RangeError(`revId: expected 0..15, got ${rev}`)
    const low = opts.infoLow ?? 0x3000
    if (!Number.isInteger(low) || low < 0 || low > 0xffff) throw new RangeError(`infoLow: expected 0..0xFFFF, got ${low}`)
    this.vrefMv = opts.vrefMv ?? VREF_MV
    if (!(this.vrefMv > 0)) throw new RangeError(`vrefMv: expected > 0, got ${this.vrefMv}`)
    this.source = opts.source
    this.info = (0x5 << 20) | (rev << 16) | low // INFO[23:20] = 0101, the interface-check pattern
    this.lastMs = opts.powerOnMs ?? 0
    this.powerOnReset()
    this.intb = { level: (nowMs: number) => this.pinLevel(REG.EN_INT, nowMs) }
    this.int2b = { level: (nowMs: number) => this.pinLevel(REG.EN_INT2, nowMs) }
  }

  // ---- SPIDevice ----

  transfer(tx: Uint8Array, nowMs: number): Uint8Array {
    if (!(tx instanceof Uint8Array)) throw new TypeError('tx: expected a Uint8Array')
    this.catchUp(nowMs)
    const rx = new Uint8Array(tx.length)
    if (tx.length === 0) return rx
    const first = this.firstCommand
    this.firstCommand = false
    const reg = tx[0] >>> 1
    const complete = tx.length >= 4 // the 32nd SCLK was clocked
    if ((tx[0] & 1) === 0) {
      if (complete) this.writeReg(reg, (tx[1] << 16) | (tx[2] << 8) | tx[3], nowMs)
      return rx
    }
    if (reg === REG.ECG_FIFO_BURST || reg === REG.ECG_FIFO) {
      const words = reg === REG.ECG_FIFO_BURST ? Math.ceil((tx.length - 1) / 3) : 1
      for (let w = 0; w < words; w++) {
        const whole = 1 + 3 * (w + 1) <= tx.length
        putWord(rx, 1 + 3 * w, this.readFifoWord(whole))
      }
      return rx
    }
    putWord(rx, 1, first && reg === REG.INFO ? 0 : this.readReg(reg, nowMs))
    if (complete) this.afterRead(reg, nowMs)
    return rx
  }

  /** Unread FIFO words (for tests and the simulator UI; firmware uses EINT and the tags). */
  fifoCount(nowMs: number): number {
    this.catchUp(nowMs)
    return this.count
  }

  /** Output data rate in samples/s for the current FMSTR and RATE (0 when reserved). */
  sampleRateSps(): number {
    return sampleRate(field(this.regs[REG.CNFG_GEN], 20, 2), field(this.regs[REG.CNFG_ECG], 22, 2))
  }

  /** The input-to-FIFO delay applied for the current rate and DLPF, in ms. */
  latencyMs(): number {
    const sps = this.sampleRateSps()
    return latencyMs(sps, effectiveDlpf(sps, field(this.regs[REG.CNFG_ECG], 12, 2)))
  }

  // ---- registers ----

  private powerOnReset(): void {
    this.regs.fill(0)
    for (const [reg, v] of Object.entries(RESET_VALUES)) this.regs[Number(reg)] = v
    this.firstCommand = true
    this.latch = 0
    this.rtorTicks = 0
    this.leadOffSinceMs = NaN
    this.leadOffLive = this.lonArmed = this.wasFast = false
    this.fastUntilMs = this.rrEventMs = this.sampEventMs = -Infinity
    this.clearFifo()
    this.periodMs = NaN
  }

  private readReg(reg: number, nowMs: number): number {
    switch (reg) {
      case REG.STATUS:
        return this.status(nowMs)
      case REG.INFO:
        return this.info
      case REG.RTOR:
        return (this.rtorTicks & 0x3fff) << 10 // RTOR[13:0] left-justified in D[23:10]
      case REG.CNFG_ECG: {
        const v = this.regs[reg] // an unsupported DLPF reads back as the 40 Hz it runs as
        return (v & ~0x3000) | (effectiveDlpf(this.sampleRateSps(), field(v, 12, 2)) << 12)
      }
      default:
        return WRITE_MASK[reg] === undefined ? 0 : this.regs[reg] // NO_OP, commands and reserved read 0
    }
  }

  /** Read side effects, at the 32nd SCLK. */
  private afterRead(reg: number, nowMs: number): void {
    const mngr = this.regs[REG.MNGR_INT]
    if (reg === REG.RTOR && field(mngr, 4, 2) === 1) this.latch &= ~STATUS.RRINT
    if (reg !== REG.STATUS) return
    if (field(mngr, 4, 2) === 0) this.latch &= ~STATUS.RRINT
    if (((mngr >>> 2) & 1) === 0) this.latch &= ~STATUS.SAMP
    // Held terms drop to their live state: a condition that persists stays asserted.
    this.latch &= ~HELD
    if (this.leadOffLive && this.dcLeadOffArmed()) this.latch |= STATUS.DCLOFFINT | this.ldoffBits()
    if (((mngr >>> 6) & 1) === 0 && this.fastActive(nowMs)) this.latch |= STATUS.FSTINT
    if (this.ulpActive()) {
      if (this.lonArmed && !this.source.leadOff(nowMs)) this.latch |= STATUS.LONINT
      this.lonArmed = true // the first read after enabling ULP arms lead-on detection
    }
  }

  private writeReg(reg: number, value: number, nowMs: number): void {
    if (reg === REG.SW_RST || reg === REG.SYNCH || reg === REG.FIFO_RST) {
      if (value !== 0) return // commands execute only with DIN[23:0] = 0
      if (reg === REG.SW_RST) this.powerOnReset()
      else if (reg === REG.FIFO_RST) this.clearFifo() // recording continues in phase
      else this.synch(nowMs)
      return
    }
    const mask = WRITE_MASK[reg]
    if (mask === undefined) return // read-only, NO_OP or reserved: ignored
    const old = this.regs[reg]
    let v = value & mask
    if (reg === REG.CNFG_GEN) {
      // EN_RBIAS = 01 only takes if EN_ECG is set with it or before (datasheet CNFG_GEN EN_RBIAS).
      if (field(v, 4, 2) === 1 && !((v | old) & (1 << 19))) v &= ~0x30
      if (field(v, 22, 2) === 1 && field(old, 22, 2) !== 1) {
        this.latch |= STATUS.LONINT // asserted on enabling ULP lead-on; one STATUS read arms detection
        this.lonArmed = false
      }
    }
    if (reg === REG.CNFG_CAL && (v & (1 << 22)) && !(old & (1 << 22))) this.calStartMs = nowMs
    this.regs[reg] = v
    if (reg === REG.CNFG_GEN || reg === REG.CNFG_ECG) this.retime(old, reg, nowMs)
    if (reg === REG.CNFG_RTOR1 && (v & 0x8000) && !(old & 0x8000)) this.rtor.reset(nowMs)
    if (reg === REG.MNGR_DYN) this.updateFast(nowMs)
  }

  /** Applies EN_ECG, FMSTR and RATE changes: start, stop, or keep the phase and change the step. */
  private retime(old: number, reg: number, nowMs: number): void {
    const on = (this.regs[REG.CNFG_GEN] >>> 19) & 1
    const wasOn = reg === REG.CNFG_GEN ? (old >>> 19) & 1 : on
    const sps = this.sampleRateSps()
    if (!on || sps === 0) {
      this.periodMs = NaN // channel off or reserved rate: no conversions
      return
    }
    if (!wasOn || Number.isNaN(this.periodMs)) {
      this.latch |= STATUS.PLLINT // PLL powers up unlocked; modelled as locking at once, held until read
      this.startRecording(nowMs)
    } else {
      this.anchorMs += (this.k - 1) * this.periodMs // changes apply from the next sample
      this.k = 1
    }
    this.periodMs = 1000 / sps
  }

  private startRecording(nowMs: number): void {
    this.anchorMs = nowMs
    this.k = 1
    this.sampleNo = 0
    this.hpf.reset()
    this.rtor.reset(nowMs)
    this.saturatedSinceMs = NaN
  }

  /** SYNCH: restarts ECG and R-to-R timing from now, clears the FIFO, resets the DSP filters; configuration untouched. */
  private synch(nowMs: number): void {
    this.clearFifo()
    this.rtorTicks = 0
    if (!Number.isNaN(this.periodMs)) this.startRecording(nowMs)
  }

  private clearFifo(): void {
    this.rd = this.count = 0
    this.overflow = false
  }

  // ---- status and interrupt pins ----

  private status(nowMs: number): number {
    const mngr = this.regs[REG.MNGR_INT]
    let s = this.latch
    if (this.count >= field(mngr, 19, 5) + 1) s |= STATUS.EINT // until drained below EFIT
    if (this.overflow) s |= STATUS.EOVF // until FIFO_RST or SYNCH
    const period = Number.isNaN(this.periodMs) ? 0 : this.periodMs
    if (field(mngr, 4, 2) === 2 && nowMs < this.rrEventMs + period) s |= STATUS.RRINT // self-clears after one data cycle
    if ((mngr >>> 2) & 1 && nowMs < this.sampEventMs + period / 4) s |= STATUS.SAMP // self-clears after 1/4 cycle
    return s
  }

  private pinLevel(enReg: number, nowMs: number): boolean {
    this.catchUp(nowMs)
    const en = this.regs[enReg]
    if ((en & 3) === 0) return true
    return (this.status(nowMs) & en & INT_TERMS) === 0
  }

  private ldoffBits(): number {
    // IPOL = 0 pulls ECGP up and ECGN down, so open electrodes drift past VTHH on P and VTHL on N.
    return (this.regs[REG.CNFG_GEN] >>> 11) & 1 ? STATUS.LDOFF_PL | STATUS.LDOFF_NH : STATUS.LDOFF_PH | STATUS.LDOFF_NL
  }

  private ulpActive(): boolean {
    const gen = this.regs[REG.CNFG_GEN]
    return field(gen, 22, 2) === 1 && !((gen >>> 19) & 1)
  }

  /** DC lead-off detection: EN_DCLOFF = 01 on a running channel, current sources on (IMAG ≠ 0), inputs connected. */
  private dcLeadOffArmed(): boolean {
    const gen = this.regs[REG.CNFG_GEN]
    const imag = field(gen, 8, 3)
    return field(gen, 12, 2) === 1 && !Number.isNaN(this.periodMs) && imag >= 1 && imag <= 5 && !this.inputsOpen()
  }

  private inputsOpen(): boolean {
    return (this.regs[REG.CNFG_EMUX] & 0x300000) !== 0
  }

  private fastActive(tMs: number): boolean {
    return field(this.regs[REG.MNGR_DYN], 22, 2) === 1 || tMs < this.fastUntilMs
  }

  private updateFast(tMs: number): void {
    const fast = this.fastActive(tMs)
    if (fast && !this.wasFast) this.latch |= STATUS.FSTINT
    this.wasFast = fast
  }

  // ---- sampling ----

  private catchUp(nowMs: number): void {
    if (!Number.isFinite(nowMs)) throw new RangeError(`nowMs: expected a finite time, got ${nowMs}`)
    if (nowMs < this.lastMs) throw new RangeError(`nowMs: time went backwards (${nowMs} < ${this.lastMs})`)
    this.lastMs = nowMs
    while (!Number.isNaN(this.periodMs)) {
      const t = this.anchorMs + this.k * this.periodMs
      if (t > nowMs) break
      if (this.overflow && !this.needsEverySample()) {
        this.skip(Math.floor((nowMs - t) / this.periodMs) + 1)
        break
      }
      this.k++
      this.convert(t)
    }
    if (this.ulpActive() && this.lonArmed && !this.source.leadOff(nowMs)) this.latch |= STATUS.LONINT
  }

  /** While overflowed nothing reaches the FIFO; only the R-to-R, lead-off and fast-recovery logic need each sample. */
  private needsEverySample(): boolean {
    return (this.regs[REG.CNFG_RTOR1] & 0x8000) !== 0 || this.dcLeadOffArmed() || field(this.regs[REG.MNGR_DYN], 22, 2) === 2
  }

  private skip(n: number): void {
    const div = [1, 2, 4, 16][this.regs[REG.MNGR_INT] & 3]
    const lastSamp = Math.floor((this.sampleNo + n) / div) * div
    if (lastSamp > this.sampleNo) {
      this.sampEventMs = this.anchorMs + (this.k + lastSamp - this.sampleNo - 1) * this.periodMs
      if (((this.regs[REG.MNGR_INT] >>> 2) & 1) === 0) this.latch |= STATUS.SAMP
    }
    this.k += n
    this.sampleNo += n
    this.hpf.reset() // a gap long enough to matter has settled the filter anyway
  }

  /** One conversion at tMs, pushed into the FIFO. */
  private convert(tMs: number): void {
    const gen = this.regs[REG.CNFG_GEN]
    const ecg = this.regs[REG.CNFG_ECG]
    const sps = 1000 / this.periodMs
    if (this.dcLeadOffArmed() && this.source.leadOff(tMs)) {
      if (Number.isNaN(this.leadOffSinceMs)) this.leadOffSinceMs = tMs
      if (tMs - this.leadOffSinceMs > LEAD_OFF_MS) {
        this.leadOffLive = true
        this.latch |= STATUS.DCLOFFINT | this.ldoffBits()
      }
    } else {
      this.leadOffSinceMs = NaN
      this.leadOffLive = false
    }
    // The ADC clips first; the digital high-pass then works on what it delivered.
    let counts = this.adcCounts(Math.max(0, tMs - this.latencyMs()), ECG_GAIN[field(ecg, 16, 2)])
    if ((ecg >>> 14) & 1) counts = Math.min(ADC_MAX, Math.max(ADC_MIN, Math.round(this.hpf.step(counts, 0.5, sps))))
    this.autoFast(counts, tMs)
    this.updateFast(tMs)
    const tag = this.fastActive(tMs) ? ETAG.FAST : ETAG.VALID
    if (this.regs[REG.CNFG_RTOR1] & 0x8000) {
      const fmstr = field(gen, 20, 2)
      const rr = this.rtor.step(counts, tMs, { periodMs: this.periodMs, tRtorMs: rtorResolutionMs(fmstr), rtor1: this.regs[REG.CNFG_RTOR1], rtor2: this.regs[REG.CNFG_RTOR2] })
      if (!Number.isNaN(rr)) {
        this.rtorTicks = Math.round(rr / rtorResolutionMs(fmstr)) & 0x3fff // rolls over, as the datasheet says
        this.rrEventMs = tMs
        if (field(this.regs[REG.MNGR_INT], 4, 2) !== 2) this.latch |= STATUS.RRINT
      }
    }
    this.sampleNo++
    if (this.sampleNo % [1, 2, 4, 16][this.regs[REG.MNGR_INT] & 3] === 0) {
      this.sampEventMs = tMs
      if (((this.regs[REG.MNGR_INT] >>> 2) & 1) === 0) this.latch |= STATUS.SAMP
    }
    this.push(fifoWord(counts, tag))
  }

  /** ADC output for the input at tMs: electrodes (driven to a rail when off with lead-off currents on), or the calibration sources. */
  private adcCounts(tMs: number, gain: number): number {
    const emux = this.regs[REG.CNFG_EMUX]
    const sign = (emux >>> 23) & 1 ? -1 : 1 // POL: inverted input
    if (this.inputsOpen() || (emux & 0x0f0000) !== 0) {
      const gen = this.regs[REG.CNFG_GEN]
      return countsFromMv(sign * calibrationMv(tMs - this.calStartMs, this.regs[REG.CNFG_CAL], emux, FMSTR_HZ[field(gen, 20, 2)]), gain, this.vrefMv)
    }
    if (this.dcLeadOffArmed() && this.source.leadOff(tMs)) {
      // IPOL = 0 pulls ECGP up and ECGN down: a full-scale positive input (negative for IPOL = 1).
      return sign * ((this.regs[REG.CNFG_GEN] >>> 11) & 1 ? -1 : 1) > 0 ? ADC_MAX : ADC_MIN
    }
    const mv = this.source.mv(tMs)
    if (!Number.isFinite(mv)) throw new RangeError(`source.mv(${tMs}): expected a finite mV value, got ${mv}`)
    return countsFromMv(sign * mv, gain, this.vrefMv)
  }

  private autoFast(counts: number, tMs: number): void {
    if (field(this.regs[REG.MNGR_DYN], 22, 2) !== 2) return
    if (Math.abs(counts) > 2048 * field(this.regs[REG.MNGR_DYN], 16, 6)) {
      if (Number.isNaN(this.saturatedSinceMs)) this.saturatedSinceMs = tMs
      if (tMs - this.saturatedSinceMs > FAST_ENGAGE_MS) {
        this.fastUntilMs = tMs + FAST_HOLD_MS
        this.saturatedSinceMs = NaN
      }
    } else this.saturatedSinceMs = NaN
  }

  private push(word: number): void {
    if (this.overflow) return
    if (this.count === FIFO_DEPTH) {
      this.overflow = true // the write pointer caught up with the read pointer
      return
    }
    this.fifo[(this.rd + this.count) % FIFO_DEPTH] = word
    this.count++
  }

  /** The word at the read pointer with its tag as read now (EOF on the last one); pops it when the word was clocked out whole. */
  private readFifoWord(pop: boolean): number {
    if (this.count === 0) return fifoWord(0, this.overflow ? ETAG.OVERFLOW : ETAG.EMPTY)
    let word = this.fifo[this.rd]
    if (this.count === 1 && !this.overflow) word |= ETAG.VALID_EOF << 3 // VALID → VALID_EOF, FAST → FAST_EOF
    if (pop) {
      this.rd = (this.rd + 1) % FIFO_DEPTH
      this.count--
    }
    return word
  }
}

/** Writes the low 24 bits of `v` MSB first at rx[at..at+2], as far as rx reaches. */
function putWord(rx: Uint8Array, at: number, v: number): void {
  for (let i = 0; i < 3 && at + i < rx.length; i++) rx[at + i] = (v >>> (16 - 8 * i)) & 0xff
}
