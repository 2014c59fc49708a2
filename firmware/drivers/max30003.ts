/**
 * Maxim MAX30003 ECG analog front end over SPI (MAX30003 datasheet: SPI interface, register
 * map, the per-register description tables, and the ECG FIFO section). No JavaScript runs per
 * sample (issue 24): the chip's 32-word ECG FIFO is emptied in bursts, each burst one native
 * `spi.send`, and the raw 3-byte words land in the caller's buffer with one typed-array `set`.
 *
 * SPI framing (datasheet, SPI interface): one transaction per CSB low period, 32 SCLKs:
 * command byte A[6:0] then R/W (1 = read), then 24 data bits MSB first. A burst read of
 * ECG_FIFO_BURST keeps CSB low and clocks 24 more bits per word; the FIFO read pointer
 * advances on SCLK edge 32 + 24n, so one transaction reads n words.
 *
 * ECG FIFO word (datasheet, ECG FIFO / ETAG description): D[23:6] the 18-bit two's-complement
 * sample, D[5:3] ETAG, D[2:0] not used here. The caller's buffer gets the words unchanged
 * (value and tag both), so a later bulk decoder can see FAST-recovery samples; this driver
 * only ever looks at the tag of the last word or the last few of a burst.
 *
 * Cost of one drain, in interpreted statements (ESP32 budget: see espruino-facts.md), counted
 * on the code below; none of it depends on how many samples the burst carries:
 * - normal case (the last drain emptied the FIFO, 30 samples due or fewer): about 40
 *   statements, one `send`, one `subarray` view and one `set`. The trailing-EMPTY scan takes
 *   one step per word requested beyond the FIFO's end (SLACK = 2, so 1 to 3 steps).
 * - worst case: a STATUS read (~10 statements and a send) when 31+ samples could be waiting,
 *   MAX_BURSTS = 3 bursts (~25 statements each), and a scan of the words over-read (at most
 *   32, only after the caller's buffer or MAX_BURSTS cut a drain short): about 120 statements
 *   and 4 sends. At 512 sps, drains every 58 ms or less keep to the normal case.
 * Nothing in a drain loops over the samples themselves.
 */

/**
 * The bus the driver needs: one CSB-framed, full-duplex transfer, returning what came back on
 * MISO. Espruino's SPI object is one: `send(data, nss)` frames the transfer on the chip-select
 * pin given to the driver (passing SPI2 itself saves a JavaScript call per transfer).
 */
export interface SpiBus {
  send(tx: Uint8Array, cs?: any): Uint8Array
}

/** Register addresses (datasheet register map). */
export const REG = {
  NO_OP: 0x00,
  STATUS: 0x01,
  EN_INT: 0x02,
  EN_INT2: 0x03,
  MNGR_INT: 0x04,
  MNGR_DYN: 0x05,
  SW_RST: 0x08,
  SYNCH: 0x09,
  FIFO_RST: 0x0a,
  INFO: 0x0f,
  CNFG_GEN: 0x10,
  CNFG_CAL: 0x12,
  CNFG_EMUX: 0x14,
  CNFG_ECG: 0x15,
  CNFG_RTOR1: 0x1d,
  CNFG_RTOR2: 0x1e,
  ECG_FIFO_BURST: 0x20,
  ECG_FIFO: 0x21,
  RTOR: 0x25,
}

/** STATUS (0x01) bits (datasheet STATUS table). EN_INT uses the same positions for its enables. */
export const STATUS = {
  EINT: 0x800000, // D23 ECG FIFO holds >= EFIT unread words
  EOVF: 0x400000, // D22 ECG FIFO overflowed; held until FIFO_RST or SYNCH
  FSTINT: 0x200000, // D21 fast recovery engaged
  DCLOFFINT: 0x100000, // D20 DC lead-off for > 115 ms; held until a STATUS read after it ends
  LONINT: 0x000800, // D11 ultra-low-power leads-on
  RRINT: 0x000400, // D10 R event; cleared as CLR_RRINT in MNGR_INT says
  SAMP: 0x000200, // D9 sample pulse
  PLLINT: 0x000100, // D8 PLL not (yet) locked; held until a STATUS read after it locks
  LDOFF_PH: 0x08, // D3 ECGP above VTHH
  LDOFF_PL: 0x04, // D2 ECGP below VTHL
  LDOFF_NH: 0x02, // D1 ECGN above VTHH
  LDOFF_NL: 0x01, // D0 ECGN below VTHL
}

