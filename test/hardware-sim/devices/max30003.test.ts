import t from 'tap'
import { join } from 'node:path'
import { existsSync } from 'node:fs'
import {
  Max30003, REG, STATUS, ETAG, PTAG_NONE, RESET_VALUES, WRITE_MASK, LEAD_OFF_MS,
  decodeFifoWord, countsFromMv, mvFromCounts, latencyMs, type FifoSample,
} from '../../../hardware-sim/devices/max30003.ts'
import { MitdbReplay } from '../../../hardware-sim/signals/mitdb-replay.ts'
import { EcgSynth } from '../../../hardware-sim/signals/ecg-synth.ts'
import { readRecord, readAnnotations, BEAT_CODES } from '../../../datasets/wfdb.ts'
import type { EcgSource } from '../../../hardware-sim/signals/types.ts'
import { sharedData, repoRoot } from '../../helpers/cli.ts'

const mitdb = [join(sharedData, 'ecg', 'mitdb'), join(repoRoot, '..', '..', 'shared', 'data', 'ecg', 'mitdb')].find((d) => existsSync(d)) ?? join(sharedData, 'ecg', 'mitdb')

const dc = (mv: number): EcgSource => ({ mv: () => mv, leadOff: () => false })
/** 1 mV plus 0.01 mV per ms: each sample's value encodes the instant it sampled. */
const ramp: EcgSource = { mv: (tMs) => 1 + tMs / 100, leadOff: () => false }

/** Register access the way a driver does it: one 32-clock transaction per register, bursts for the FIFO. */
class Spi {
  now = 0
  constructor(readonly dev: Max30003) {}
  at(ms: number): this {
    this.now = ms
    return this
  }
  write(reg: number, v: number): Uint8Array {
    return this.dev.transfer(Uint8Array.of(reg << 1, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff), this.now)
  }
  read(reg: number): number {
    const rx = this.dev.transfer(Uint8Array.of((reg << 1) | 1, 0, 0, 0), this.now)
    return (rx[1] << 16) | (rx[2] << 8) | rx[3]
  }
  burst(words: number): FifoSample[] {
    const tx = new Uint8Array(1 + 3 * words)
    tx[0] = (REG.ECG_FIFO_BURST << 1) | 1
    const rx = this.dev.transfer(tx, this.now)
    const out: FifoSample[] = []
    for (let w = 0; w < words; w++) out.push(decodeFifoWord((rx[1 + 3 * w] << 16) | (rx[2 + 3 * w] << 8) | rx[3 + 3 * w]))
    return out
  }
  /** Drains until the EOF/EMPTY tag, as firmware does after EINT. */
  drain(): FifoSample[] {
    const out: FifoSample[] = []
    for (;;) {
      const got = this.burst(32)
      for (const s of got) {
        if (s.etag === ETAG.EMPTY || s.etag === ETAG.OVERFLOW) return out
        out.push(s)
        if (s.etag === ETAG.VALID_EOF || s.etag === ETAG.FAST_EOF) return out
      }
    }
  }
  /** Inputs connected, CNFG_ECG as given, channel on at FMSTR, then SYNCH: sample k falls at now + k/rate. */
  ecgOn(o: { fmstr?: number; rate?: number; gain?: number; dhpf?: number; dlpf?: number; gen?: number } = {}): void {
    this.write(REG.CNFG_EMUX, 0)
    this.write(REG.CNFG_ECG, ((o.rate ?? 1) << 22) | ((o.gain ?? 0) << 16) | ((o.dhpf ?? 0) << 14) | ((o.dlpf ?? 0) << 12))
    this.write(REG.CNFG_GEN, (1 << 19) | ((o.fmstr ?? 0) << 20) | 0x04 | (o.gen ?? 0))
    this.write(REG.SYNCH, 0)
  }
}

function chip(source: EcgSource = dc(0)): Spi {
  return new Spi(new Max30003({ source }))
}

