import t, { type Test } from 'tap'
type Tap = Test
import { createPublicKey, verify as nodeVerify, createHash } from 'node:crypto'
import { mkdtempSync, rmSync, readFileSync, writeFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  Atecc608, AteccStateError, commandPacket, crc16, OPCODE, STATUS, WAKE_RESPONSE, UNLOCKED_RANDOM, EXEC_MS, WATCHDOG_MS,
} from '../../../hardware-sim/devices/atecc608.ts'

/** A minimal host driver, written the way firmware talks to the part: wake, send, poll, read. */
class Host {
  now = 0
  constructor(readonly dev: Atecc608) {}
  wake(): Uint8Array | null {
    this.dev.wake(this.now)
    this.now += 1.5
    return this.dev.read(4, this.now)
  }
  /** Sends a raw packet after word address 0x03, polls (1 ms steps) until ACK, reads the whole response. */
  sendRaw(pkt: Uint8Array): { resp: Uint8Array; polls: number } {
    const w = new Uint8Array(pkt.length + 1)
    w[0] = 0x03
    w.set(pkt, 1)
    if (!this.dev.write(w, this.now)) throw new Error('command NACKed')
    let polls = 0
    let head: Uint8Array | null = null
    while ((head = this.dev.read(1, this.now)) === null) {
      this.now += 1
      polls++
      if (polls > 500) throw new Error('never answered')
    }
    const rest = this.dev.read(head[0] - 1, this.now)!
    const resp = new Uint8Array(head[0])
    resp[0] = head[0]
    resp.set(rest, 1)
    return { resp, polls }
  }
  /** Sends a command; returns the response data (without count and CRC) after checking the CRC. */
  cmd(opcode: number, p1: number, p2: number, data?: Uint8Array): Uint8Array {
    const { resp } = this.sendRaw(commandPacket(opcode, p1, p2, data))
    const c = crc16(resp.subarray(0, resp.length - 2))
    if (resp[resp.length - 2] !== (c & 0xff) || resp[resp.length - 1] !== c >> 8) throw new Error('bad response CRC')
    return resp.subarray(1, resp.length - 2)
  }
  sleep(): void {
    this.dev.write(Uint8Array.of(0x01), this.now)
  }
}

const zero32 = new Uint8Array(32)

function provision(t: Tap, h: Host): void {
  h.wake()
  t.same([...h.cmd(OPCODE.LOCK, 0x80, 0)], [0x00])
  h.cmd(OPCODE.GENKEY, 0x04, 0)
  t.same([...h.cmd(OPCODE.LOCK, 0x81, 0)], [0x00])
}

function spkiFromXY(xy: Uint8Array) {
  return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: Buffer.from(xy.subarray(0, 32)).toString('base64url'), y: Buffer.from(xy.subarray(32)).toString('base64url') }, format: 'jwk' })
}

t.test('CRC-16 (poly 0x8005, LSB-first): known answers', async (t) => {
  t.equal(crc16(Uint8Array.of(0x04, 0x11)), 0x4333, 'wake token 04 11 → 33 43')
  t.equal(crc16(new Uint8Array(0)), 0)
  // CryptoAuthLib's Info(Revision) command packet is 07 30 00 00 00 03 5D.
  t.same([...commandPacket(OPCODE.INFO, 0, 0)], [0x07, 0x30, 0x00, 0x00, 0x00, 0x03, 0x5d])
})

t.test('asleep at power-up: NACKs until woken; wake answers 04 11 33 43 after tWHI', async (t) => {
  const dev = new Atecc608({ seed: 1 })
  t.equal(dev.address, 0x60)
  t.equal(dev.read(4, 0), null, 'asleep: NACK')
  t.equal(dev.write(Uint8Array.of(0x03), 0), false)
  dev.wake(10)
  t.equal(dev.read(4, 10.5), null, 'within tWHI: NACK')
  t.same([...dev.read(4, 11.5)!], [...WAKE_RESPONSE])
  t.equal(dev.state(11.5), 'awake')
  // word address 0x00 rewinds the output buffer
  t.ok(dev.write(Uint8Array.of(0x00), 12))
  t.same([...dev.read(4, 12)!], [...WAKE_RESPONSE])
})

