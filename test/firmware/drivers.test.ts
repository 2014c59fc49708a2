import t from 'tap'
import { commandBytes, parseResponse, OP_INFO, OP_NONCE, OP_SIGN } from '../../firmware/drivers/atecc608.ts'
import { REG, FULL_SCALE } from '../../firmware/drivers/max30102.ts'
import { Max30102Decoding as Max30102 } from '../../firmware/drivers/max30102-decode.ts'
import { Ad8232 } from '../../firmware/drivers/ad8232.ts'
import { crc16 } from '../../firmware/crc16.ts'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

t.test('ATECC608 command packets: word address, count, opcode, params LE, data, CRC LE', async (t) => {
  // Info(Revision), as CryptoAuthLib sends it: 03 07 30 00 00 00 03 5d.
  t.equal(hex(commandBytes(OP_INFO, 0, 0, null)), '0307300000' + '00035d')
  const digest = new Uint8Array(32).fill(0xab)
  const nonce = commandBytes(OP_NONCE, 0x03, 0, digest)
  t.equal(nonce.length, 40)
  t.equal(nonce[1], 39, 'count = 7 + 32 data bytes')
  t.same([nonce[2], nonce[3], nonce[4], nonce[5]], [0x16, 0x03, 0, 0], 'Nonce, pass-through mode')
  const c = crc16(nonce, 1, 38)
  t.same([nonce[38], nonce[39]], [c & 255, c >> 8])
  const sign = commandBytes(OP_SIGN, 0x80, 0x0102, null)
  t.same([...sign.subarray(2, 6)], [0x41, 0x80, 0x02, 0x01], 'Sign external, key ID little-endian')
})

t.test('ATECC608 responses: CRC and status checked, data returned', async (t) => {
  t.equal(parseResponse(Uint8Array.of(0x04, 0x00, 0x03, 0x40), 1) instanceof Uint8Array, true, 'success status')
  t.match(parseResponse(Uint8Array.of(0x04, 0x0f, 0, 0), 1), /CRC mismatch/)
  const exec = Uint8Array.of(0x04, 0x0f, 0, 0)
  const c = crc16(exec, 0, 2)
  exec[2] = c & 255
  exec[3] = c >> 8
  t.equal(parseResponse(exec, 1), 'status 0xf (execution error)')
  t.equal(parseResponse(exec, 64), 'status 0xf (execution error)')
  const ok = Uint8Array.of(0x04, 0x00, 0x03, 0x40)
  t.equal(parseResponse(ok, 64), 'expected 64 data bytes, got a status block')
  const data = new Uint8Array(7)
  data.set([7, 0, 0, 0x60, 0x02])
  const c2 = crc16(data, 0, 5)
  data[5] = c2 & 255
  data[6] = c2 >> 8
  t.equal(hex(parseResponse(data, 4) as Uint8Array), '00006002')
  t.equal(parseResponse(null, 4), 'no response')
  t.equal(parseResponse(Uint8Array.of(0xff, 0xff, 0xff, 0xff), 4), 'bad response length 255')
})

/** A register file with a FIFO, enough to exercise the driver's arithmetic. */
function fakeMax(samples: number[][], ovf = 0, part = 0x15) {
  const regs = new Uint8Array(256)
  regs[REG.PART_ID] = part
  let ptr = 0
  const writes: number[][] = []
  const fifo = samples.slice()
  const bus = {
    writeTo(_a: number, d: number[] | Uint8Array) {
      const a = [...d]
      writes.push(a)
      ptr = a[0]!
      for (let i = 1; i < a.length; i++) regs[a[0]! + i - 1] = a[i]! // auto-increment, as the chip does
      if (a[0] === REG.MODE_CONFIG && a[1] === 0x40) regs[REG.MODE_CONFIG] = 0 // reset completes at once
    },
    readFrom(_a: number, n: number) {
      if (ptr === REG.FIFO_WR_PTR) return Uint8Array.of(fifo.length & 31, ovf, 0)
      if (ptr === REG.FIFO_DATA) {
        const out = new Uint8Array(n)
        for (let i = 0; i < n / 6; i++) {
          const [r, ir] = fifo.shift()!
          out.set([r! >> 16, (r! >> 8) & 255, r! & 255, ir! >> 16, (ir! >> 8) & 255, ir! & 255], i * 6)
        }
        return out
      }
      return regs.slice(ptr, ptr + n)
    },
  }
  return { bus, regs, writes }
}