t.test('reset values, read/write masks, SW_RST, INFO', async (t) => {
  const spi = chip()
  t.equal(spi.read(REG.INFO), 0, 'INFO is not valid as the first command after power-up')
  const info = spi.read(REG.INFO)
  t.equal(info >>> 20, 0b0101, 'INFO[23:20] is the 0101 interface pattern')
  t.equal((info >>> 16) & 0xf, 0x4, 'revision nibble')
  for (const [reg, v] of Object.entries(RESET_VALUES)) t.equal(spi.read(Number(reg)), v, `reg 0x${Number(reg).toString(16)} resets to 0x${v.toString(16)}`)
  t.equal(spi.read(REG.STATUS), 0, 'STATUS after power-up with the channel off')
  t.equal(spi.read(REG.RTOR), 0)
  for (const reg of [REG.NO_OP, REG.NO_OP2, REG.SW_RST, REG.SYNCH, REG.FIFO_RST]) t.equal(spi.read(reg), 0, `0x${reg.toString(16)} reads 0`)
  for (const [reg, mask] of Object.entries(WRITE_MASK)) {
    spi.write(Number(reg), 0xffffff)
    // RATE = 11 is reserved, so the DLPF of CNFG_ECG reads back as the 40 Hz the chip would run.
    const expect = Number(reg) === REG.CNFG_ECG ? (mask & ~0x3000) | 0x1000 : mask
    t.equal(spi.read(Number(reg)), expect, `reg 0x${Number(reg).toString(16)} keeps only its defined bits`)
  }
  spi.write(REG.SW_RST, 0)
  t.equal(spi.read(REG.INFO), 0, 'INFO invalid again as the first command after SW_RST')
  for (const [reg, v] of Object.entries(RESET_VALUES)) t.equal(spi.read(Number(reg)), v, `SW_RST restores 0x${Number(reg).toString(16)}`)
  spi.write(REG.CNFG_GEN, 0x000014)
  t.equal(spi.read(REG.CNFG_GEN), 0x000004, 'EN_RBIAS = 01 does not take while EN_ECG is 0')
  spi.write(REG.CNFG_GEN, 0x080014)
  t.equal(spi.read(REG.CNFG_GEN), 0x080014, 'EN_RBIAS = 01 takes together with EN_ECG')
  spi.write(REG.CNFG_ECG, (2 << 22) | (2 << 12))
  t.equal((spi.read(REG.CNFG_ECG) >>> 12) & 3, 1, 'DLPF 100 Hz at 128 sps reads back as the 40 Hz it runs as')
  spi.write(REG.CNFG_ECG, (1 << 22) | (2 << 12))
  t.equal((spi.read(REG.CNFG_ECG) >>> 12) & 3, 2, 'DLPF 100 Hz is kept at 256 sps')
  t.throws(() => new Max30003({ source: {} as EcgSource }), /expected an EcgSource/)
  t.throws(() => new Max30003({ source: dc(0), revId: 16 }), /revId: expected 0..15, got 16/)
  t.throws(() => spi.dev.transfer(Uint8Array.of(3, 0, 0, 0), -1), /time went backwards/)
})

t.test('burst FIFO read: samples, tags, EOF and EMPTY, MISO during the command byte', async (t) => {
  const spi = chip(dc(1))
  spi.ecgOn({ rate: 0, gain: 0 })
  spi.at(10) // 512 sps: samples at 1.95, 3.91, 5.86, 7.81, 9.77 ms
  t.equal(spi.dev.fifoCount(10), 5)
  const rx = spi.dev.transfer(new Uint8Array(1 + 3 * 7).map((_, i) => (i === 0 ? (REG.ECG_FIFO_BURST << 1) | 1 : 0xff)), 10)
  t.equal(rx[0], 0, 'MISO is 0 while the command byte goes out')
  const words = [...Array(7).keys()].map((w) => decodeFifoWord((rx[1 + 3 * w] << 16) | (rx[2 + 3 * w] << 8) | rx[3 + 3 * w]))
  t.same(words.map((w) => w.etag), [ETAG.VALID, ETAG.VALID, ETAG.VALID, ETAG.VALID, ETAG.VALID_EOF, ETAG.EMPTY, ETAG.EMPTY])
  t.ok(words.slice(0, 5).every((w) => w.counts === countsFromMv(1, 20) && w.ptag === PTAG_NONE), '1 mV at gain 20 in every sample, PTAG 111')
  t.equal(words[5].counts, 0, 'an EMPTY word carries no data')
  t.equal(spi.dev.fifoCount(10), 0)
  spi.at(14)
  t.equal((spi.read(REG.ECG_FIFO) >>> 3) & 7, ETAG.VALID, 'normal mode: one word per transaction')
  t.equal((spi.read(REG.ECG_FIFO) >>> 3) & 7, ETAG.VALID_EOF)
  t.equal((spi.read(REG.ECG_FIFO) >>> 3) & 7, ETAG.EMPTY)
  spi.at(20)
  const part = spi.dev.transfer(Uint8Array.of((REG.ECG_FIFO_BURST << 1) | 1, 0, 0, 0, 0, 0), 20)
  t.equal(part.length, 6)
  t.equal(spi.dev.fifoCount(20), 2, 'a burst that stops inside a word pops only the whole words (3 due, 1 popped)')
  const full = spi.dev.transfer(Uint8Array.of((REG.ECG_FIFO << 1) | 1, 0, 0, 0, 0, 0, 0, 0), 20)
  t.same([...full.subarray(4)], [0, 0, 0, 0], 'ECG_FIFO (normal mode) drives 0 after its 32 clocks')
  t.equal(spi.dev.fifoCount(20), 1)
})

