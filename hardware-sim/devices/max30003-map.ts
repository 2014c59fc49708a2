/**
 * MAX30003 register map, reset values, field layouts and the fixed tables
 * the device model needs (sample rates, R-to-R resolution, filter latency,
 * ECG FIFO word format). Section names refer to the Maxim/ADI MAX30003
 * datasheet (Rev 3, 9/2021), "Register Map" and the per-register tables.
 */

/** Register addresses (datasheet "Register Map"). Anything else is reserved: reads 0, writes ignored. */
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
  NO_OP2: 0x7f,
} as const

/** STATUS (0x01) bits; EN_INT/EN_INT2 use the same positions for 23:8 (datasheet STATUS and EN_INT tables). */
export const STATUS = {
  EINT: 1 << 23,
  EOVF: 1 << 22,
  FSTINT: 1 << 21,
  DCLOFFINT: 1 << 20,
  LONINT: 1 << 11,
  RRINT: 1 << 10,
  SAMP: 1 << 9,
  PLLINT: 1 << 8,
  LDOFF_PH: 1 << 3,
  LDOFF_PL: 1 << 2,
  LDOFF_NH: 1 << 1,
  LDOFF_NL: 1 << 0,
} as const
/** The interrupt terms of STATUS[23:8] that EN_INT/EN_INT2 can route to INTB/INT2B. */
export const INT_TERMS = 0xf00f00

/** ETAG[2:0] (ECG FIFO DO[5:3], datasheet "ECG FIFO Data Tags"). */
export const ETAG = { VALID: 0b000, FAST: 0b001, VALID_EOF: 0b010, FAST_EOF: 0b011, EMPTY: 0b110, OVERFLOW: 0b111 } as const
/**
 * PTAG[2:0] (DO[2:0]) carries pace information on the MAX30001; the MAX30003
 * has no pace channel. The model writes 111 ("no pace event" in the family's
 * convention); firmware should ignore these bits.
 */
export const PTAG_NONE = 0b111

/** Power-on/SW_RST values (datasheet per-register "Default value" entries). Read-only and command registers are absent. */
export const RESET_VALUES: Readonly<Record<number, number>> = {
  [REG.EN_INT]: 0x000003, // all terms masked, INTB_TYPE = 11 (open drain, internal 125 kΩ pull-up)
  [REG.EN_INT2]: 0x000003,
  [REG.MNGR_INT]: 0x780004, // EFIT = 0x0F (16 words), CLR_SAMP = 1
  [REG.MNGR_DYN]: 0x3f0000, // FAST = 00, FAST_TH = 0x3F
  [REG.CNFG_GEN]: 0x000004, // RBIASV = 01 (100 MΩ), ECG channel off
  [REG.CNFG_CAL]: 0x004800, // FCAL = 100, FIFTY = 1
  [REG.CNFG_EMUX]: 0x300000, // OPENP = OPENN = 1: inputs isolated until firmware connects them
  [REG.CNFG_ECG]: 0x805000, // RATE = 10 (128 sps at FMSTR=00), GAIN 20 V/V, DHPF 0.5 Hz, DLPF 40 Hz
  [REG.CNFG_RTOR1]: 0x3f2300, // WNDW 12, GAIN auto, EN_RTOR 0, PAVG 8, PTSF 4/16
  [REG.CNFG_RTOR2]: 0x202400, // HOFF 32, RAVG 8, RHSF 4/8
}

/** Bits that exist in each read/write register; reserved bits are not stored and read back 0. */
export const WRITE_MASK: Readonly<Record<number, number>> = {
  [REG.EN_INT]: INT_TERMS | 0x03,
  [REG.EN_INT2]: INT_TERMS | 0x03,
  [REG.MNGR_INT]: 0xf80077, // EFIT 23:19, CLR_FAST 6, CLR_RRINT 5:4, CLR_SAMP 2, SAMP_IT 1:0
  [REG.MNGR_DYN]: 0xff0000, // FAST 23:22, FAST_TH 21:16
  [REG.CNFG_GEN]: 0xf83fff, // EN_ULP_LON 23:22, FMSTR 21:20, EN_ECG 19, EN_DCLOFF 13:12, IPOL 11, IMAG 10:8, VTH 7:6, EN_RBIAS 5:4, RBIASV 3:2, RBIASP 1, RBIASN 0
  [REG.CNFG_CAL]: 0x707fff, // EN_VCAL 22, VMODE 21, VMAG 20, FCAL 14:12, FIFTY 11, THIGH 10:0
  [REG.CNFG_EMUX]: 0xbf0000, // POL 23, OPENP 21, OPENN 20, CALP_SEL 19:18, CALN_SEL 17:16
  [REG.CNFG_ECG]: 0xc37000, // RATE 23:22, GAIN 17:16, DHPF 14, DLPF 13:12
  [REG.CNFG_RTOR1]: 0xffbf00, // WNDW 23:20, GAIN 19:16, EN_RTOR 15, PAVG 13:12, PTSF 11:8
  [REG.CNFG_RTOR2]: 0x3f3700, // HOFF 21:16, RAVG 13:12, RHSF 10:8
}

/** Extracts `bits` bits at `shift`. */
export function field(value: number, shift: number, bits: number): number {
  return (value >>> shift) & ((1 << bits) - 1)
}