/** ETAG values, ECG FIFO word D[5:3] (datasheet, ECG FIFO data tags). */
export const ETAG = {
  VALID: 0, // valid sample and time step
  FAST: 1, // time step valid, voltage invalid (fast recovery)
  VALID_EOF: 2, // valid, and the last sample currently in the FIFO
  FAST_EOF: 3, // fast, and the last sample currently in the FIFO
  EMPTY: 6, // read past the end of the FIFO: not a sample, not a time step
  OVERFLOW: 7, // the FIFO overflowed: samples are missing
}

// The registers, STATUS bits and tags the driver itself uses, as plain numbers (the tables
// above are for callers and tests; a bundle that does not use them leaves them out).
const R_CNFG_ECG = 0x15, R_CNFG_EMUX = 0x14, R_CNFG_GEN = 0x10, R_CNFG_RTOR1 = 0x1d, R_ECG_FIFO_BURST = 0x20, R_EN_INT = 0x02, R_FIFO_RST = 0x0a, R_INFO = 0x0f, R_MNGR_INT = 0x04, R_RTOR = 0x25, R_STATUS = 0x01, R_SW_RST = 0x08, R_SYNCH = 0x09
const S_DCLOFFINT = 0x100000, S_EOVF = 0x400000, S_PLLINT = 0x000100, S_RRINT = 0x000400
const T_EMPTY = 6, T_FAST = 1, T_OVERFLOW = 7, T_VALID = 0

/**
 * INFO (0x0F), datasheet register map: D[23:20] the fixed pattern 0101, D[19:16] REV_ID; the
 * rest holds part and serial bits. Only the documented pattern identifies the part: chips read
 * 0x513000 in the field, but the datasheet does not fix D[15:0], and a register-compatible
 * sibling (MAX30001) drives the ECG channel the same way.
 */
export const INFO_ID_MASK = 0xf00000
export const INFO_ID = 0x500000

/** The ECG FIFO holds 32 words (datasheet, ECG FIFO). */
export const FIFO_WORDS = 32
/** Words requested beyond the samples the elapsed time says are due: absorbs timer phase and clock drift. */
export const SLACK = 2
/** Size of a follow-up burst when the first one ended on a sample that was not the last (no EOF tag). */
export const FOLLOW_UP = 4
/** Bursts per drain at most; what is left then is read by the next drain (a full 32-word burst). */
export const MAX_BURSTS = 3

export interface Max30003Options {
  /** ECG samples/s at FMSTR = 00 (32768 Hz master clock): 128, 256 or 512. Default 256. */
  rate?: number
  /** ECG channel gain in V/V: 20, 40, 80 or 160. Default 80 (full scale +-VREF/gain = +-12.5 mV). */
  gain?: number
  /** ECG FIFO interrupt threshold, unread words that pull INTB low: 1..32. Default 16 (62.5 ms at 256 sps). */
  efit?: number
}

export interface DrainResult {
  /** Words copied into the caller's buffer (3 bytes each), all real samples. */
  n: number
  /** On overflow: samples lost, estimated from the time since the last drain (the FIFO is discarded). */
  lostSamples: number
  overflow: boolean
}

export interface Max30003Status {
  /** STATUS as read, OR the bits drains saw since the last status() (latched bits are not lost). */
  status: number
  /** DCLOFFINT: an electrode has been off for more than 115 ms. */
  leadsOff: boolean
  /** LDOFF_PH, LDOFF_PL, LDOFF_NH, LDOFF_NL (STATUS D[3:0]): which input crossed which threshold. */
  ldoff: number
  /** The R-to-R interval in ms when a new R event was detected (RRINT), else 0. */
  rrMs: number
  /** PLLINT: the PLL has not locked (e.g. no 32.768 kHz clock on FCLK). */
  pllUnlocked: boolean
}

const RATES: { [sps: number]: number } = { 512: 0, 256: 1, 128: 2 } // CNFG_ECG RATE[1:0] at FMSTR = 00
const GAINS: { [vv: number]: number } = { 20: 0, 40: 1, 80: 2, 160: 3 } // CNFG_ECG GAIN[1:0]

function hex6(v: number): string {
  let s = (v >>> 0).toString(16)
  while (s.length < 6) s = '0' + s
  return '0x' + s
}

