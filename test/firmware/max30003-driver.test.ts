import t from 'tap'
import { Max30003, connect, REG, STATUS, ETAG, FIFO_WORDS, SLACK, FOLLOW_UP, MAX_BURSTS, type SpiBus } from '../../firmware/drivers/max30003.ts'

/**
 * The MAX30003's SPI side as the datasheet describes it, small enough to read in one go:
 * - a transaction is byte 0 = A[6:0] << 1 | R/W (1 = read), then 24 data bits, MSB first;
 * - ECG_FIFO_BURST keeps going: every further 3 bytes is the next FIFO word;
 * - a FIFO word is D[23:6] sample, D[5:3] ETAG; the last word present gets an EOF tag
 *   (VALID_EOF / FAST_EOF), reads past the end get EMPTY, and after an overflow (a 33rd
 *   unread sample) the words carry OVERFLOW and STATUS.EOVF is held until FIFO_RST or SYNCH;
 * - SW_RST restores reset values, and INFO does not read back valid data as the first
 *   command after it;
 * - STATUS: EINT while unread >= EFIT; DCLOFFINT and PLLINT are held until a STATUS read
 *   after the condition ends; RRINT clears on STATUS read (CLR_RRINT = 00) or RTOR read (01);
 * - RTOR holds the 14-bit interval in D[23:10].
 * Samples are produced by the test (`produce`), not by a clock, so every case is exact.
 */
const RESET: { [reg: number]: number } = {
  [REG.CNFG_GEN]: 0x000004,
  [REG.CNFG_EMUX]: 0x300000,
  [REG.CNFG_ECG]: 0x805000,
  [REG.MNGR_INT]: 0x780004,
  [REG.MNGR_DYN]: 0x3f0000,
  [REG.EN_INT]: 0x000003,
  [REG.CNFG_RTOR1]: 0x3f2300,
  [REG.CNFG_RTOR2]: 0x202400,
}

interface Op { reg: number; write: boolean; value: number; words?: number }