t.test('watchdog puts the part to sleep 1.3 s after wake and clears TempKey; idle keeps TempKey', async (t) => {
  const dev = new Atecc608({ seed: 2 })
  const h = new Host(dev)
  h.wake()
  t.equal(dev.state(WATCHDOG_MS - 1), 'awake')
  t.equal(dev.state(WATCHDOG_MS + 0.1), 'sleep')
  t.equal(dev.read(1, WATCHDOG_MS + 1), null)
  // A command that cannot finish before the watchdog answers 0xEE.
  h.now = 2000
  h.wake()
  h.now = 2000 + WATCHDOG_MS - 20 // GenKey takes 115 ms
  t.same([...h.cmd(OPCODE.GENKEY, 0x04, 0)], [STATUS.WATCHDOG_ABOUT_TO_EXPIRE])
  // Idle: NACKs, wake returns, TempKey survives (checked via Sign in the flow test below).
  h.now = 5000
  h.wake()
  t.ok(dev.write(Uint8Array.of(0x02), h.now))
  t.equal(dev.state(h.now), 'idle')
  t.equal(dev.read(1, h.now + 5000), null, 'idle NACKs, no watchdog in idle')
  t.equal(dev.state(h.now + 5000), 'idle')
})

t.test('Info revision; bad CRC → 0xFF; bad count → 0xFF; unknown opcode / bad params → 0x03', async (t) => {
  const h = new Host(new Atecc608({ seed: 3 }))
  h.wake()
  t.same([...h.cmd(OPCODE.INFO, 0, 0)], [0x00, 0x00, 0x60, 0x02])
  const bad = commandPacket(OPCODE.INFO, 0, 0)
  bad[bad.length - 1] ^= 0x01
  const r = h.sendRaw(bad).resp
  t.same([...r], [0x04, 0xff, ...[...new Uint8Array(2)].map((_, i) => (i === 0 ? crc16(Uint8Array.of(4, 0xff)) & 0xff : crc16(Uint8Array.of(4, 0xff)) >> 8))])
  t.equal(h.dev.lastError, 'CRC mismatch')
  const truncated = commandPacket(OPCODE.INFO, 0, 0).subarray(0, 6)
  t.same([...h.sendRaw(truncated).resp.subarray(1, 2)], [STATUS.COMM_ERROR])
  t.same([...h.cmd(0x77, 0, 0)], [STATUS.PARSE_ERROR], 'SelfTest not modelled: parse error')
  t.same([...h.cmd(OPCODE.RANDOM, 0x02, 0)], [STATUS.PARSE_ERROR])
  t.same([...h.cmd(OPCODE.NONCE, 0x03, 0, new Uint8Array(31))], [STATUS.PARSE_ERROR])
  t.same([...h.cmd(OPCODE.READ, 0x03, 0)], [STATUS.PARSE_ERROR], 'zone 3')
  t.equal(h.dev.write(Uint8Array.of(0x07), h.now), false, 'reserved word address NACKed')
})

t.test('NACK while executing, for the datasheet max time', async (t) => {
  const h = new Host(new Atecc608({ seed: 4 }))
  h.wake()
  const start = h.now
  const w = new Uint8Array([0x03, ...commandPacket(OPCODE.RANDOM, 0, 0)])
  t.ok(h.dev.write(w, start))
  t.equal(h.dev.read(1, start + EXEC_MS[OPCODE.RANDOM] - 0.01), null, 'busy')
  t.equal(h.dev.write(Uint8Array.of(0x00), start + 1), false, 'writes NACKed too')
  const resp = h.dev.read(35, start + EXEC_MS[OPCODE.RANDOM])!
  t.equal(resp[0], 35)
})

t.test('Random before config lock is FF FF 00 00 …; after lock it is random; seeded parts agree', async (t) => {
  const a = new Host(new Atecc608({ seed: 5 }))
  a.wake()
  t.same([...a.cmd(OPCODE.RANDOM, 0, 0)], [...UNLOCKED_RANDOM])
  t.same([...a.cmd(OPCODE.LOCK, 0x80, 0)], [0])
  const r1 = a.cmd(OPCODE.RANDOM, 0, 0)
  const r2 = a.cmd(OPCODE.RANDOM, 0, 0)
  t.notSame([...r1], [...UNLOCKED_RANDOM])
  t.notSame([...r1], [...r2])
  const b = new Host(new Atecc608({ seed: 5 }))
  b.wake()
  b.cmd(OPCODE.LOCK, 0x80, 0)
  t.same([...b.cmd(OPCODE.RANDOM, 0, 0)], [...r1], 'same seed, same stream')
  t.same([...a.dev.serialNumber()], [...b.dev.serialNumber()])
})