t.test('EINT on INTB follows the EFIT threshold and clears by draining', async (t) => {
  const spi = chip(dc(0.5))
  spi.write(REG.MNGR_INT, (7 << 19) | 0x04) // EFIT = 8 words
  spi.write(REG.EN_INT, STATUS.EINT | 0x01) // CMOS INTB
  spi.ecgOn({ rate: 2 }) // 128 sps: 7.8125 ms per sample
  t.equal(spi.dev.intb.level(7 * 7.8125), true, '7 words: INTB high')
  t.equal(spi.dev.intb.level(8 * 7.8125), false, '8 words: INTB low (active low)')
  spi.at(8 * 7.8125 + 1)
  t.ok(spi.read(REG.STATUS) & STATUS.EINT, 'STATUS shows EINT')
  t.equal(spi.dev.intb.level(spi.now), false, 'reading STATUS does not clear EINT')
  spi.read(REG.ECG_FIFO)
  t.equal(spi.dev.intb.level(spi.now), true, 'draining below EFIT releases INTB')
  t.equal(spi.dev.int2b.level(spi.now), true, 'INT2B stays high: EN_INT2 masks everything')
  t.equal(spi.dev.intb.level(9 * 7.8125), false, 'the next sample asserts it again')
  spi.at(9 * 7.8125).write(REG.EN_INT, STATUS.EINT) // INTB_TYPE = 00: three-state
  t.equal(spi.dev.intb.level(spi.now), true, 'a disabled (three-state) INTB reads high through the board pull-up')
  spi.write(REG.EN_INT2, STATUS.EINT | 0x03)
  t.equal(spi.dev.int2b.level(spi.now), false, 'INT2B follows EN_INT2')
})

