/**
 * hardware-sim/cost/board-cost.ts and the model's additions for it: the option, the clock
 * charge on the outermost callback, flash charges from the Storage counters, metered sockets,
 * hashes other than SHA-256, PBKDF2 in general, moving the meter to a new counter.
 */
import t from 'tap'
import vm from 'node:vm'
import { BoardCost, resolveCost, meteredNetModule, byteLength } from '../../../hardware-sim/cost/board-cost.ts'
import { CostModel, NATIVE_COSTS, sha256Blocks, sha512Blocks } from '../../../hardware-sim/cost/model.ts'
import { CostMeter } from '../../../hardware-sim/cost/meter.ts'

const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b))

/** A clock that records what it was charged. */
function clock(): { charges: number[]; charge(ms: number): void } {
  const charges: number[] = []
  return { charges, charge: (ms) => charges.push(ms) }
}

t.test('resolveCost: off is null, settings make a model, a model is used as it is, anything else is refused', async (t) => {
  t.equal(resolveCost(undefined, clock()), null)
  t.equal(resolveCost('off', clock()), null)
  t.equal(resolveCost('high', clock())!.model.setting, 'high')
  const m = new CostModel('low', { usPerUnit: 3 })
  t.equal(resolveCost(m, clock())!.model, m)
  t.throws(() => resolveCost('on' as 'off', clock()), /expected cost 'off', 'low', 'central', 'high' or a CostModel, got "on"/)
})

t.test('the outermost callback charges the clock with everything, nested ones included', async (t) => {
  const c = clock()
  const cost = new BoardCost(new CostModel('central', { usPerUnit: 1, callbackUnits: 0 }), c)
  const ctx = vm.createContext({})
  const counter = cost.attach(ctx)
  t.equal(vm.runInContext('__cost', ctx), counter, 'the counter lives in the context')
  t.notOk(Object.keys(vm.runInContext('globalThis', ctx)).includes('__cost'), 'not enumerable')
  cost.begin('outer')
  counter.u += 100
  t.ok(close(cost.elapsedMs(), 0.1))
  cost.begin('inner')
  counter.u += 50
  cost.i2c(6, 400_000)
  cost.end()
  t.same(c.charges, [], 'a nested callback does not charge the clock itself')
  cost.end()
  const i2c = cost.model.nativeCallUs() + cost.model.i2cUs(6, 400_000)
  t.equal(c.charges.length, 1)
  t.ok(close(c.charges[0]!, (150 + i2c) / 1000), 'the outer one charges all of it')
  t.equal(cost.elapsedMs(), 0)
  const r = cost.report(10)
  t.ok(close(r.busyUs, 150 + i2c))
  t.same(r.callbacks.map((x) => [x.name, x.count, x.units]).sort(), [['inner', 1, 50], ['outer', 1, 100]], 'each charged its own units')
  t.ok(close(r.share, (150 + i2c) / 1000 / 10))
  cost.reset(10)
  t.same(cost.report(12).callbacks, [])
  t.equal(cost.report(12).elapsedMs, 2)
})

t.test('a fresh interpreter: the meter counts from its counter, open callbacks keep their units', async (t) => {
  const a = { u: 1000 }
  const m = new CostMeter(new CostModel('central', { usPerUnit: 1, callbackUnits: 0 }), a)
  m.begin('x')
  a.u += 30
  const b = { u: 5 }
  m.attach(b)
  t.equal(m.depth, 1)
  b.u += 12
  t.ok(close(m.end(), 42))
  t.throws(() => m.attach({} as { u: number }), TypeError)
})

t.test('native charges outside a callback are reported apart and do not move the clock', async (t) => {
  const c = clock()
  const cost = new BoardCost(new CostModel(), c)
  cost.attach(vm.createContext({}))
  cost.hash('SHA256', 64)
  t.same(c.charges, [])
  const r = cost.report(1)
  t.equal(r.busyUs, 0)
  t.ok(close(r.outsideUs, cost.model.nativeCallUs() + cost.model.sha256Us(64)))
})