export class Max30003 {
  bus: SpiBus
  boardMs: () => number
  sps: number
  /** RTOR LSB in ms: 256 master-clock periods, 7.8125 ms at FMSTR = 00 (32768 Hz). */
  rtorMs: number
  revision: number
  /** Board time of the last drain (or of SYNCH / FIFO_RST). */
  lastMs: number
  /** The last drain stopped before the FIFO's end: the next reads a full FIFO and checks EOVF. */
  behind: boolean
  /**
   * Words the last drain asked for but left for lack of room in the caller's buffer (a window
   * boundary): the next drain, normally in the same callback, asks for those instead of a full
   * FIFO, and needs no STATUS read (nothing can have overflowed in between).
   */
  cut: number
  /** The PLL was not locked at SYNCH: drains wait for the lock, then SYNCH again. */
  pllWait: boolean
  /** STATUS bits seen by drains, handed to the next status() (STATUS reads clear some of them). */
  latched: number
  overflows: number
  lostSamples: number
  /** Command byte of a burst read, then 32 words of zeros clocked out while the FIFO is read. */
  tx: Uint8Array
  /** tx views of 1 + 3n bytes, made once per n: no allocation in the steady state. */
  views: Uint8Array[]
  /** One 32-bit register transaction. */
  w4: Uint8Array
  result: DrainResult
  st: Max30003Status

  /** Chip select handed to every send (undefined: the bus object frames transfers itself). */
  cs: any

  constructor(bus: SpiBus, boardMs: () => number, cs?: any) {
    if (!bus || typeof bus.send !== 'function') throw new Error('MAX30003: expected an SPI bus with send(tx), got ' + typeof bus)
    if (typeof boardMs !== 'function') throw new Error('MAX30003: expected a board clock function (ms), got ' + typeof boardMs)
    this.bus = bus
    this.boardMs = boardMs
    this.cs = cs
    this.sps = 256
    this.rtorMs = 7.8125
    this.revision = -1
    this.lastMs = 0
    this.behind = false
    this.cut = 0
    this.pllWait = false
    this.latched = 0
    this.overflows = 0
    this.lostSamples = 0
    this.tx = new Uint8Array(1 + 3 * FIFO_WORDS)
    this.tx[0] = (R_ECG_FIFO_BURST << 1) | 1
    this.views = []
    this.w4 = new Uint8Array(4)
    this.result = { n: 0, lostSamples: 0, overflow: false }
    this.st = { status: 0, leadsOff: false, ldoff: 0, rrMs: 0, pllUnlocked: false }
  }

  write(reg: number, v: number): void {
    const b = this.w4
    b[0] = reg << 1 // A[6:0], R/W = 0
    b[1] = (v >> 16) & 255
    b[2] = (v >> 8) & 255
    b[3] = v & 255
    this.bus.send(b, this.cs)
  }

  read(reg: number): number {
    const b = this.w4
    b[0] = (reg << 1) | 1 // A[6:0], R/W = 1
    b[1] = 0
    b[2] = 0
    b[3] = 0
    const r = this.bus.send(b, this.cs)
    if (!r || r.length < 4) throw new Error('MAX30003: expected 4 bytes back from SPI, got ' + (r ? r.length : r))
    return (r[1] << 16) | (r[2] << 8) | r[3]
  }