t.test('config zone as on a real part: serial 01 23 … EE, I2C address, lock bytes', async (t) => {
  const h = new Host(new Atecc608({ seed: 6 }))
  h.wake()
  const cfg = new Uint8Array(128)
  for (let blk = 0; blk < 4; blk++) cfg.set(h.cmd(OPCODE.READ, 0x80, blk << 3), blk * 32)
  t.same([cfg[0], cfg[1], cfg[12]], [0x01, 0x23, 0xee])
  t.same([...cfg.subarray(4, 8)], [0x00, 0x00, 0x60, 0x02])
  t.equal(cfg[16], 0xc0)
  t.same([cfg[86], cfg[87]], [0x55, 0x55])
  t.same([...h.cmd(OPCODE.READ, 0x00, (3 << 3) | 1)], [...cfg.subarray(100, 104)], '4-byte read of block 3 word 1')
  t.same([...h.dev.serialNumber()], [...cfg.subarray(0, 4), ...cfg.subarray(8, 13)])
  // Config writes: allowed while unlocked except bytes 0..15 and 84..87.
  t.same([...h.cmd(OPCODE.WRITE, 0x00, 5, Uint8Array.of(1, 2, 3, 4))], [0], 'write bytes 20..23')
  t.same([...h.cmd(OPCODE.READ, 0x00, 5)], [1, 2, 3, 4])
  t.same([...h.cmd(OPCODE.WRITE, 0x00, 0, Uint8Array.of(9, 9, 9, 9))], [STATUS.EXECUTION_ERROR], 'serial bytes not writable')
  t.same([...h.cmd(OPCODE.WRITE, 0x00, 21, Uint8Array.of(0, 0, 0, 0))], [STATUS.EXECUTION_ERROR], 'lock bytes not writable')
})

t.test('lock semantics: summary CRC, no-CRC mode 0x80, twice fails, data before config fails', async (t) => {
  const dev = new Atecc608({ seed: 7 })
  const h = new Host(dev)
  h.wake()
  t.same([...h.cmd(OPCODE.LOCK, 0x01, 0)], [STATUS.EXECUTION_ERROR], 'data lock before config lock')
  t.same([...h.cmd(OPCODE.WRITE, 0x02, 8 << 3, new Uint8Array(4))], [STATUS.EXECUTION_ERROR], 'data write before config lock')
  const cfg = new Uint8Array(128)
  for (let blk = 0; blk < 4; blk++) cfg.set(h.cmd(OPCODE.READ, 0x80, blk << 3), blk * 32)
  const crc = crc16(cfg)
  t.same([...h.cmd(OPCODE.LOCK, 0x00, crc ^ 1)], [STATUS.EXECUTION_ERROR], 'wrong summary CRC')
  t.notOk(dev.configLocked)
  t.same([...h.cmd(OPCODE.LOCK, 0x00, crc)], [0], 'right summary CRC')
  t.ok(dev.configLocked)
  t.same([...h.cmd(OPCODE.LOCK, 0x00, crc)], [STATUS.EXECUTION_ERROR], 'already locked')
  t.same([...h.cmd(OPCODE.WRITE, 0x00, 5, new Uint8Array(4))], [STATUS.EXECUTION_ERROR], 'config frozen')
  // Data zone: write slot 8 and OTP, then reading fails until the data lock.
  const cert = new Uint8Array(32).map((_, i) => i)
  t.same([...h.cmd(OPCODE.WRITE, 0x82, 8 << 3, cert)], [0])
  t.same([...h.cmd(OPCODE.WRITE, 0x01, 0, Uint8Array.of(0xaa, 0xbb, 0xcc, 0xdd))], [0])
  t.same([...h.cmd(OPCODE.READ, 0x82, 8 << 3)], [STATUS.EXECUTION_ERROR], 'no reads before data lock')
  t.same([...h.cmd(OPCODE.LOCK, 0x01, dev.dataSummaryCrc() ^ 0xffff)], [STATUS.EXECUTION_ERROR])
  t.same([...h.cmd(OPCODE.LOCK, 0x01, dev.dataSummaryCrc())], [0])
  t.same([...h.cmd(OPCODE.READ, 0x82, 8 << 3)], [...cert])
  t.same([...h.cmd(OPCODE.READ, 0x01, 0)], [0xaa, 0xbb, 0xcc, 0xdd])
  t.same([...h.cmd(OPCODE.WRITE, 0x01, 1, new Uint8Array(4))], [STATUS.EXECUTION_ERROR], 'OTP read-only after lock')
  t.same([...h.cmd(OPCODE.READ, 0x02, (9 << 3) | (3 << 8))], [STATUS.PARSE_ERROR], 'slot 9 has 72 bytes: block 3 out of range')
  // Slot lock of a lockable data slot: afterwards writes fail.
  t.same([...h.cmd(OPCODE.WRITE, 0x02, 10 << 3, Uint8Array.of(1, 1, 1, 1))], [0])
  t.same([...h.cmd(OPCODE.LOCK, 0x82 | (10 << 2), 0)], [0])
  t.same([...h.cmd(OPCODE.WRITE, 0x02, 10 << 3, Uint8Array.of(2, 2, 2, 2))], [STATUS.EXECUTION_ERROR])
  t.same([...h.cmd(OPCODE.LOCK, 0x82 | (5 << 2), 0)], [STATUS.EXECUTION_ERROR], 'slot 5 not lockable')
})