t.test('flash: new files, rewrites, offset writes, erases and compaction from the Storage counters', async (t) => {
  const model = new CostModel('central', { usPerUnit: 1, callbackUnits: 0 })
  const cost = new BoardCost(model, clock())
  const counter = cost.attach(vm.createContext({}))
  const charged = (fn: () => void): number => {
    cost.begin('op')
    fn()
    const u0 = counter.u
    cost.end()
    t.equal(counter.u, u0)
    return cost.report(0).callbacks.find((c) => c.name === 'op')!.totalUs
  }
  const call = model.nativeCallUs()
  let last = 0
  const op = (before: object, after: object, payload: Parameters<BoardCost['flash']>[2], eraseAll = false): number => {
    const total = charged(() => cost.flash({ fileBytes: 0, trashBytes: 0, trashCount: 0, ...before }, { fileBytes: 0, trashBytes: 0, trashCount: 0, ...after }, payload, eraseAll))
    const us = total - last
    last = total
    return us
  }
  // A 300-byte file created at address 1000: header + data from 1000 to 1332, pages 3..5.
  t.ok(close(op({ fileBytes: 1000 }, { fileBytes: 1332 }, { bytes: 300, fileOffset: 0 }), call + model.flashWriteUs(332, 1000)))
  // Rewritten with new contents: old name zeroed (one program), new copy at the end.
  t.ok(close(op({ fileBytes: 1332 }, { fileBytes: 1332, trashBytes: 332, trashCount: 1 }, { bytes: 300, fileOffset: 0 }), call + model.flashWriteUs(28, 4) + model.flashWriteUs(332, 1332)))
  // Same contents again: nothing programmed.
  t.ok(close(op({ fileBytes: 1332 }, { fileBytes: 1332 }, { bytes: 300, fileOffset: 0 }), call))
  // 100 bytes at offset 200 of an existing file (created with room): pages from 32 + 200.
  t.ok(close(op({ fileBytes: 1332 }, { fileBytes: 1332 }, { bytes: 100, fileOffset: 200 }), call + model.flashWriteUs(100, 232)))
  // A StorageFile append into its current chunk (offset unknown).
  t.ok(close(op({ fileBytes: 1332 }, { fileBytes: 1332 }, { bytes: 40, fileOffset: null }), call + model.flashWriteUs(40, 32)))
  // erase(): the name zeroed.
  t.ok(close(op({ fileBytes: 1332 }, { fileBytes: 1000, trashBytes: 332, trashCount: 1 }, null), call + model.flashWriteUs(28, 4)))
  // Compaction: the 9,000 bytes used before are erased (3 sectors), the 5,000 live ones programmed again.
  t.ok(close(op({ fileBytes: 5000, trashBytes: 4000, trashCount: 3 }, { fileBytes: 5000 }, null), call + model.flashEraseUs(3) + model.flashWriteUs(5000, 0)))
  // eraseAll: every sector of the 896 KB area.
  t.ok(close(op({ fileBytes: 5000 }, {}, null, true), call + model.flashEraseUs(224)))
})

t.test('metered sockets: every write (and end with data) costs a call and its bytes', async (t) => {
  const model = new CostModel('central', { usPerUnit: 1, callbackUnits: 0 })
  const cost = new BoardCost(model, clock())
  cost.attach(vm.createContext({}))
  const written: unknown[] = []
  const sock: Record<string, unknown> = { write: (d: unknown) => (written.push(d), true) }
  sock.end = (d?: unknown) => (d !== undefined ? (sock.write as (x: unknown) => unknown)(d) : undefined)
  const mod = meteredNetModule({ connect: () => sock }, cost) as { connect(o: unknown): typeof sock }
  const s = mod.connect({ host: 'x', port: 1 })
  cost.begin('send')
  t.equal((s.write as (d: unknown) => unknown)('abc'), true, 'the write goes through')
  ;(s.end as (d: unknown) => void)(new Uint8Array(10))
  cost.end()
  t.same(written.length, 2)
  const e = cost.report(0).callbacks[0]!
  t.ok(close(e.totalUs, model.netWriteUs(3) + model.netWriteUs(10)))
  t.ok(close(model.netWriteUs(100), model.nativeCallUs() + NATIVE_COSTS.netWriteUs + 100 * NATIVE_COSTS.netByteUs))
  t.same([byteLength('héllo'), byteLength([1, 2]), byteLength(new ArrayBuffer(7)), byteLength(new Uint16Array(3)), byteLength(undefined), byteLength(42)], [5, 2, 7, 6, 0, 2])
})

t.test('hashes: SHA-1/224 like SHA-256, SHA-384/512 by 128-byte blocks; PBKDF2 in general', async (t) => {
  const m = new CostModel()
  const { sha256CallUs: c, sha256BlockUs: b, sha512BlockUs: b5, pbkdf2CallUs: p } = NATIVE_COSTS
  t.same([0, 111, 112, 128].map(sha512Blocks), [1, 1, 2, 2], '17 bytes of padding and length')
  t.ok(close(m.hashUs('SHA1', 100), m.sha256Us(100)))
  t.ok(close(m.hashUs('SHA512', 600), c + sha512Blocks(600) * b5))
  t.throws(() => m.hashUs('MD5' as 'SHA1', 1), /expected a hash of SHA1, SHA224, SHA256, SHA384, SHA512, got "MD5"/)
  for (const key of [32, 100]) t.ok(close(m.pbkdf2Us(key, 100, { iterations: 1, outBytes: 32, hasher: 'SHA256' }), m.hmacSha256Us(key, 100)), `one iteration, 32 bytes, key ${key}: the HMAC`)
  // 1,000 iterations, 64 bytes out = 2 blocks; each block: the first HMAC over salt + 4, 999 over the 32-byte digest.
  const perHmac = (msg: number) => sha256Blocks(64 + msg) + sha256Blocks(96)
  t.ok(close(m.pbkdf2Us(16, 16, { iterations: 1000, outBytes: 64, hasher: 'SHA256' }), p + 2 * (perHmac(20) + 999 * perHmac(32)) * b))
  t.throws(() => m.pbkdf2Us(1, 1, { iterations: 0, outBytes: 1, hasher: 'SHA256' }), /expected iterations to be an integer >= 1, got 0/)
})

t.test('instrumented code is cached by its text and keeps what it computes', async (t) => {
  const cost = new BoardCost(new CostModel(), clock())
  const ctx = vm.createContext({})
  const counter = cost.attach(ctx)
  const src = 'var s = 0; for (var i = 0; i < 10; i++) { s += i } s'
  const a = cost.instrument(src)
  t.equal(cost.instrument(src), a, 'the same text twice: one instrumentation')
  t.equal(vm.runInContext(a, ctx), 45, 'the completion value is kept')
  t.ok(counter.u > 100, `and it counted (${counter.u} units)`)
  t.equal(new BoardCost(new CostModel('high'), clock()).instrument(src), a, 'shared by every board of the process')
})