  /**
   * Reset, identity check, configuration, SYNCH. Throws with what was found if the part on the
   * bus is not a MAX30003, or if an option is out of range.
   */
  init(options?: Max30003Options): void {
    const o = options || {}
    const rate = o.rate === undefined ? 256 : o.rate
    const gain = o.gain === undefined ? 80 : o.gain
    const efit = o.efit === undefined ? 16 : o.efit
    if (typeof rate !== 'number' || RATES[rate] === undefined) throw new Error('MAX30003: rate: expected 128, 256 or 512 sps, got ' + rate)
    if (typeof gain !== 'number' || GAINS[gain] === undefined) throw new Error('MAX30003: gain: expected 20, 40, 80 or 160 V/V, got ' + gain)
    if (typeof efit !== 'number' || efit !== Math.floor(efit) || efit < 1 || efit > 32) throw new Error('MAX30003: efit: expected an integer 1..32, got ' + efit)

    // SW_RST (0x08): executes only with DIN[23:0] = 0; same as a power cycle (datasheet SW_RST).
    this.write(R_SW_RST, 0)
    // INFO does not read back valid data as the first command after a power cycle or SW_RST
    // (datasheet INFO note): the first read only satisfies that rule, the second is checked.
    this.read(R_INFO)
    const info = this.read(R_INFO)
    if ((info & INFO_ID_MASK) !== INFO_ID) {
      const dead = info === 0 || info === 0xffffff
      throw new Error('MAX30003: expected INFO ' + hex6(INFO_ID) + ' under mask ' + hex6(INFO_ID_MASK) + ' (pattern 0101 in D[23:20]), got ' + hex6(info) +
        (dead ? ' (MISO stuck: check CS, SCLK, MISO and power)' : ''))
    }
    this.revision = (info >> 16) & 15

    // CNFG_GEN (0x10), datasheet CNFG_GEN table: 0x081217
    //   EN_ULP_LON[23:22] = 00  ultra-low-power lead-on detection off (it only runs with ECG off)
    //   FMSTR[21:20]      = 00  32768 Hz master clock: 512/256/128 sps ECG rates, tRES 15.26 us
    //   EN_ECG[19]        = 1   ECG channel on (also required by R-to-R and resistive bias)
    //   EN_DCLOFF[13:12]  = 01  DC lead-off detection on ECGP/ECGN
    //   DCLOFF_IPOL[11]   = 0   ECGP pulled up, ECGN pulled down
    //   DCLOFF_IMAG[10:8] = 010 10 nA: <= 10 mV across a 1 MOhm electrode contact, while an open
    //                           lead is driven into the 100 MOhm bias resistor to ~1 V, well past
    //   DCLOFF_VTH[7:6]   = 00  VMID +-300 mV
    //   EN_RBIAS[5:4]     = 01  resistive lead bias on (set together with EN_ECG, or it stays 00)
    //   RBIASV[3:2]       = 01  100 MOhm
    //   RBIASP[1]         = 1   ECGP biased to VMID
    //   RBIASN[0]         = 1   ECGN biased to VMID
    this.write(R_CNFG_GEN, 0x081217)

    // CNFG_ECG (0x15), datasheet CNFG_ECG table (rates by FMSTR: the table CNFG_ECG cites, Table 29):
    //   RATE[23:22]  = 00/01/10  512/256/128 sps at FMSTR = 00
    //   GAIN[17:16]  = 00..11    20/40/80/160 V/V
    //   DHPF[14]     = 1         0.5 Hz digital high-pass: removes electrode offset and baseline
    //                            wander, the low corner of the monitoring band
    //   DLPF[13:12]  = 01        ~40 Hz digital low-pass: a monitor's upper corner; cuts EMG and
    //                            most mains pickup, and is the one setting valid at every rate
    // A monitor shows rhythm and rate, not ST morphology: 0.5-40 Hz is the monitoring band
    // (the 0.05-150 Hz diagnostic band would keep baseline wander and muscle noise).
    this.write(R_CNFG_ECG, (RATES[rate] << 22) | (GAINS[gain] << 16) | (1 << 14) | (1 << 12))
    this.sps = rate

    // CNFG_EMUX (0x14), datasheet CNFG_EMUX table: 0x000000
    //   POL[23] = 0 non-inverted; OPENP[21] = 0, OPENN[20] = 0 inputs connected (reset value 1 =
    //   isolated); CALP_SEL[19:18] = 00, CALN_SEL[17:16] = 00 no calibration source
    this.write(R_CNFG_EMUX, 0x000000)

    // CNFG_RTOR1 (0x1D), datasheet CNFG_RTOR1 table: 0x3FA300 (reset values, detection on)
    //   WNDW[23:20] = 0011 12 x 8 ms = 96 ms averaging window (QRS width)
    //   GAIN[19:16] = 1111 auto-scale
    //   EN_RTOR[15] = 1    R-to-R detection on (needs EN_ECG)
    //   PAVG[13:12] = 10   peak averaging weight 8
    //   PTSF[11:8]  = 0011 threshold 4/16 of the peak average
    this.write(R_CNFG_RTOR1, 0x3fa300)

    // MNGR_INT (0x04), datasheet MNGR_INT table:
    //   EFIT[23:19]     = efit - 1  EINT (INTB low) once efit words are unread; clears when the
    //                               FIFO is read below the threshold
    //   CLR_FAST[6]     = 0         FSTINT held while fast recovery lasts
    //   CLR_RRINT[5:4]  = 01        RRINT clears when RTOR is read: STATUS reads by drains cannot
    //                               lose an R-to-R interval before status() reads it
    //   CLR_SAMP[2]     = 1         SAMP self-clears (unused)
    //   SAMP_IT[1:0]    = 00
    // Other terms: DCLOFFINT and PLLINT are held until a STATUS read after the condition ends;
    // EOVF is held until FIFO_RST or SYNCH (datasheet STATUS table).
    this.write(R_MNGR_INT, ((efit - 1) << 19) | 0x000014)

    // EN_INT (0x02), datasheet EN_INT table: 0xD00403
    //   EN_EINT[23] = 1, EN_EOVF[22] = 1, EN_DCLOFFINT[20] = 1, EN_RRINT[10] = 1 on INTB
    //   INTB_TYPE[1:0] = 11 open-drain with the internal 125 kOhm pull-up (shareable line)
    this.write(R_EN_INT, 0xd00403)

    // The datasheet (SYNCH) asks to wait for PLL lock before SYNCH after a CNFG_GEN change.
    // Waiting here would stall every timer on the board, so SYNCH now and, if STATUS says the
    // PLL is still unlocked, let the drains poll STATUS and SYNCH again once it locks.
    this.pllWait = (this.read(R_STATUS) & S_PLLINT) !== 0
    // SYNCH (0x09): DIN = 0; restarts the ECG and R-to-R timing, clears the FIFO and the
    // filters: time zero of the record.
    this.write(R_SYNCH, 0)
    this.lastMs = this.boardMs()
    this.behind = false
    this.cut = 0
    this.latched = 0
  }