t.test('overflow after a late drain: the 32 oldest samples kept, OVERFLOW tag, EOVF until FIFO_RST', async (t) => {
  const spi = chip(ramp)
  spi.write(REG.EN_INT, STATUS.EOVF | 0x01)
  spi.at(1000).ecgOn({ rate: 0, dlpf: 0 }) // 512 sps, DLPF bypassed
  const T = 1000 / 512
  const lat = latencyMs(512, 0)
  t.equal(lat, 19.836)
  t.equal(spi.dev.latencyMs(), lat)
  const expected = (k: number) => countsFromMv(ramp.mv(1000 + k * T - lat), 20)
  t.equal(spi.dev.intb.level(1000 + 32 * T), true, '32 samples fill the FIFO without overflow')
  t.equal(spi.dev.intb.level(1000 + 33 * T), false, 'the 33rd sample overflows it: EOVF on INTB')
  spi.at(1100) // 51 samples were due
  const st = spi.read(REG.STATUS)
  t.ok(st & STATUS.EOVF, 'EOVF set')
  t.ok(st & STATUS.EINT, 'EINT set (32 >= EFIT 16)')
  t.equal(spi.dev.fifoCount(1100), 32, 'the FIFO kept exactly 32 samples')
  const got = spi.burst(34)
  t.same(got.slice(0, 32).map((s) => s.counts), [...Array(32).keys()].map((i) => expected(i + 1)), 'the kept samples are the oldest ones, samples 1..32')
  t.ok(got.slice(0, 32).every((s) => s.etag === ETAG.VALID), 'kept samples keep their VALID tag (no EOF)')
  t.same(got.slice(32).map((s) => s.etag), [ETAG.OVERFLOW, ETAG.OVERFLOW], 'then every read returns the OVERFLOW tag')
  t.ok(spi.read(REG.STATUS) & STATUS.EOVF, 'EOVF is not cleared by reading STATUS')
  spi.at(1200)
  t.equal(spi.burst(1)[0].etag, ETAG.OVERFLOW, 'still lost: nothing was recorded while overflowed')
  spi.write(REG.FIFO_RST, 0)
  t.equal(spi.read(REG.STATUS) & STATUS.EOVF, 0, 'FIFO_RST clears EOVF')
  t.equal(spi.dev.intb.level(spi.now), true)
  t.equal(spi.burst(1)[0].etag, ETAG.EMPTY, 'and empties the FIFO')
  spi.at(1210)
  const first = Math.floor((1200 - 1000) / T) + 1
  const after = spi.drain()
  t.same(after.map((s) => s.counts), [...Array(after.length).keys()].map((i) => expected(first + i)), 'recording resumes in phase with the next sample')
  t.equal(after.length, Math.floor(210 / T) - first + 1)
  // An hour without draining: the same 32 samples, accounted in bulk.
  spi.at(1210 + 3_600_000)
  t.equal(spi.dev.fifoCount(spi.now), 32)
  t.ok(spi.read(REG.STATUS) & STATUS.EOVF)
})

t.test('SYNCH restarts the timing and clears the FIFO and EOVF', async (t) => {
  const spi = chip(ramp)
  spi.at(0).ecgOn({ rate: 1 }) // 256 sps
  spi.at(500)
  t.ok(spi.read(REG.STATUS) & STATUS.EOVF)
  spi.at(501.3).write(REG.SYNCH, 0)
  t.equal(spi.read(REG.STATUS) & (STATUS.EOVF | STATUS.EINT), 0, 'EOVF and EINT gone')
  t.equal(spi.dev.fifoCount(501.3 + 3.9), 0, 'no sample before one period has passed')
  t.equal(spi.dev.fifoCount(501.3 + 1000 / 256), 1, 'first sample one period after SYNCH')
  t.equal(spi.dev.fifoCount(501.3 + 10 * (1000 / 256)), 10)
  spi.at(600).write(REG.SYNCH, 0x000001)
  t.equal(spi.dev.fifoCount(600), 25, 'SYNCH with non-zero data is ignored')
})

t.test('sample rates from FMSTR and RATE', async (t) => {
  const cases: Array<[number, number, number]> = [[0, 0, 512], [0, 1, 256], [0, 2, 128], [1, 0, 500], [1, 1, 250], [1, 2, 125], [2, 2, 200], [2, 0, 0], [0, 3, 0]]
  for (const [fmstr, rate, sps] of cases) {
    const spi = chip(dc(0.2))
    spi.ecgOn({ fmstr, rate })
    t.equal(spi.dev.sampleRateSps(), sps)
    let n = 0
    for (let ms = 50; ms <= 1000; ms += 50) n += spi.at(ms).drain().length
    t.equal(n, sps, `FMSTR=${fmstr} RATE=${rate}: ${sps} samples in the first second`)
  }
  const spi = chip(dc(0.2))
  spi.ecgOn({ fmstr: 3, rate: 2 })
  t.ok(Math.abs(spi.dev.sampleRateSps() - 199.8049) < 1e-3, 'FMSTR=11: 199.8 sps')
  spi.write(REG.CNFG_ECG, 0 << 22) // 512 sps, applies from the next sample
  t.equal(spi.dev.sampleRateSps(), 0, 'FMSTR=11 with RATE=00 is reserved: no conversions')
})