function fakeChip(info = 0x513abc) {
  const regs = new Map<number, number>()
  const chip = {
    regs,
    ops: [] as Op[],
    fifo: [] as number[],
    /** Every FIFO word handed out that was a sample (not EMPTY/OVERFLOW), in order, as sent. */
    sent: [] as number[],
    eovf: false,
    dcloff: false,
    dcloffHeld: false,
    ldoff: 0,
    rrint: false,
    rtor: 0,
    pllUnlocked: false,
    pllHeld: false,
    firstAfterReset: false,
    /** Produce one more sample after this many words of the next burst (a sample landing mid-burst). */
    arriveAfter: -1,
    sends: 0,
    /** Numeric-index reads the driver made on arrays the bus returned (its per-word work). */
    byteReads: 0,
    next: 1000,
    reset() {
      regs.clear()
      for (const k of Object.keys(RESET)) regs.set(Number(k), RESET[Number(k)]!)
      chip.fifo = []
      chip.eovf = false
      chip.firstAfterReset = true
    },
    produce(k: number, tag = ETAG.VALID) {
      for (let i = 0; i < k; i++) {
        const v = (chip.next = (chip.next * 7919 + 12345) % 262144) // 18-bit sample value
        if (chip.fifo.length === FIFO_WORDS) chip.eovf = true // the write pointer caught the read pointer
        else chip.fifo.push(((v << 6) | (tag << 3)) & 0xffffff)
      }
    },
    status(): number {
      const efit = ((regs.get(REG.MNGR_INT)! >> 19) & 31) + 1
      let s = 0
      if (chip.fifo.length >= efit) s |= STATUS.EINT
      if (chip.eovf) s |= STATUS.EOVF
      if (chip.dcloff || chip.dcloffHeld) s |= STATUS.DCLOFFINT | chip.ldoff
      if (chip.rrint) s |= STATUS.RRINT
      if (chip.pllUnlocked || chip.pllHeld) s |= STATUS.PLLINT
      chip.dcloffHeld = false
      chip.pllHeld = false
      if (!chip.dcloff) chip.ldoff = 0
      if (((regs.get(REG.MNGR_INT)! >> 4) & 3) === 0) chip.rrint = false
      return s
    },
    word(): number {
      if (chip.eovf) return 0x000038 // OVERFLOW tag
      const w = chip.fifo.shift()
      if (w === undefined) return 0x000030 // EMPTY tag
      const eof = chip.fifo.length === 0 ? 2 << 3 : 0 // tag VALID -> VALID_EOF, FAST -> FAST_EOF
      chip.sent.push(w | eof)
      return w | eof
    },
    transfer(tx: Uint8Array): Uint8Array {
      const rx = new Uint8Array(tx.length)
      const reg = tx[0]! >> 1
      const write = (tx[0]! & 1) === 0
      const first = chip.firstAfterReset
      chip.firstAfterReset = false
      if (reg === REG.ECG_FIFO_BURST && !write) {
        const words = (tx.length - 1) / 3
        chip.ops.push({ reg, write, value: 0, words })
        for (let i = 0; i < words; i++) {
          if (i === chip.arriveAfter) chip.produce(1)
          const w = chip.word()
          rx[1 + 3 * i] = w >> 16
          rx[2 + 3 * i] = (w >> 8) & 255
          rx[3 + 3 * i] = w & 255
        }
        chip.arriveAfter = -1
        return rx
      }
      if (tx.length !== 4) throw new Error(`fake: a register transaction is 32 bits, got ${tx.length * 8}`)
      const value = (tx[1]! << 16) | (tx[2]! << 8) | tx[3]!
      chip.ops.push({ reg, write, value })
      if (write) {
        if (reg === REG.SW_RST && value === 0) chip.reset()
        else if ((reg === REG.SYNCH || reg === REG.FIFO_RST) && value === 0) {
          chip.fifo = []
          chip.eovf = false
        } else regs.set(reg, value)
        return rx
      }
      let out = regs.get(reg) ?? 0
      if (reg === REG.INFO) out = first ? 0x000000 : info
      if (reg === REG.STATUS) out = chip.status()
      if (reg === REG.RTOR) {
        out = (chip.rtor & 0x3fff) << 10
        if (((regs.get(REG.MNGR_INT)! >> 4) & 3) === 1) chip.rrint = false
      }
      rx[1] = out >> 16
      rx[2] = (out >> 8) & 255
      rx[3] = out & 255
      return rx
    },
  }
  chip.reset()
  chip.firstAfterReset = false
  /** The bus the driver gets: counts sends, and counts its index reads on what comes back. */
  const bus: SpiBus = {
    send(tx: Uint8Array) {
      chip.sends++
      const rx = chip.transfer(new Uint8Array(tx)) // copy: the driver reuses its tx buffers
      return new Proxy(rx, {
        get(target, prop) {
          if (typeof prop === 'string' && /^\d+$/.test(prop)) chip.byteReads++
          const v = Reflect.get(target, prop, target)
          return typeof v === 'function' ? v.bind(target) : v
        },
        set(target, prop, value) {
          return Reflect.set(target, prop, value, target)
        },
      })
    },
  }
  return { chip, bus }
}

/** A board clock the test moves; 1000/256 ms is exact in binary, so due counts are exact. */
function rig(info?: number) {
  const { chip, bus } = fakeChip(info)
  const clock = { ms: 5000 }
  const drv = connect(bus, () => clock.ms)
  return { chip, bus, clock, drv }
}

const bytesOf = (words: number[]) => {
  const b = new Uint8Array(words.length * 3)
  words.forEach((w, i) => b.set([w >> 16, (w >> 8) & 255, w & 255], i * 3))
  return b
}
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const name = (reg: number) => Object.keys(REG).find((k) => REG[k as keyof typeof REG] === reg) ?? `0x${reg.toString(16)}`
const writes = (ops: Op[]) => ops.filter((o) => o.write).map((o) => `${name(o.reg)}=${o.value.toString(16).padStart(6, '0')}`)
const samplePeriod = 1000 / 256