  /** The tx view for a burst of n words: command byte plus 3n bytes. */
  view(n: number): Uint8Array {
    let v = this.views[n]
    if (!v) v = this.views[n] = this.tx.subarray(0, 1 + 3 * n)
    return v
  }

  /**
   * Copies the samples waiting in the ECG FIFO into `into` from byte `offset` (3 bytes per
   * sample, MSB first, as the chip sends them) and returns a result object reused across calls.
   * The request size comes from the time since the last drain; the tags of the last words say
   * whether the FIFO was over-read (EMPTY: trimmed), still holds more (no EOF: another burst),
   * or overflowed (the burst is discarded, FIFO_RST, the gap is reported). Never invents samples.
   * `nowMs`: the board time, if the caller has just read it (saves a call).
   *
   * The common case is kept short (a drain is the board's most frequent callback): the last
   * drain emptied the FIFO, the samples due fit one burst and the caller's buffer, and the
   * burst ends past the FIFO's end. Everything else continues in drainAll().
   */
  drain(into: Uint8Array, offset: number, nowMs?: number): DrainResult {
    const now = nowMs === undefined ? this.boardMs() : nowMs
    const due = ((now - this.lastMs) * this.sps) / 1000
    this.lastMs = now
    const n = Math.ceil(due) + SLACK
    if (this.pllWait || this.behind || n > FIFO_WORDS || 3 * n > into.length - offset) return this.drainAll(into, offset, due, null, 0)
    const rx = this.bus.send(this.views[n] || this.view(n), this.cs)
    if (((rx[3 * n] >> 3) & 7) !== T_EMPTY) return this.drainAll(into, offset, due, rx, n)
    let k = n - 1
    while (k > 0 && ((rx[3 * k] >> 3) & 7) === T_EMPTY) k--
    if (k > 1 && ((rx[3 * k - 3] >> 3) & 7) === T_EMPTY) k = this.keep(rx, k, T_VALID)
    into.set(rx.subarray(1, 1 + 3 * k), offset)
    const r = this.result
    r.n = k
    r.lostSamples = 0
    r.overflow = false
    return r
  }

  /** The general drain: STATUS check when the FIFO may be full, follow-up bursts; `rx0`: a first burst of n0 words already read. */
  drainAll(into: Uint8Array, offset: number, due: number, rx0: Uint8Array | null, n0: number): DrainResult {
    const r = this.result
    r.n = 0
    r.lostSamples = 0
    r.overflow = false
    if (this.pllWait) return this.waitPll()
    const cut = this.cut
    this.cut = 0
    if (!rx0 && ((this.behind && !cut) || due > FIFO_WORDS - SLACK - cut)) {
      // The FIFO may have filled. Which word of a burst carries the OVERFLOW tag is not
      // something to scan for; EOVF in STATUS is held until FIFO_RST, so one read settles it.
      const s = this.read(R_STATUS)
      this.latched |= s
      if (s & S_EOVF) return this.overflowed(due)
    }
    let want = rx0 ? n0 : Math.min(FIFO_WORDS, cut ? cut + Math.ceil(due) : this.behind ? FIFO_WORDS : Math.ceil(due) + SLACK)
    let room = ((into.length - offset) / 3) | 0
    let at = offset
    this.behind = true
    for (let b = 0; b < MAX_BURSTS; b++) {
      const n = want < room ? want : room
      if (n <= 0) break
      const rx = b === 0 && rx0 ? rx0 : this.bus.send(this.views[n] || this.view(n), this.cs)
      if (!rx || rx.length < 1 + 3 * n) throw new Error('MAX30003: short FIFO burst ' + (rx ? rx.length : rx))
      const tag = (rx[3 * n] >> 3) & 7 // ETAG of the last word
      if (tag === T_OVERFLOW) return this.overflowed(due)
      const k = this.keep(rx, n, tag)
      into.set(rx.subarray(1, 1 + 3 * k), at)
      at += 3 * k
      room -= k
      r.n += k
      if (tag !== T_VALID && tag !== T_FAST) {
        // An EOF tag, or EMPTY words after the last sample: the FIFO is empty.
        this.behind = false
        break
      }
      if (n < want && room === 0) {
        this.cut = want - n // stopped by the caller's buffer, not by the FIFO
        break
      }
      want = FOLLOW_UP // the last word was a sample but not the last one: more are waiting
    }
    return r
  }

