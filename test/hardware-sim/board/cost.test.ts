/**
 * A board whose clock charges time (VirtualBoardOptions.cost): callbacks cost what the cost
 * model says, getTime() moves inside them, timers fire late as Espruino's idle loop runs them,
 * native operations add their model time, device models see the late times.
 */
import t from 'tap'
import { makeBoard, FakeRegisters } from './helpers.ts'
import { CALIBRATION, CostModel, type NativeCosts } from '../../../hardware-sim/cost/model.ts'
import { DEFAULT_COST, type CostReport } from '../../../hardware-sim/board/board.ts'
import { Max30102, REG, MODE } from '../../../hardware-sim/devices/max30102.ts'
import type { SPIDevice } from '../../../hardware-sim/hardware.ts'

const close = (a: number, b: number, tol = 1e-6): boolean => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b))

/** 1 µs per unit and no dispatch cost: a callback's charge is its units (plus native µs). */
const unitModel = (native: Partial<NativeCosts> = {}): CostModel => new CostModel('central', { usPerUnit: 1, callbackUnits: 0, native })

function entry(r: CostReport | null, name: string): CostReport['callbacks'][number] {
  const e = r?.callbacks.find((c) => c.name === name)
  if (!e) throw new Error(`no callback ${name} in ${JSON.stringify(r?.callbacks.map((c) => c.name))}`)
  return e
}

t.test('cost is off by default: no report, time stands still in callbacks', async (t) => {
  t.equal(DEFAULT_COST, 'off')
  const { board } = makeBoard(t)
  board.load(`var d = -1; setTimeout(function () { var a = getTime(); for (var i = 0; i < 1000; i++) {} d = getTime() - a }, 5)`)
  board.advance(10)
  t.equal(board.repl('d').value, 0)
  t.equal(board.now, 10)
  t.equal(board.costReport(), null)
  t.throws(() => makeBoard(t, { cost: 'fast' as 'low' }), /expected cost 'off', 'low', 'central', 'high' or a CostModel, got "fast"/)
})

t.test('a callback running the calibration loop is charged exactly its units at the setting', async (t) => {
  const model = new CostModel('central')
  const { board } = makeBoard(t, { cost: 'central' })
  // setTimeout last: the timer counts from the moment of the call, which is the upload's whole cost.
  board.load(`function loop() { ${CALIBRATION.loop.source} }\nsetTimeout(loop, 10)`)
  const uploadUs = entry(board.costReport(), 'upload').totalUs
  board.advance(20)
  const r = board.costReport()!
  const e = entry(r, 'loop')
  t.equal(e.count, 1)
  t.equal(e.units, CALIBRATION.loop.units + CALIBRATION.callUnits, 'the loop plus one call of loop()')
  t.ok(close(e.totalUs, e.units * model.usPerUnit + model.dispatchUs()), `${e.totalUs} µs = units × ${model.usPerUnit} + dispatch`)
  t.ok(close(e.totalUs / 1e6, 8.91, 0.001), 'about 8.9 s at 90x the x86 build')
  t.ok(close(board.now, uploadUs / 1000 + 10 + e.totalUs / 1000), `the clock moved on by the charge (now ${board.now} ms)`)
  t.equal(r.setting, 'central')
  t.ok(close(r.busyUs, uploadUs + e.totalUs))
  t.ok(close(r.share, r.busyUs / 1000 / r.elapsedMs), 'share of one core over the elapsed virtual time')
  board.advance(1000)
  t.ok(close(board.costReport()!.elapsedMs, board.now), 'advance() after an overrun takes up from where the host left off')
  board.costReport({ reset: true })
  const fresh = board.costReport()!
  t.same([fresh.callbacks.length, fresh.busyUs, fresh.elapsedMs], [0, 0, 0], 'reset')
})