t.test('Nonce pass-through + Sign external verifies with node:crypto as ES256', async (t) => {
  const h = new Host(new Atecc608({ seed: 8 }))
  h.wake()
  t.same([...h.cmd(OPCODE.GENKEY, 0x04, 0)], [STATUS.EXECUTION_ERROR], 'GenKey before config lock')
  h.cmd(OPCODE.LOCK, 0x80, 0)
  const pub = h.cmd(OPCODE.GENKEY, 0x04, 0)
  t.equal(pub.length, 64)
  t.same([...h.cmd(OPCODE.GENKEY, 0x00, 0)], [...pub], 'public-key mode recomputes the same key')
  t.same([...h.cmd(OPCODE.INFO, 0x01, 0)], [1, 0, 0, 0], 'KeyValid')
  t.same([...h.cmd(OPCODE.SIGN, 0x80, 0)], [STATUS.EXECUTION_ERROR], 'Sign before data lock')
  h.cmd(OPCODE.LOCK, 0x81, 0)
  t.same([...h.cmd(OPCODE.SIGN, 0x80, 0)], [STATUS.EXECUTION_ERROR], 'no TempKey')
  const key = spkiFromXY(pub)
  for (let i = 0; i < 4; i++) {
    // One wake per frame, as firmware does: 1.3 s of watchdog is not enough for many 115 ms Signs.
    h.sleep()
    h.wake()
    const msg = Buffer.from(`frame ${i}`)
    const digest = createHash('sha256').update(msg).digest()
    t.same([...h.cmd(OPCODE.NONCE, 0x03, 0, digest)], [0])
    const sig = h.cmd(OPCODE.SIGN, 0x80, 0)
    t.equal(sig.length, 64)
    t.ok(nodeVerify('sha256', msg, { key, dsaEncoding: 'ieee-p1363' }, sig), `signature ${i} verifies`)
    t.notOk(nodeVerify('sha256', Buffer.from('other'), { key, dsaEncoding: 'ieee-p1363' }, sig))
    t.same([...h.cmd(OPCODE.SIGN, 0x80, 0)], [STATUS.EXECUTION_ERROR], 'TempKey consumed by Sign')
  }
  // Idle keeps TempKey; sleep loses it.
  h.cmd(OPCODE.NONCE, 0x03, 0, zero32)
  h.dev.write(Uint8Array.of(0x02), h.now)
  h.wake()
  t.equal(h.cmd(OPCODE.SIGN, 0x80, 0).length, 64, 'TempKey survived idle')
  h.cmd(OPCODE.NONCE, 0x03, 0, zero32)
  h.sleep()
  h.wake()
  t.same([...h.cmd(OPCODE.SIGN, 0x80, 0)], [STATUS.EXECUTION_ERROR], 'TempKey lost in sleep')
  // Random nonce: TempKey = SHA-256(RandOut ‖ NumIn ‖ 16 00 00); sign it and verify as a prehashed digest.
  const numIn = new Uint8Array(20).fill(7)
  const randOut = h.cmd(OPCODE.NONCE, 0x00, 0, numIn)
  t.equal(randOut.length, 32)
  const tk = createHash('sha256').update(randOut).update(numIn).update(Uint8Array.of(0x16, 0, 0)).digest()
  const sig = h.cmd(OPCODE.SIGN, 0x80, 0)
  const { p256 } = await import('@noble/curves/nist.js')
  t.ok(p256.verify(sig, tk, Uint8Array.of(4, ...pub), { prehash: false, lowS: false }))
})