t.test('MAX30102: identity check, SpO2 100 Hz configuration, FIFO decode', async (t) => {
  const f = fakeMax([[100000, 200000], [100010, 200020], [0x3ffff, 0x3ffff]])
  const m = new Max30102(f.bus, 0x57)
  m.init()
  t.equal(f.regs[REG.SPO2_CONFIG], 0x27)
  t.equal(f.regs[REG.MODE_CONFIG], 0x03)
  const red = new Uint32Array(10)
  const ir = new Uint32Array(10)
  t.equal(m.read(red, ir, 0, 10), 3)
  t.same([...red.subarray(0, 3)], [100000, 100010, FULL_SCALE])
  t.same([...ir.subarray(0, 3)], [200000, 200020, FULL_SCALE])
  t.notOk(m.fingerOff)
  t.throws(() => new Max30102(fakeMax([], 0, 0x11).bus, 0x57).init(), /expected PART_ID 0x15 at 0x57, got 0x11/)
})

t.test('MAX30102: overflow counted, finger-off, LED current steps toward the DC band', async (t) => {
  const f = fakeMax(Array.from({ length: 32 }, () => [250000, 250000]), 5)
  const m = new Max30102(f.bus, 0x57)
  m.init()
  const red = new Uint32Array(40)
  const ir = new Uint32Array(40)
  m.read(red, ir, 0, 40)
  t.equal(m.overflows, 1)
  t.equal(m.lostSamples, 5)
  t.ok(m.irPa < 0x24 && m.redPa < 0x24, 'too bright: currents lowered')
  const g = fakeMax([[1000, 2000]])
  const m2 = new Max30102(g.bus, 0x57)
  m2.init()
  m2.read(red, ir, 0, 40)
  t.ok(m2.fingerOff, 'IR DC near zero: finger off')
  t.equal(m2.irPa, 0x24, 'no current hunting without a finger')
})

t.test('AD8232: 12-bit scaling and lead-off from LO+ or LO-', async (t) => {
  const lvl: Record<string, number> = { lp: 0, lm: 0 }
  const a = new Ad8232({ analogRead: () => 0.5, digitalRead: (p) => lvl[p]!, digitalWrite: () => {} }, { out: 'o', loPlus: 'lp', loMinus: 'lm' })
  t.equal(a.sample(), 2048)
  t.notOk(a.leadOff())
  lvl.lm = 1
  t.ok(a.leadOff())
  const b = new Ad8232({ analogRead: () => 1, digitalRead: () => 0, digitalWrite: () => {} }, { out: 'o', loPlus: 'lp', loMinus: 'lm' })
  t.equal(b.sample(), 4095, 'clamped to 12 bits')
})

t.test('table CRC-16 equals the device model\'s bit-by-bit CRC on random packets and strings', async (t) => {
  const { crc16: modelCrc } = await import('../../hardware-sim/devices/atecc-crc.ts')
  let seed = 12345
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) % 256
  for (let n = 0; n < 200; n++) {
    const d = new Uint8Array(n % 90)
    for (let i = 0; i < d.length; i++) d[i] = next()
    t.equal(crc16(d, 0, d.length), modelCrc(d), `packet of ${d.length} bytes`)
    t.equal(crc16(Buffer.from(d).toString('latin1'), 0, d.length), modelCrc(d), 'same over a binary string')
  }
  t.equal(crc16(Uint8Array.of(0x04, 0x11), 0, 2), 0x4333, 'wake token 04 11 33 43')
})