t.test('getTime() and Date.now() advance inside a callback by what it has cost so far', async (t) => {
  const { board } = makeBoard(t, { cost: unitModel() })
  board.load(`var out;
    setTimeout(function () {
      var a = getTime(), da = Date.now(), ua = __cost.u;
      for (var i = 0; i < 1000; i++) {}
      var b = getTime(), db = Date.now(), ub = __cost.u;
      var t0 = setTimeout(function () {}, 0);
      out = [(b - a) * 1e6, db - da, ub - ua, a];
    }, 5)`)
  board.advance(10)
  const [dUs, dMs, units, a] = board.repl('out').value as number[]
  t.ok(units! >= 10_000, `the loop counted ${units} units`)
  t.ok(close(dUs!, units!), `getTime moved ${dUs} µs: units × 1 µs`)
  t.ok(close(dMs!, units! / 1000), 'Date.now too')
  t.ok(a! > 0.005, 'the callback started at its time plus its own first statement')
  t.equal(board.repl('getTime()').value, board.wallMs / 1000, 'between callbacks getTime is the board clock')
  t.ok(board.now > 5 + units! / 1000, 'the clock moved on by the charge')
})

t.test('setInterval(4 ms): a 10 ms tick makes the next ones late, then they return to timerTime + interval', async (t) => {
  const { board } = makeBoard(t, { cost: unitModel() })
  // The first tick busy-waits 10 ms of board time; the others are cheap.
  board.load(`var starts = [], t0 = getTime() * 1000;
    setInterval(function () {
      var now = getTime() * 1000;
      starts.push(now - t0);
      if (starts.length === 1) while (getTime() * 1000 - now < 10) {}
    }, 4)`)
  board.advance(41)
  const s = board.repl('starts').value as number[]
  t.equal(s.length, 10, 'every scheduled tick ran: none dropped, none added')
  // Times from the first tick (t0 was read a few statements before setInterval was called).
  const d = s.map((x) => x - s[0]!)
  t.ok(s[0]! >= 4 && s[0]! < 4.1, `first tick on time (${s[0]})`)
  t.ok(d[1]! >= 10 && d[1]! < 10.1, `the tick due at +4 ran when the 10 ms one ended, at +${d[1]}`)
  t.ok(d[2]! > d[1]! && d[2]! - d[1]! < 0.1, `the tick due at +8 ran on the next pass of the idle loop, right after (+${d[2]})`)
  for (let k = 3; k < 10; k++) t.ok(Math.abs(d[k]! - 4 * k) < 0.01, `tick ${k + 1} back on its time +${4 * k} ms (+${d[k]!.toFixed(4)}): lateness does not accumulate`)
})

t.test('setInterval(4 ms) whose every tick costs 10 ms: ticks run back to back, each when the one before ended', async (t) => {
  const { board } = makeBoard(t, { cost: unitModel() })
  board.load(`var starts = [], t0 = getTime() * 1000;
    var id = setInterval(function () {
      var now = getTime() * 1000;
      starts.push(now - t0);
      while (getTime() * 1000 - now < 10) {}
    }, 4)`)
  board.advance(50)
  const s = board.repl('starts').value as number[]
  t.ok(close(s[0]!, 4, 0.05))
  for (let k = 1; k < s.length; k++) t.ok(s[k]! - s[k - 1]! >= 10 && s[k]! - s[k - 1]! < 10.1, `tick ${k + 1} started ${(s[k]! - s[k - 1]!).toFixed(3)} ms after the one before`)
  t.ok(s.length >= 5 && s.length <= 6, `${s.length} ticks in 50 ms, not 12`)
  const r = board.costReport()!
  t.ok(r.share > 0.9, `the core is saturated after the first 4 ms (${r.share.toFixed(2)})`)
})

t.test('timers are named by function, or by the site that set them', async (t) => {
  const { board } = makeBoard(t, { cost: unitModel() })
  board.load(`
    function sample() {}
    var P = { start: function () { setTimeout(function () { P.x = 1 }, 1) } };
    setInterval(sample, 5);
    P.start();
    setTimeout(function () { E.emit('tick') }, 2);
  `)
  board.advance(6)
  const names = board.costReport()!.callbacks.map((c) => c.name).sort()
  t.ok(names.includes('sample'), 'a named function: its name')
  t.ok(names.includes('setTimeout@start function () { P.x = 1 }'), `an anonymous one: site and text (${names.join(' | ')})`)
  t.ok(names.some((n) => /^setTimeout@upload:\d+:\d+ function \(\) \{ E\.emit\('tick'\) \}$/.test(n)), 'set at the top level: file:line:column')
  t.ok(names.includes('upload'))
})