t.test('gain scaling and full-scale clipping', async (t) => {
  for (let g = 0; g < 4; g++) {
    const spi = chip(dc(1))
    spi.ecgOn({ rate: 0, gain: g })
    const s = spi.at(5).drain()
    const gain = [20, 40, 80, 160][g]
    t.equal(s[0].counts, Math.round(gain * 131.072), `1 mV at ${gain} V/V`)
    t.ok(Math.abs(mvFromCounts(s[0].counts, gain) - 1) <= 1 / (131.072 * gain), 'V = ADC × VREF / (2^17 × GAIN) recovers 1 mV within an LSB')
  }
  for (const [mv, counts] of [[100, 131071], [-100, -131072]]) {
    const spi = chip(dc(mv))
    spi.ecgOn({ rate: 0, gain: 3 })
    t.equal(spi.at(5).drain()[0].counts, counts, `${mv} mV clips at ${counts}`)
  }
  const spi = chip(dc(1))
  spi.ecgOn({ rate: 0 })
  spi.write(REG.CNFG_EMUX, 1 << 23)
  t.equal(spi.at(5).drain().at(-1)?.counts, -countsFromMv(1, 20), 'POL = 1 inverts the input')
  spi.write(REG.CNFG_EMUX, 0x300000)
  t.equal(spi.at(10).drain().at(-1)?.counts, 0, 'OPENP/OPENN isolate the electrodes')
  spi.write(REG.CNFG_CAL, (1 << 22) | (1 << 21) | (1 << 20) | (4 << 12) | (1 << 11)) // bipolar 0.5 mV, ~1 Hz, 50 %
  spi.write(REG.CNFG_EMUX, 0x300000 | (2 << 18) | (3 << 16)) // ECGP ← VCALP, ECGN ← VCALN
  const cal = spi.at(1200).drain().map((s) => s.counts)
  t.equal(Math.max(...cal), countsFromMv(1, 20), 'calibration: VCALP − VCALN = +1 mV while high')
  t.equal(Math.min(...cal), countsFromMv(-1, 20), 'and −1 mV while low')
})

t.test('DC lead-off: DCLOFFINT and LDOFF bits after 115 ms, held until STATUS is read', async (t) => {
  const off = (from: number, to: number): EcgSource => ({ mv: () => 0.5, leadOff: (tMs) => tMs >= from && tMs < to })
  const spi = chip(off(1000, 2000))
  spi.write(REG.EN_INT, STATUS.DCLOFFINT | 0x01)
  spi.ecgOn({ rate: 0, gen: (1 << 12) | (2 << 8) }) // EN_DCLOFF = 01, 10 nA, IPOL = 0
  spi.at(1000 + LEAD_OFF_MS - 5)
  t.equal(spi.read(REG.STATUS) & STATUS.DCLOFFINT, 0, 'not before 115 ms')
  t.equal(spi.dev.intb.level(1000 + LEAD_OFF_MS + 5), false, 'INTB asserted after 115 ms')
  spi.at(1200)
  t.equal(spi.read(REG.STATUS) & (STATUS.DCLOFFINT | 0xf), STATUS.DCLOFFINT | STATUS.LDOFF_PH | STATUS.LDOFF_NL, 'IPOL = 0: ECGP high, ECGN low')
  spi.drain()
  t.ok(spi.at(1300).drain().every((s) => s.counts === 131071), 'open leads drive the input to positive full scale')
  spi.at(2500)
  t.ok(spi.read(REG.STATUS) & STATUS.DCLOFFINT, 'held after the leads are back')
  t.equal(spi.at(2510).read(REG.STATUS) & (STATUS.DCLOFFINT | 0xf), 0, 'cleared by that STATUS read')
  const pol = chip(off(100, 400))
  pol.ecgOn({ rate: 0, gen: (1 << 12) | (2 << 8) | (1 << 11) })
  t.equal(pol.at(300).read(REG.STATUS) & 0xf, STATUS.LDOFF_PL | STATUS.LDOFF_NH, 'IPOL = 1: ECGP low, ECGN high')
  const noCurrent = chip(off(100, 400))
  noCurrent.ecgOn({ rate: 0, gen: 1 << 12 })
  t.equal(noCurrent.at(300).read(REG.STATUS) & STATUS.DCLOFFINT, 0, 'IMAG = 0 disconnects the current sources: nothing detected')
  const disabled = chip(off(100, 400))
  disabled.ecgOn({ rate: 0 })
  t.equal(disabled.at(300).read(REG.STATUS) & STATUS.DCLOFFINT, 0, 'EN_DCLOFF = 00: nothing detected')
})

