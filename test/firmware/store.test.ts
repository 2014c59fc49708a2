import t from 'tap'
import { FlashRing } from '../../firmware/store.ts'
import { Persist, decodeCounters, encodeCounters } from '../../firmware/persist.ts'
import { crc16 } from '../../firmware/crc16.ts'
import { MemStorage } from './helpers/espruino-env.ts'

const frame = (n: number, size = 300) => `F${n}:` + 'x'.repeat(size) + '\xff\x00' + String.fromCharCode(n & 255)
const ringOpts = { prefix: 'q', segments: 4, segSize: 2048, maxRecords: 64 }

/** Drains the ring like the uplink does: next, read, ack. */
function drain(r: FlashRing): string[] {
  const out: string[] = []
  for (let id = r.next(); id >= 0; id = r.next()) {
    out.push(r.read(id))
    r.ack(id)
  }
  return out
}

t.test('CRC-16 matches the ATECC608 datasheet: wake response 04 11 33 43', async (t) => {
  t.equal(crc16(Uint8Array.of(0x04, 0x11), 0, 2), 0x4333)
  t.equal(crc16('\x04\x11', 0, 2), 0x4333, 'same over binary strings')
  // Status response "success" 04 00 03 40.
  t.equal(crc16(Uint8Array.of(0x04, 0x00), 0, 2), 0x4003)
})

t.test('records come back oldest first, byte-exact, and survive a reboot', async (t) => {
  const st = new MemStorage()
  const r = new FlashRing(st, ringOpts)
  r.open()
  for (let i = 0; i < 10; i++) r.push(frame(i))
  const first = r.next()
  t.equal(r.read(first), frame(0))
  r.ack(first)
  // Reboot: a fresh ring over the same flash.
  const r2 = new FlashRing(st, ringOpts)
  r2.open()
  t.equal(r2.count, 9)
  t.same(drain(r2), Array.from({ length: 9 }, (_, i) => frame(i + 1)))
  t.equal(r2.count, 0)
})

t.test('in-flight records are resent after the link drops, acked ones never', async (t) => {
  const r = new FlashRing(new MemStorage(), ringOpts)
  r.open()
  for (let i = 0; i < 4; i++) r.push(frame(i))
  const a = r.next()
  const b = r.next()
  r.ack(a)
  r.unsend()
  t.equal(r.read(r.next()), frame(1), 'the unacked one comes first again')
  t.not(b, -1)
})

t.test('full ring drops the oldest segment, counts the loss, keeps order of the rest', async (t) => {
  const st = new MemStorage()
  const r = new FlashRing(st, ringOpts)
  r.open()
  // 4 segments x 2048 bytes hold 6 frames of ~310 bytes each: 24 in total. Each push into a
  // full ring erases the oldest segment (6 frames): 40 pushes erase three of them.
  for (let i = 0; i < 40; i++) r.push(frame(i))
  const d = r.takeDropped()
  t.equal(d, 18, 'three whole segments dropped, 6 frames each')
  t.equal(r.takeDropped(), 0, 'reported once')
  const got = drain(r)
  t.equal(got.length + d, 40, 'every frame is either stored or counted as dropped')
  t.same(got, Array.from({ length: got.length }, (_, i) => frame(40 - got.length + i)), 'the newest survive, in order')
  // Flash was only ever written into erased space (MemStorage ANDs, so a rewrite would corrupt).
  const r2 = new FlashRing(st, ringOpts)
  r2.open()
  t.equal(r2.count, 0)
})

t.test('a brown-out mid-record loses only that record; earlier ones and later writes are intact', async (t) => {
  const st = new MemStorage()
  const r = new FlashRing(st, ringOpts)
  r.open()
  r.push(frame(0))
  r.push(frame(1))
  st.failAfterWrites = 0
  st.tornBytes = 50
  t.throws(() => r.push(frame(2)), /brown-out/)
  const r2 = new FlashRing(st, ringOpts)
  r2.open()
  t.equal(r2.takeDropped(), 1, 'the torn record is counted')
  r2.push(frame(3))
  t.same(drain(r2), [frame(0), frame(1), frame(3)])
})

t.test('refuses a record larger than a segment, with a clear message', async (t) => {
  const r = new FlashRing(new MemStorage(), ringOpts)
  r.open()
  t.throws(() => r.push('x'.repeat(5000)), /FlashRing: 5000 > 2037 bytes/)
  t.throws(() => new FlashRing(new MemStorage(), { ...ringOpts, segments: 1 }), /FlashRing: bad geometry 1 x /)
})