  /**
   * Words to keep from a burst of n whose last word has tag `tag`. Reads past the FIFO's end
   * (EMPTY) are dropped from the end: as many steps as words were over-read. A sample written
   * while the burst was already reading EMPTY words (the burst outlived the FIFO by a sample
   * period) comes after EMPTY words: it is moved down over them, so what is kept is samples only.
   */
  keep(rx: Uint8Array, n: number, tag: number): number {
    // Word i's tag byte is rx[3 + 3i]; k counts the words kept, word k - 1 is the last one.
    let k = n
    if (tag === T_EMPTY) {
      k = n - 1
      while (k > 0 && ((rx[3 * k] >> 3) & 7) === T_EMPTY) k--
    }
    if (k < 2 || ((rx[3 * k - 3] >> 3) & 7) !== T_EMPTY) return k
    let j = k - 2
    while (j > 0 && ((rx[3 * j] >> 3) & 7) === T_EMPTY) j--
    const src = 3 * k - 2
    const dst = 1 + 3 * j
    rx[dst] = rx[src]
    rx[dst + 1] = rx[src + 1]
    rx[dst + 2] = rx[src + 2]
    return j + 1
  }

  /** Overflow: the record has a gap. Nothing from this FIFO is kept; FIFO_RST restarts it. */
  overflowed(due: number): DrainResult {
    // FIFO_RST (0x0A), DIN = 0: empties the FIFO and clears EOVF without disturbing the ECG
    // timing (datasheet FIFO_RST; recommended over SYNCH for one channel).
    this.write(R_FIFO_RST, 0)
    const lost = Math.round(due)
    this.behind = false
    this.latched &= ~S_EOVF
    this.overflows++
    this.lostSamples += lost
    const r = this.result
    r.n = 0
    r.lostSamples = lost
    r.overflow = true
    return r
  }

  /** Before the PLL locks there is no record yet: poll STATUS, SYNCH once PLLINT reads clear. */
  waitPll(): DrainResult {
    const s = this.read(R_STATUS)
    this.latched |= s & ~S_PLLINT
    if ((s & S_PLLINT) === 0) {
      this.write(R_SYNCH, 0)
      this.pllWait = false
      this.behind = false
      this.lastMs = this.boardMs()
    }
    return this.result
  }

  /**
   * Lead-off and heart-beat status: one STATUS read (plus bits drains saw since the last call),
   * and the RTOR register when RRINT says a new R-to-R interval is there (which clears RRINT).
   */
  status(): Max30003Status {
    const s = this.read(R_STATUS) | this.latched
    this.latched = 0
    const o = this.st
    o.status = s
    o.leadsOff = (s & S_DCLOFFINT) !== 0
    o.ldoff = s & 15
    o.pllUnlocked = (s & S_PLLINT) !== 0
    o.rrMs = 0
    // RTOR (0x25): the interval in D[23:10], 14 bits, one LSB = tRTOR (datasheet RTOR and CNFG_GEN).
    if (s & S_RRINT) o.rrMs = ((this.read(R_RTOR) >> 10) & 0x3fff) * this.rtorMs
    return o
  }
}

/** Espruino-style construction: `connect({ send: function (tx) { return spi.send(tx, cs) } }, clock)`. */
export function connect(bus: SpiBus, boardMs: () => number): Max30003 {
  return new Max30003(bus, boardMs)
}