t.test('R-to-R: RRINT and RTOR follow the source RR interval', async (t) => {
  const src = new EcgSynth({ heartRateBpm: 75, hrvStdBpm: 0, seed: 3 }) // RR = 800 ms
  const spi = chip(src)
  spi.write(REG.MNGR_INT, RESET_VALUES[REG.MNGR_INT] | (1 << 4)) // CLR_RRINT = 01: cleared by reading RTOR
  spi.write(REG.EN_INT, STATUS.RRINT | 0x01)
  spi.write(REG.CNFG_RTOR1, RESET_VALUES[REG.CNFG_RTOR1] | 0x8000)
  spi.ecgOn({ rate: 1, dhpf: 1, dlpf: 1 })
  const rr: number[] = []
  for (let ms = 20; ms <= 20_000; ms += 20) {
    spi.at(ms).drain()
    if (!spi.dev.intb.level(ms)) {
      t.ok(spi.read(REG.STATUS) & STATUS.RRINT)
      rr.push(spi.read(REG.RTOR) >>> 10)
      t.equal(spi.dev.intb.level(ms), true, 'reading RTOR clears RRINT (CLR_RRINT = 01)')
    }
  }
  const steady = rr.slice(2).map((ticks) => ticks * 7.8125)
  t.ok(steady.length >= 20, `${rr.length} R events in 20 s`)
  t.ok(steady.every((ms) => Math.abs(ms - 800) <= 2 * 7.8125), `RTOR × 7.8125 ms ≈ 800 ms: ${steady.slice(0, 6).join(', ')} …`)
  t.equal(spi.read(REG.RTOR) & 0x3ff, 0, 'RTOR[13:0] is left-justified: D[9:0] read 0')
})

t.test('mangled transactions: short, unknown registers, writes to read-only registers', async (t) => {
  const spi = chip(dc(1))
  spi.read(REG.STATUS)
  t.same([...spi.dev.transfer(new Uint8Array(0), 0)], [], 'no clocks: nothing')
  spi.dev.transfer(Uint8Array.of(REG.MNGR_INT << 1, 0x00, 0x00), 0)
  t.equal(spi.read(REG.MNGR_INT), RESET_VALUES[REG.MNGR_INT], 'a write cut short before the 32nd clock is dropped')
  spi.dev.transfer(Uint8Array.of(REG.MNGR_INT << 1, 0x08, 0x00, 0x04, 0xff, 0xff), 0)
  t.equal(spi.read(REG.MNGR_INT), 0x080004, 'a longer write commits its first 24 data bits')
  for (const reg of [0x06, 0x07, 0x11, 0x17, 0x18, 0x22, 0x30, 0x7e]) {
    spi.write(reg, 0xabcdef)
    t.equal(spi.read(reg), 0, `reserved 0x${reg.toString(16)} reads 0 and ignores writes`)
  }
  const info = spi.read(REG.INFO)
  for (const reg of [REG.STATUS, REG.INFO, REG.RTOR, REG.ECG_FIFO, REG.ECG_FIFO_BURST, REG.NO_OP, REG.NO_OP2]) spi.write(reg, 0xffffff)
  t.equal(spi.read(REG.INFO), info, 'INFO is read-only')
  t.equal(spi.read(REG.STATUS), 0, 'STATUS is read-only')
  t.equal(spi.read(REG.RTOR), 0, 'RTOR is read-only')
  t.same([...spi.write(REG.CNFG_GEN, 0)], [0, 0, 0, 0], 'MISO stays 0 during a write')
  spi.write(REG.SW_RST, 0x000001)
  t.equal(spi.read(REG.MNGR_INT), 0x080004, 'SW_RST with non-zero data does not execute')
  spi.ecgOn({ rate: 0 })
  spi.at(100)
  const short = spi.dev.transfer(Uint8Array.of((REG.STATUS << 1) | 1, 0, 0), 100)
  t.ok(short[1] & 0xc0, 'a 24-clock STATUS read still shows EINT/EOVF in its first byte')
  t.equal(spi.dev.fifoCount(100), 32)
  spi.dev.transfer(Uint8Array.of((REG.ECG_FIFO << 1) | 1, 0, 0), 100)
  t.equal(spi.dev.fifoCount(100), 32, 'a FIFO read cut short pops nothing')
  spi.dev.transfer(Uint8Array.of((REG.STATUS << 1) | 1), 100)
  spi.write(REG.FIFO_RST, 0xffffff)
  t.ok(spi.read(REG.STATUS) & STATUS.EOVF, 'FIFO_RST with non-zero data is ignored')
  t.throws(() => spi.dev.transfer([1, 2] as unknown as Uint8Array, 100), /expected a Uint8Array/)
  t.throws(() => spi.dev.intb.level(NaN), /expected a finite time/)
})