t.test('counters: sequence numbers, boots and auth counters never repeat across reboots', async (t) => {
  const st = new MemStorage()
  const seen = new Set<string>()
  let lastBoot = 0
  let lastCtr = -1
  for (let boot = 0; boot < 5; boot++) {
    const p = new Persist(st, 'c', 16, 4)
    p.open()
    t.ok(p.boot > lastBoot, `boot ${p.boot} > ${lastBoot}`)
    lastBoot = p.boot
    for (let i = 0; i < 37; i++) {
      const s = p.nextSeq()
      t.notOk(seen.has(String(s)), `seq ${s} fresh`)
      seen.add(String(s))
    }
    const c = p.nextCounter()
    t.ok(c > lastCtr)
    lastCtr = c
  }
})

t.test('counters: the next sequence block is reserved in a callback of its own, before a frame needs it', async (t) => {
  const st = new MemStorage()
  const p = new Persist(st, 'c', 8, 2)
  p.open()
  const limit0 = p.cur.seqLimit
  let writes = 0
  const write = st.write.bind(st)
  st.write = (...a: Parameters<typeof st.write>) => {
    writes++
    return write(...a)
  }
  const handed: number[] = []
  for (let i = 0; i < 16; i++) {
    const before = writes
    handed.push(p.nextSeq())
    t.equal(writes, before, `nextSeq ${handed.at(-1)} wrote nothing itself`)
    await new Promise((r) => setTimeout(r, 0))
  }
  t.ok(p.cur.seqLimit > limit0 + 8, `the limit moved on ahead of use (${limit0} -> ${p.cur.seqLimit})`)
  t.same(handed, Array.from({ length: 16 }, (_, i) => handed[0]! + i), 'consecutive numbers')
  // Without a turn of the event loop (the callback never ran) the limit is still never passed.
  const q = new Persist(st, 'c', 8, 2)
  q.open()
  const start = q.nextSeq()
  for (let i = 0; i < 20; i++) q.nextSeq()
  t.ok(q.cur.seqLimit > start + 20, 'the synchronous save at the limit still covers it')
})

t.test('counters: a brown-out during any write never lets a number repeat', async (t) => {
  // Try tearing each write in turn, at several tear lengths.
  for (let failAt = 0; failAt < 6; failAt++) {
    for (const torn of [0, 3, 9, 20]) {
      const st = new MemStorage()
      const used: number[] = []
      const bootsUsed: number[] = []
      const p = new Persist(st, 'c', 8, 2)
      p.open()
      bootsUsed.push(p.boot)
      st.failAfterWrites = failAt
      st.tornBytes = torn
      try {
        for (let i = 0; i < 40; i++) used.push(p.nextSeq())
      } catch {
        // brown-out: reboot
      }
      st.failAfterWrites = -1
      const p2 = new Persist(st, 'c', 8, 2)
      p2.open()
      t.notOk(bootsUsed.includes(p2.boot), `fail ${failAt}/${torn}: boot ${p2.boot} fresh`)
      const s = p2.nextSeq()
      t.ok(used.every((u) => u < s), `fail ${failAt}/${torn}: seq ${s} above all used`)
    }
  }
})

t.test('counter records with a bad checksum or shape are rejected', async (t) => {
  const good = encodeCounters({ gen: 3, boot: 2, seqLimit: 64, ctrLimit: 8 })
  t.same(decodeCounters(good), { gen: 3, boot: 2, seqLimit: 64, ctrLimit: 8 })
  t.equal(decodeCounters(good.replace('64', '65')), undefined)
  t.equal(decodeCounters(good.slice(0, 10)), undefined)
  t.equal(decodeCounters(''), undefined)
  t.equal(decodeCounters(undefined), undefined)
  const withWall = encodeCounters({ gen: 4, boot: 2, seqLimit: 64, ctrLimit: 8, wall: 1763990000000 })
  t.same(decodeCounters(withWall), { gen: 4, boot: 2, seqLimit: 64, ctrLimit: 8, wall: 1763990000000 }, 'the last known wall clock rides along')
  t.equal(decodeCounters(withWall.replace('1763990000000', '1763990000001')), undefined)
})