t.test('REPL probes are instrumented but do not move the clock; boot files and eval are charged', async (t) => {
  const { board } = makeBoard(t, { cost: unitModel() })
  board.repl(`require("Storage").write(".bootcde", "var booted = 0; for (var i = 0; i < 100; i++) booted++; function f() { return eval('1 + 2') }")`)
  const before = board.now
  t.equal(board.repl('[1, 2].map(function (x) { return x * 2 }).join()').value, '2,4', 'a REPL line keeps its value')
  t.equal(board.now, before, 'a REPL line costs the board no time')
  board.boot()
  const boot = entry(board.costReport(), '.bootcde')
  t.ok(boot.units > 100 * 5, `the boot file was charged (${boot.units} units)`)
  t.ok(close(board.now, before + boot.totalUs / 1000), 'and the clock moved on by it')
  board.load(`setTimeout(function evalTimer() { f() }, 1)`)
  board.advance(5)
  const ev = entry(board.costReport(), 'evalTimer')
  t.ok(ev.units > CALIBRATION.callUnits * 2, `code run by eval is charged too (${ev.units} units)`)
})

/** Echoes each byte + 1. */
class Echo implements SPIDevice {
  transfer(tx: Uint8Array): Uint8Array {
    return tx.map((b) => (b + 1) & 0xff)
  }
}

t.test('native operations cost the model formulas: I2C, SPI, SHA-256, HMAC by PBKDF2, analogRead, Storage', async (t) => {
  const model = unitModel()
  const dev = new FakeRegisters(0x50)
  const { board } = makeBoard(t, {
    cost: model, i2c: { I2C1: [dev], I2C2: [new FakeRegisters(0x51)] }, spi: { SPI2: [{ cs: 5, device: new Echo() }] },
    analog: { 36: { voltage: () => 1.2 } },
  })
  board.load(`
    I2C1.setup({ scl: D22, sda: D21, bitrate: 400000 });
    I2C2.setup({ scl: D16, sda: D17 });
    SPI2.setup({ baud: 4000000 });
    var c = require('crypto'), S = require('Storage'), buf = new Uint8Array(97);
    var key = new Uint8Array(32), msg = new Uint8Array(100), big = new Uint8Array(600), page = new Uint8Array(300);
    setTimeout(function i2cRead() { I2C1.readFrom(0x50, 6) }, 1);
    setTimeout(function i2cWrite() { I2C1.writeTo(0x50, [1, 2, 3]) }, 2);
    setTimeout(function i2cSlow() { I2C2.readFrom(0x51, 6) }, 3);
    setTimeout(function i2cNack() { try { I2C1.readFrom(0x33, 6) } catch (e) {} }, 4);
    setTimeout(function spiSend() { SPI2.send(buf, D5) }, 5);
    setTimeout(function sha() { c.SHA256(big) }, 6);
    setTimeout(function hmac() { c.PBKDF2(key, msg, { iterations: 1, keySize: 8, hasher: 'SHA256' }) }, 7);
    setTimeout(function adc() { analogRead(D36) }, 8);
    setTimeout(function newFile() { S.write('log', page) }, 9);
    setTimeout(function eraseFile() { S.erase('log') }, 10);
  `)
  board.advance(20)
  const r = board.costReport()!
  // What each callback cost beyond its interpreter units: the native operation.
  const native = (name: string): number => {
    const e = entry(r, name)
    return e.totalUs - e.units * model.usPerUnit
  }
  const call = model.nativeCallUs()
  t.ok(close(native('i2cRead'), call + model.i2cUs(6, 400_000)), `I2C read of 6 bytes at 400 kHz: ${native('i2cRead')} µs`)
  t.ok(close(native('i2cWrite'), call + model.i2cUs(3, 400_000)), 'I2C write of 3 bytes')
  t.ok(close(native('i2cSlow'), call + model.i2cUs(6, 100_000)), 'I2C at the default 100 kHz')
  t.ok(close(native('i2cNack'), call + model.i2cUs(0, 400_000)), 'a NACK costs the address phase')
  t.ok(close(native('spiSend'), call + model.spiUs(97, 4e6)), 'SPI send of 97 bytes at 4 MHz')
  t.ok(close(native('sha'), call + model.sha256Us(600)), 'SHA-256 of 600 bytes')
  t.ok(close(native('hmac'), call + model.hmacSha256Us(32, 100)), 'HMAC-SHA256 through PBKDF2')
  t.ok(close(native('adc'), model.analogReadUs()), 'analogRead')
  const used = 0 // a fresh Storage area: the file goes at address 0
  t.ok(close(native('newFile'), call + model.flashWriteUs(32 + 300, used)), 'a new 300-byte file: header and data programmed')
  t.ok(close(native('eraseFile'), call + model.flashWriteUs(28, 4)), 'erase: the name zeroed, one program')
  // Two reads in one callback: the device sees the second one start when the first has ended.
  board.load(`setTimeout(function twoReads() { I2C1.readFrom(0x50, 6); I2C1.readFrom(0x50, 6) }, 1)`)
  board.advance(2)
  const [a1, a2] = dev.log.filter((l) => l.op === 'r').slice(-2).map((l) => l.at)
  const first = (call + model.i2cUs(6, 400_000)) / 1000
  t.ok(a2! - a1! >= first && a2! - a1! < first + 0.02, `the second read started ${(a2! - a1!).toFixed(4)} ms after the first (its ${first} ms and a statement)`)
})