t.test('MIT-BIH record 100 at 256 sps: sample count and beats where the annotations put them', async (t) => {
  const rec = readRecord(join(mitdb, '100'))
  const spi = chip(new MitdbReplay({ record: rec }))
  spi.ecgOn({ rate: 1, dhpf: 1, dlpf: 1 }) // 256 sps, 0.5 Hz high-pass, 40 Hz low-pass (power-on filters)
  const seconds = 60
  const mv: number[] = []
  for (let ms = 100; ms <= seconds * 1000; ms += 100) for (const s of spi.at(ms).drain()) mv.push(mvFromCounts(s.counts, 20))
  t.equal(mv.length, seconds * 256, 'exactly 256 samples per second')
  const T = 1000 / 256
  const lat = spi.dev.latencyMs()
  t.equal(lat, 112.61, 'datasheet latency at 256 sps with the 40 Hz DLPF')
  // R peaks: local maxima above 0.5 mV, 250 ms apart at least; sample k (1-based) was taken at k·T.
  const peaks: number[] = []
  for (let i = 1; i < mv.length - 1; i++) {
    if (mv[i] > 0.5 && mv[i] >= mv[i - 1] && mv[i] > mv[i + 1]) {
      const tMs = (i + 1) * T
      if (peaks.length && tMs - peaks[peaks.length - 1] < 250) {
        if (mv[i] > mv[Math.round(peaks[peaks.length - 1] / T) - 1]) peaks[peaks.length - 1] = tMs
      } else peaks.push(tMs)
    }
  }
  const lastMs = seconds * 1000 - lat - 50
  const ann = readAnnotations(join(mitdb, '100')).filter((a) => BEAT_CODES.has(a.code) && (a.sample * 1000) / 360 < lastMs)
  const src = new MitdbReplay({ record: rec })
  /** The record's own maximum near an annotation: annotators mark the beat up to a couple of 360 Hz samples off it. */
  const recordPeakMs = (atMs: number) => {
    let best = Math.round((atMs * 360) / 1000)
    for (let i = best - 18; i <= best + 18; i++) if (src.sampleMv(i) > src.sampleMv(best)) best = i
    return (best * 1000) / 360
  }
  let worst = 0
  let within = 0
  const offsets: number[] = []
  for (const a of ann) {
    const at = (a.sample * 1000) / 360
    const out = peaks.reduce((best, p) => (Math.abs(p - at) < Math.abs(best - at) ? p : best), Infinity)
    offsets.push(out - at)
    const annotationSlack = Math.abs(recordPeakMs(at) - at)
    worst = Math.max(worst, annotationSlack)
    // Where the annotation puts the beat, one filter latency later, within one output sample period.
    if (Math.abs(out - (at + lat)) <= T + annotationSlack) within++
  }
  t.equal(within, ann.length, `all ${ann.length} annotated beats come out ${lat} ms late within one sample period (${T.toFixed(2)} ms) plus the annotation's own offset from the record's peak (at most ${worst.toFixed(1)} ms)`)
  t.ok(worst <= 6, 'annotations sit at most two record samples from the peak')
  const sorted = [...offsets].sort((a, b) => a - b)
  const median = sorted[Math.floor(sorted.length / 2)]
  t.ok(Math.abs(median - lat) <= T, `median offset ${median.toFixed(1)} ms ≈ the ${lat} ms latency`)
  t.equal(peaks.length, ann.length, 'one output peak per annotated beat')
})