t.test('the private key is never readable; slot 0 cannot be written in the clear after lock', async (t) => {
  const h = new Host(new Atecc608({ seed: 9 }))
  provision(t, h)
  t.same([...h.cmd(OPCODE.READ, 0x82, 0)], [STATUS.EXECUTION_ERROR], '32-byte read of block 0')
  t.same([...h.cmd(OPCODE.READ, 0x02, 1 << 8)], [STATUS.EXECUTION_ERROR], '4-byte read of block 1')
  for (let w = 0; w < 8; w++) t.same([...h.cmd(OPCODE.READ, 0x02, w)], [STATUS.EXECUTION_ERROR], `word ${w}`)
  t.same([...h.cmd(OPCODE.READ, 0x02, 5 << 3)], [STATUS.EXECUTION_ERROR], 'secret slot 5')
  t.same([...h.cmd(OPCODE.WRITE, 0x82, 0, zero32)], [STATUS.EXECUTION_ERROR])
  t.equal(h.cmd(OPCODE.GENKEY, 0x04, 1).length, 64, 'GenKey still allowed on slot 1 after lock (WriteConfig GenKey)')
})

t.test('state persists to JSON across instances; torn files are refused without being overwritten', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'atecc-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'se.json')
  const a = new Atecc608({ statePath: path })
  t.equal(statSync(path).mode & 0o777, 0o600)
  const ha = new Host(a)
  provision(t, ha)
  const pub = ha.cmd(OPCODE.GENKEY, 0x00, 0)
  const b = new Atecc608({ statePath: path })
  t.ok(b.configLocked && b.dataLocked)
  t.same([...b.serialNumber()], [...a.serialNumber()])
  const hb = new Host(b)
  hb.wake()
  t.same([...hb.cmd(OPCODE.GENKEY, 0x00, 0)], [...pub], 'same key after restart')
  const digest = createHash('sha256').update('x').digest()
  hb.cmd(OPCODE.NONCE, 0x03, 0, digest)
  t.ok(nodeVerify('sha256', Buffer.from('x'), { key: spkiFromXY(pub), dsaEncoding: 'ieee-p1363' }, hb.cmd(OPCODE.SIGN, 0x80, 0)))

  const good = readFileSync(path, 'utf8')
  const torn = good.slice(0, good.length / 2)
  writeFileSync(path, torn)
  t.throws(() => new Atecc608({ statePath: path }), AteccStateError)
  t.equal(readFileSync(path, 'utf8'), torn, 'torn file left as it was')
  const obj = JSON.parse(good)
  obj.keys[0] = 'zz'
  writeFileSync(path, JSON.stringify(obj))
  t.throws(() => new Atecc608({ statePath: path }), /key 0: expected 32 bytes of hex/)
  writeFileSync(path, JSON.stringify({ format: 'other' }))
  t.throws(() => new Atecc608({ statePath: path }), /expected format/)
})

t.test('bad arguments are refused with clear messages', async (t) => {
  t.throws(() => new Atecc608({ address: 0x80 }), /expected a 7-bit I2C address/)
  const dev = new Atecc608({ seed: 10 })
  t.throws(() => dev.read(-1, 0), /expected a byte count/)
  t.throws(() => dev.wake(NaN), /expected a finite time/)
  t.equal(new Atecc608({ address: 0x35, seed: 1 }).address, 0x35)
})

t.test('mangler: random and truncated packets never throw and always get a CRC-valid answer', async (t) => {
  const { createRng } = await import('../../../protocol/node/rng.ts')
  const rng = createRng(99)
  const h = new Host(new Atecc608({ seed: 11 }))
  h.wake()
  h.cmd(OPCODE.LOCK, 0x80, 0)
  let answered = 0
  for (let i = 0; i < 2000; i++) {
    if (h.dev.state(h.now) !== 'awake') h.wake()
    const len = rng.int(0, 80)
    const body = new Uint8Array(len).map(() => rng.int(0, 255))
    // Half of them: well-framed packets (count + CRC right) with random opcode/params/data.
    const pkt = i % 2 === 0 && len >= 5 ? commandPacket(body[0] % 2 ? [OPCODE.READ, OPCODE.WRITE, OPCODE.LOCK, OPCODE.GENKEY, OPCODE.SIGN, OPCODE.NONCE, OPCODE.INFO, OPCODE.RANDOM][body[1] % 8] : body[1], body[2], body[3] | (body[4] << 8), body.subarray(5)) : body
    if (pkt.length > 0 && pkt[0] === 7 && pkt[1] === OPCODE.LOCK) continue // do not lock the data zone by chance
    const { resp } = h.sendRaw(pkt)
    const c = crc16(resp.subarray(0, resp.length - 2))
    t.ok(resp[resp.length - 2] === (c & 0xff) && resp[resp.length - 1] === c >> 8, `packet ${i}: response CRC valid`)
    answered++
  }
  t.equal(answered, 2000, 'every packet answered (the seeded stream holds no data-zone LOCK to skip)')
})