/** CNFG_GEN FMSTR[1:0] → master clock in Hz (datasheet CNFG_GEN table); all derived from the 32.768 kHz FCLK. */
export const FMSTR_HZ = [32768, 32000, 32000, 31968.78] as const
/** CNFG_ECG GAIN[1:0] → V/V. */
export const ECG_GAIN = [20, 40, 80, 160] as const
/** Typical ADC reference; V_ECG = ADC × VREF / (2^17 × ECG_GAIN) (datasheet "ECG Channel" conversion). */
export const VREF_MV = 1000
export const ADC_MAX = 131071
export const ADC_MIN = -131072

/**
 * ECG data rate in samples/s for FMSTR and CNFG_ECG RATE, or 0 for the
 * reserved combinations (datasheet CNFG_ECG RATE table): FMSTR=00 gives
 * 512/256/128, 01 gives 500/250/125, 10 and 11 only RATE=10 (200, 199.8).
 */
export function sampleRate(fmstr: number, rate: number): number {
  if (rate === 3) return 0
  if (fmstr <= 1) return FMSTR_HZ[fmstr] / (64 << rate)
  return rate === 2 ? FMSTR_HZ[fmstr] / 160 : 0
}

/** R-to-R timing resolution tRTOR in ms: 256 master clocks (7.8125 ms at FMSTR=00, ~8 ms otherwise; datasheet RTOR and CNFG_RTOR2 HOFF). */
export function rtorResolutionMs(fmstr: number): number {
  return (256 * 1000) / FMSTR_HZ[fmstr]
}

/**
 * DLPF as the chip applies it: 100 Hz exists only at 512/256/500/250 sps and
 * 150 Hz only at 512/500 sps; an unsupported choice runs as 40 Hz and reads
 * back as 01 (datasheet CNFG_ECG DLPF note).
 */
export function effectiveDlpf(sps: number, dlpf: number): number {
  if (dlpf === 2 && sps < 250) return 1
  if (dlpf === 3 && sps < 500) return 1
  return dlpf
}

/**
 * ECG channel latency (input to FIFO) in ms, DLPF bypassed / engaged, per
 * data rate. Values of the datasheet's ECG latency table as transcribed in
 * the MAX30001 family driver by uutzinger (Arduino_MAX30001G); not checked
 * against the PDF itself. The model applies this as a pure delay.
 */
const LATENCY_MS: Record<string, [number, number]> = {
  '512': [19.836, 31.55],
  '256': [89.127, 112.61],
  '128': [102.844, 149.719],
  '500': [20.313, 32.313],
  '250': [91.313, 115.313],
  '125': [105.313, 153.313],
  '200': [38.813, 68.813],
  '199.8': [38.851, 68.881],
}
export function latencyMs(sps: number, dlpf: number): number {
  const row = LATENCY_MS[String(Math.round(sps * 10) / 10)]
  return row ? row[dlpf === 0 ? 0 : 1] : 0
}

/** One ECG FIFO word: 18-bit two's complement sample in DO[23:6], ETAG in DO[5:3], PTAG in DO[2:0]. */
export function fifoWord(counts: number, etag: number, ptag = PTAG_NONE): number {
  return ((counts & 0x3ffff) << 6) | ((etag & 7) << 3) | (ptag & 7)
}

export interface FifoSample {
  /** Signed ADC counts (−2^17 .. 2^17−1). */
  counts: number
  etag: number
  ptag: number
}

export function decodeFifoWord(word: number): FifoSample {
  const raw = (word >>> 6) & 0x3ffff
  return { counts: raw >= 0x20000 ? raw - 0x40000 : raw, etag: (word >>> 3) & 7, ptag: word & 7 }
}

/** ADC counts for a differential input in mV, rounded and clipped at full scale. */
export function countsFromMv(mv: number, gain: number, vrefMv = VREF_MV): number {
  const c = Math.round((mv * gain * 131072) / vrefMv)
  return Math.min(ADC_MAX, Math.max(ADC_MIN, c))
}

/** Inverse of countsFromMv (what firmware computes): V_ECG = ADC × VREF / (2^17 × GAIN). */
export function mvFromCounts(counts: number, gain: number, vrefMv = VREF_MV): number {
  return (counts * vrefMv) / (131072 * gain)
}

/**
 * Differential input from the internal calibration sources when the input
 * switches are open or a CALP/CALN selection is made (datasheet CNFG_CAL and
 * CNFG_EMUX). VCALP swings VMID+VMAG ↔ VMID (unipolar) or VMID±VMAG (bipolar);
 * VCALN mirrors it; VMID and unselected/open inputs read as 0 mV.
 */
export function calibrationMv(tMs: number, cal: number, emux: number, fmstrHz: number): number {
  const en = (cal >>> 22) & 1
  const vmag = (cal >>> 20) & 1 ? 0.5 : 0.25
  const periodMs = (1000 * [128, 512, 2048, 8192, 32768, 131072, 524288, 2097152][field(cal, 12, 3)]) / fmstrHz
  const highMs = (cal >>> 11) & 1 ? periodMs / 2 : (field(cal, 0, 11) * 1000) / fmstrHz
  const high = ((tMs % periodMs) + periodMs) % periodMs < highMs
  const vcalp = en ? (high ? vmag : (cal >>> 21) & 1 ? -vmag : 0) : 0
  const side = (sel: number) => (sel === 2 ? vcalp : sel === 3 ? -vcalp : 0)
  return side(field(emux, 18, 2)) - side(field(emux, 16, 2))
}