t.test('a MAX30102 drained late by a long callback overflows (OVF_COUNTER), and not without the cost', async (t) => {
  const drain = `
    I2C1.setup({ scl: D22, sda: D21, bitrate: 400000 });
    function w(reg, v) { I2C1.writeTo(0x57, [reg, v]) }
    function r(reg, n) { I2C1.writeTo(0x57, reg); return I2C1.readFrom(0x57, n) }
    w(${REG.FIFO_CONFIG}, 0); w(${REG.SPO2_CONFIG}, ${(1 << 5) | (1 << 2) | 3}); w(${REG.LED1_PA}, 35); w(${REG.LED2_PA}, 35);
    w(${REG.FIFO_WR_PTR}, 0); w(${REG.OVF_COUNTER}, 0); w(${REG.FIFO_RD_PTR}, 0); w(${REG.MODE_CONFIG}, ${MODE.SPO2});
    var ovf = 0, got = 0;
    setInterval(function () {
      var p = r(${REG.FIFO_WR_PTR}, 3), n = (p[0] - p[2]) & 31;
      if (p[1] > 0 && n === 0) n = 32;
      ovf += p[1];
      if (n) { r(${REG.FIFO_DATA}, n * 6); got += n }
    }, 100);
    // Something else holds the interpreter for half a second (50,000 iterations of 10 units at 1 µs each) (a 32-sample FIFO at 100 sps lasts 320 ms).
    setTimeout(function hog() { for (var i = 0; i < 50000; i++) {} }, 250);
  `
  const run = (cost: 'off' | CostModel): { ovf: number; got: number } => {
    const ppg = new Max30102({ source: { light: () => ({ red: 0.3, ir: 0.4, ambient: 0 }), fingerOn: () => true }, noiseNa: 0 })
    const { board } = makeBoard(t, { cost, i2c: { I2C1: [ppg] } })
    board.load(drain)
    board.advance(2000)
    const [ovf, got] = board.repl('[ovf, got]').value as number[]
    return { ovf: ovf!, got: got! }
  }
  const off = run('off')
  t.equal(off.ovf, 0, 'no cost: the hog takes no time, every sample is drained')
  const on = run(unitModel())
  t.ok(on.ovf > 0, `with the cost: the FIFO overflowed while the hog ran (OVF_COUNTER ${on.ovf})`)
  t.ok(on.got < off.got, `fewer samples drained (${on.got} against ${off.got})`)
})

t.test('run() with the cost on: overdue timers still run, and the run ends', async (t) => {
  const { board } = makeBoard(t, { cost: unitModel() })
  board.load(`var n = 0; setInterval(function () { n++; var t = getTime(); while (getTime() - t < 0.006) {} }, 4)`)
  await board.run({ speed: Infinity, until: 200 })
  const n = board.repl('n').value as number
  t.ok(n >= 30 && n <= 34, `${n} ticks of 6 ms in 200 ms`)
  t.ok(board.now >= 200 && board.now < 210)
})