t.test('init: reset, identity (INFO read twice), every configuration register, SYNCH last', async (t) => {
  const { chip, drv } = rig()
  drv.init()
  t.same(chip.ops.map((o) => `${o.write ? 'W' : 'R'} ${name(o.reg)}`), [
    'W SW_RST', 'R INFO', 'R INFO',
    'W CNFG_GEN', 'W CNFG_ECG', 'W CNFG_EMUX', 'W CNFG_RTOR1', 'W MNGR_INT', 'W EN_INT',
    'R STATUS', 'W SYNCH',
  ], 'reset, identity, configuration, then SYNCH')
  t.same(writes(chip.ops), [
    'SW_RST=000000',
    'CNFG_GEN=081217', // EN_ECG, DCLOFF on ECGP/N at 10 nA / +-300 mV, 100 MOhm bias on both inputs
    'CNFG_ECG=425000', // 256 sps, 80 V/V, DHPF 0.5 Hz, DLPF 40 Hz
    'CNFG_EMUX=000000', // inputs connected (reset value isolates them)
    'CNFG_RTOR1=3fa300', // reset values + EN_RTOR
    'MNGR_INT=780014', // EFIT 16, CLR_RRINT on RTOR read, CLR_SAMP self-clear
    'EN_INT=d00403', // EINT, EOVF, DCLOFFINT, RRINT on INTB, open drain with pull-up
    'SYNCH=000000',
  ])
  const at = (reg: number) => chip.ops.findIndex((o) => o.write && o.reg === reg)
  t.ok(at(REG.CNFG_GEN) < at(REG.CNFG_RTOR1), 'EN_ECG before EN_RTOR (R-to-R needs the ECG channel)')
  t.ok(at(REG.MNGR_INT) < at(REG.EN_INT), 'interrupt behaviour set before interrupts are enabled')
  t.equal(chip.ops[chip.ops.length - 1]!.reg, REG.SYNCH, 'SYNCH is the last transaction')
  t.equal(chip.regs.get(REG.CNFG_ECG), 0x425000, 'the fake register file holds what was written')
  t.equal(drv.revision, 1, 'REV_ID from INFO D[19:16]')
  t.equal(drv.sps, 256)

  const o = rig()
  o.drv.init({ rate: 512, gain: 160, efit: 8 })
  t.same(writes(o.chip.ops).filter((w) => /CNFG_ECG|MNGR_INT/.test(w)), ['CNFG_ECG=035000', 'MNGR_INT=380014'])
  const l = rig()
  l.drv.init({ rate: 128, gain: 20, efit: 32 })
  t.same(writes(l.chip.ops).filter((w) => /CNFG_ECG|MNGR_INT/.test(w)), ['CNFG_ECG=805000', 'MNGR_INT=f80014'])
})

t.test('init refuses a part that is not a MAX30003, and bad options, with what it got', async (t) => {
  t.throws(() => rig(0xffffff).drv.init(), { message: 'MAX30003: expected INFO 0x500000 under mask 0xf00000 (pattern 0101 in D[23:20]), got 0xffffff (MISO stuck: check CS, SCLK, MISO and power)' })
  t.throws(() => rig(0x000000).drv.init(), /got 0x000000 \(MISO stuck/)
  t.throws(() => rig(0x621abc).drv.init(), /got 0x621abc$/, 'pattern 0110: another part')
  t.doesNotThrow(() => rig(0x521abc).drv.init(), 'part bits are not fixed by the datasheet: only the pattern identifies the part')
  t.doesNotThrow(() => rig(0x50f3ff).drv.init(), 'serial bits and REV_ID are not part of the identity')
  t.throws(() => rig().drv.init({ rate: 250 }), { message: 'MAX30003: rate: expected 128, 256 or 512 sps, got 250' })
  t.throws(() => rig().drv.init({ gain: 100 }), { message: 'MAX30003: gain: expected 20, 40, 80 or 160 V/V, got 100' })
  t.throws(() => rig().drv.init({ efit: 0 }), { message: 'MAX30003: efit: expected an integer 1..32, got 0' })
  t.throws(() => rig().drv.init({ efit: 2.5 }), /efit: expected an integer 1\.\.32, got 2\.5/)
  t.throws(() => new Max30003({} as SpiBus, () => 0), /expected an SPI bus with send\(tx\), got object/)
  t.throws(() => new Max30003({ send: (x: Uint8Array) => x }, null as unknown as () => number), /expected a board clock function/)
})

t.test('drain copies exactly the samples present, byte for byte, and trims the EMPTY words', async (t) => {
  const { chip, clock, drv } = rig()
  drv.init()
  const into = new Uint8Array(3 * 64)
  chip.produce(16)
  clock.ms += 16 * samplePeriod
  chip.ops = []
  chip.sends = 0
  const r = drv.drain(into, 0)
  t.same(r, { n: 16, lostSamples: 0, overflow: false })
  t.equal(chip.sends, 1, 'one SPI transaction')
  t.equal(chip.ops[0]!.words, 16 + SLACK, 'one burst of the samples due plus the slack')
  t.equal(hex(into.subarray(0, 48)), hex(bytesOf(chip.sent)), 'the bytes are the FIFO words as sent')
  t.equal((into[47]! >> 3) & 7, ETAG.VALID_EOF, 'the last copied word is the EOF sample')
  t.equal(hex(into.subarray(48)), '00'.repeat(3 * 48), 'nothing written past the samples')

  // The next drain appends at the caller's offset and returns the same object.
  chip.produce(5)
  clock.ms += 5 * samplePeriod
  const r2 = drv.drain(into, 48)
  t.equal(r2, r, 'the result object is reused')
  t.equal(r2.n, 5)
  t.equal(hex(into.subarray(0, 63)), hex(bytesOf(chip.sent)))

  // Nothing waiting: a burst of EMPTY words, trimmed to none.
  clock.ms += 1
  t.same({ ...drv.drain(into, 63) }, { n: 0, lostSamples: 0, overflow: false })
  t.equal(chip.fifo.length, 0)
})

t.test('FAST samples are time steps: copied, tags intact, FAST_EOF ends the burst', async (t) => {
  const { chip, clock, drv } = rig()
  drv.init()
  chip.produce(3)
  chip.produce(2, ETAG.FAST)
  clock.ms += 5 * samplePeriod
  const into = new Uint8Array(3 * 32)
  t.equal(drv.drain(into, 0).n, 5)
  t.equal((into[11]! >> 3) & 7, ETAG.FAST)
  t.equal((into[14]! >> 3) & 7, ETAG.FAST_EOF)
  t.equal(hex(into.subarray(0, 15)), hex(bytesOf(chip.sent)))
})

t.test('more samples than the elapsed time says: a follow-up burst, then the rest on the next drain', async (t) => {
  const { chip, clock, drv } = rig()
  drv.init()
  const into = new Uint8Array(3 * 128)
  chip.produce(16 + 3) // e.g. the chip's crystal ran ahead of the board clock
  clock.ms += 16 * samplePeriod
  chip.ops = []
  chip.sends = 0
  t.equal(drv.drain(into, 0).n, 19)
  t.same(chip.ops.map((o) => o.words), [16 + SLACK, FOLLOW_UP], 'first burst ended on a sample without EOF: one more burst')
  t.equal(hex(into.subarray(0, 57)), hex(bytesOf(chip.sent)))
  t.notOk(drv.behind)

  // Far more than the estimate: MAX_BURSTS bursts, then the driver knows it is behind.
  chip.produce(30)
  clock.ms += 10 * samplePeriod
  chip.ops = []
  const n1 = drv.drain(into, 57).n
  t.equal(chip.ops.length, MAX_BURSTS)
  t.equal(n1, 10 + SLACK + (MAX_BURSTS - 1) * FOLLOW_UP)
  t.ok(drv.behind, 'the FIFO was not read to its end')
  chip.ops = []
  const n2 = drv.drain(into, 57 + 3 * n1).n
  t.same(chip.ops.map((o) => `${name(o.reg)}${o.words ? `x${o.words}` : ''}`), ['STATUS', `ECG_FIFO_BURSTx${FIFO_WORDS}`], 'behind: EOVF checked, then a full FIFO read')
  t.equal(n2, 30 - n1)
  t.notOk(drv.behind)
  t.equal(hex(into.subarray(0, 57 + 90)), hex(bytesOf(chip.sent)), 'every sample once, in order')

  // The caller's buffer bounds the read; what does not fit waits for the next drain.
  chip.produce(16)
  clock.ms += 16 * samplePeriod
  const small = new Uint8Array(3 * 10)
  t.equal(drv.drain(small, 0).n, 10)
  t.ok(drv.behind)
  t.equal(drv.drain(into, 0).n, 6)
  t.equal(hex(Buffer.concat([small, into.subarray(0, 18)])), hex(bytesOf(chip.sent.slice(-16))))
})

t.test('overflow: reported as a gap with the samples lost, FIFO_RST issued, nothing invented', async (t) => {
  const { chip, clock, drv } = rig()
  drv.init()
  const into = new Uint8Array(3 * 64)
  // The board was busy for 40 sample periods: the FIFO filled and EOVF is set.
  chip.produce(40)
  clock.ms += 40 * samplePeriod
  chip.ops = []
  const r = drv.drain(into, 0)
  t.same({ ...r }, { n: 0, lostSamples: 40, overflow: true })
  t.same(chip.ops.map((o) => `${o.write ? 'W' : 'R'} ${name(o.reg)}`), ['R STATUS', 'W FIFO_RST'], 'STATUS says EOVF: no burst, FIFO_RST')
  t.equal(chip.fifo.length, 0)
  t.notOk(chip.eovf, 'FIFO_RST cleared EOVF')
  t.equal(drv.overflows, 1)
  t.equal(drv.lostSamples, 40)
  t.equal(hex(into), '00'.repeat(into.length), 'no sample written')

  // The record resumes on the next drain.
  chip.produce(16)
  clock.ms += 16 * samplePeriod
  t.same({ ...drv.drain(into, 0) }, { n: 16, lostSamples: 0, overflow: false })

  // The OVERFLOW tag is acted on as well (time said few samples, e.g. the board clock jumped).
  chip.produce(33)
  clock.ms += 8 * samplePeriod
  chip.ops = []
  const r2 = drv.drain(into, 0)
  t.same({ ...r2 }, { n: 0, lostSamples: 8, overflow: true })
  t.same(chip.ops.map((o) => `${o.write ? 'W' : 'R'} ${name(o.reg)}`), ['R ECG_FIFO_BURST', 'W FIFO_RST'])
  t.equal(drv.overflows, 2)
})

t.test('a sample landing after the burst ran past the FIFO end is kept, contiguous', async (t) => {
  const { chip, clock, drv } = rig()
  drv.init()
  const into = new Uint8Array(3 * 64)
  // 16 present, 18 requested: words 0..15 samples, 16 EMPTY, then a new sample arrives: word 17.
  chip.produce(16)
  clock.ms += 16 * samplePeriod
  chip.arriveAfter = 17
  const r = drv.drain(into, 0)
  t.equal(r.n, 17)
  t.equal(chip.sent.length, 17)
  t.equal(hex(into.subarray(0, 51)), hex(bytesOf(chip.sent)), 'the EMPTY word in the middle is dropped')
  // Arriving right after the last sample: no hole to close.
  chip.produce(16)
  clock.ms += 16 * samplePeriod
  chip.arriveAfter = 16
  t.equal(drv.drain(into, 51).n, 17)
  t.equal(hex(into.subarray(0, 102)), hex(bytesOf(chip.sent)))
})

t.test('JavaScript work per drain does not grow with the number of samples', async (t) => {
  const { chip, clock, drv } = rig()
  drv.init()
  const into = new Uint8Array(3 * FIFO_WORDS)
  const reads: number[] = []
  const sends: number[] = []
  for (let k = 1; k <= FIFO_WORDS; k++) {
    chip.produce(k)
    clock.ms += k * samplePeriod
    chip.byteReads = 0
    chip.sends = 0
    const r = drv.drain(into, 0)
    t.equal(r.n, k, `${k} samples drained`)
    t.equal(hex(into.subarray(0, 3 * k)), hex(bytesOf(chip.sent.slice(-k))), `${k} samples byte-identical`)
    reads.push(chip.byteReads)
    sends.push(chip.sends)
  }
  // Reads of returned bytes: the last word's tag, the over-read EMPTY words, the word before
  // the last sample (a hole check), and STATUS's 3 bytes when 30+ samples could be waiting.
  t.ok(Math.max(...reads) <= 1 + SLACK + 1 + 3, `byte reads per drain ${JSON.stringify(reads)} bounded`)
  t.equal(new Set(reads.slice(1, 29)).size, 1, 'the same work for 2 to 29 samples (1 sample: no hole to look for)')
  t.ok(Math.max(...sends) <= 2, `sends per drain ${JSON.stringify(sends)}: one burst, plus a STATUS read when 30+ could be waiting`)
})

t.test('status: lead-off, R-to-R interval in ms, bits seen by drains are not lost', async (t) => {
  const { chip, clock, drv } = rig()
  drv.init()
  chip.dcloff = true
  chip.ldoff = STATUS.LDOFF_PL | STATUS.LDOFF_NH
  chip.rrint = true
  chip.rtor = 100
  chip.ops = []
  const s = drv.status()
  t.ok(s.leadsOff)
  t.equal(s.ldoff, STATUS.LDOFF_PL | STATUS.LDOFF_NH)
  t.equal(s.rrMs, 781.25, '100 x 7.8125 ms (tRTOR at FMSTR = 00)')
  t.notOk(s.pllUnlocked)
  t.same(chip.ops.map((o) => name(o.reg)), ['STATUS', 'RTOR'])
  t.notOk(chip.rrint, 'RTOR read cleared RRINT (CLR_RRINT = 01)')
  chip.dcloff = false
  chip.ops = []
  const s2 = drv.status()
  t.equal(s2, s, 'the status object is reused')
  t.notOk(s2.leadsOff)
  t.equal(s2.rrMs, 0, 'no new R event')
  t.same(chip.ops.map((o) => name(o.reg)), ['STATUS'], 'RTOR is read only after an R event')

  // A lead-off blip that a drain's STATUS read cleared in the chip still reaches status().
  chip.dcloffHeld = true
  chip.ldoff = STATUS.LDOFF_PH
  chip.produce(31)
  clock.ms += 31 * samplePeriod
  t.equal(drv.drain(new Uint8Array(3 * 40), 0).n, 31)
  t.notOk(chip.dcloffHeld, 'the drain read STATUS')
  const s3 = drv.status()
  t.ok(s3.leadsOff, 'latched by the driver')
  t.equal(s3.ldoff, STATUS.LDOFF_PH)
  t.notOk(drv.status().leadsOff, 'and handed over once')
})

t.test('PLL not locked at SYNCH: drains wait (no samples), then SYNCH again once it locks', async (t) => {
  const { chip, clock, drv } = rig()
  chip.pllUnlocked = true
  drv.init()
  t.ok(drv.pllWait)
  chip.produce(10)
  clock.ms += 40
  const into = new Uint8Array(3 * 32)
  t.same({ ...drv.drain(into, 0) }, { n: 0, lostSamples: 0, overflow: false }, 'no record before lock')
  t.ok(drv.status().pllUnlocked)
  chip.pllUnlocked = false
  chip.pllHeld = true // held until a STATUS read after the lock
  clock.ms += 40
  t.equal(drv.drain(into, 0).n, 0)
  t.ok(drv.pllWait, 'the held PLLINT read once more')
  chip.ops = []
  clock.ms += 40
  t.equal(drv.drain(into, 0).n, 0)
  t.same(chip.ops.map((o) => `${o.write ? 'W' : 'R'} ${name(o.reg)}`), ['R STATUS', 'W SYNCH'], 'locked: SYNCH is time zero')
  t.notOk(drv.pllWait)
  t.equal(chip.fifo.length, 0, 'SYNCH cleared the samples taken before the lock')
  chip.produce(16)
  clock.ms += 16 * samplePeriod
  t.equal(drv.drain(into, 0).n, 16)
})

t.test('the driver passes the Espruino syntax gate once bundled as the firmware is', async (t) => {
  const esbuild = await import('esbuild')
  const { checkEspruinoCompat } = await import('../../firmware/build/syntax-gate.ts')
  const { fileURLToPath } = await import('node:url')
  for (const minify of [false, true]) {
    const out = await esbuild.build({
      entryPoints: [fileURLToPath(new URL('../../firmware/drivers/max30003.ts', import.meta.url))],
      bundle: true,
      write: false,
      format: 'iife',
      globalName: 'MAX30003',
      target: 'es2015',
      platform: 'neutral',
      minify,
      charset: 'ascii',
      legalComments: 'none',
      logLevel: 'silent',
      tsconfigRaw: { compilerOptions: { useDefineForClassFields: false } },
    })
    const code = out.outputFiles[0]!.text
    t.same(checkEspruinoCompat(code), [], `no construct Espruino lacks (minify ${minify})`)
    t.notMatch(code, /\.slice\(/, 'no Array.prototype.slice (undefined on Espruino)')
  }
})
