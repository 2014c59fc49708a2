import t from 'tap'
import { createHash, createHmac } from 'node:crypto'
import { makeBoard, FakeRegisters } from './helpers.ts'
import { BoardError } from '../../../hardware-sim/board/board.ts'
import { EspruinoCompatError } from '../../../firmware/build/syntax-gate.ts'
import { waitFor } from '../../helpers/wait.ts'

t.test('the context lacks what Espruino lacks, and keeps what it has', async (t) => {
  const { board } = makeBoard(t)
  board.load(`
    var G = globalThis;
    ['Map','Set','WeakMap','WeakSet','Symbol','BigInt','Proxy','Reflect','TextEncoder','TextDecoder','Intl','WebAssembly'].forEach(function (n) { print(n, typeof G[n]) });
    print('Array.from', typeof Array['from'], 'Array.of', typeof Array['of'], 'Uint8Array.from', typeof Uint8Array['from'], 'Float32Array.of', typeof Float32Array['of']);
    print('Number', typeof Number['isInteger'], typeof Number['isSafeInteger'], typeof Number['EPSILON'], typeof Number['MAX_SAFE_INTEGER']);
    print('Math', typeof Math['imul'], typeof Math['clz32'], typeof Math['trunc'], typeof Math['fround'], 'freeze', typeof Object['freeze']);
    print('AB.slice', typeof ArrayBuffer.prototype['slice'], 'Array.prototype.slice', typeof Array.prototype.slice, '[].slice', [].slice.call([1, 2, 3], 1).join());
    print('node', typeof G['process'].memory, typeof G['Buffer'], typeof G['setImmediate'], typeof G['module'], typeof G['exports']);
    print('has', typeof Promise, typeof DataView, typeof JSON, typeof btoa, new Uint8Array([1, 2, 3]).slice(1).length, Number('7') + 1, new Float32Array(2) instanceof Float32Array);
  `)
  const out = board.console.text()
  for (const n of ['Map', 'Set', 'WeakMap', 'WeakSet', 'Symbol', 'BigInt', 'Proxy', 'Reflect', 'TextEncoder', 'TextDecoder', 'Intl', 'WebAssembly']) t.match(out, `${n} undefined`)
  t.match(out, 'Array.from undefined Array.of undefined Uint8Array.from undefined Float32Array.of undefined')
  t.match(out, 'Number undefined undefined undefined undefined')
  t.match(out, 'Math undefined undefined undefined undefined freeze undefined')
  t.match(out, 'AB.slice undefined Array.prototype.slice undefined [].slice 2,3')
  t.match(out, 'node function undefined undefined undefined undefined')
  t.match(out, 'has function function object function 2 8 true')
})

t.test('a bundle using a forbidden feature is refused before anything runs', async (t) => {
  const { board } = makeBoard(t)
  t.throws(() => board.load('print("ran"); var o = {}; var {a} = o;'), EspruinoCompatError)
  try {
    board.load('print("ran"); const s = new Set();')
  } catch (e) {
    t.match((e as Error).message, 'Espruino cannot run this bundle: Set at 1:29')
  }
  t.notMatch(board.console.text(), 'ran')
})

t.test('timers fire in virtual-time order; uncaught errors are printed and the board keeps running', async (t) => {
  const { board } = makeBoard(t)
  board.load(`
    var n = 0;
    var iv = setInterval(function () { n++; print('tick', n, getTime()); if (n === 3) clearInterval(iv) }, 1000);
    setTimeout(function () { print('half', getTime()) }, 500);
    setTimeout(function () { throw new Error('boom') }, 1500);
    setTimeout(function (a, b) { print('args', a + b) }, 2500, 2, 3);
    setTimeout("print('string timer')", 10);
  `)
  board.advance(999)
  t.same(board.console.lines, ['string timer', 'half 0.5'])
  board.advance(10_000)
  t.same(board.console.lines.slice(2), ['tick 1 1', 'Uncaught Error: boom', 'tick 2 2', 'args 5', 'tick 3 3'])
  t.equal(board.now, 10_999)
})

t.test('promises resolve inside the callback that created them', async (t) => {
  const { board } = makeBoard(t)
  board.load(`setTimeout(function () { Promise.resolve(1).then(function (v) { print('then', v, getTime()) }) }, 100); setTimeout(function () { print('later') }, 200)`)
  board.advance(300)
  t.same(board.console.lines, ['then 1 0.1', 'later'])
})

t.test('I2C: writeTo/readFrom reach the device with virtual time; an absent device NACKs like the ESP32 port', async (t) => {
  const dev = new FakeRegisters(0x57)
  const { board } = makeBoard(t, { i2c: { I2C1: [dev] } })
  board.load(`
    I2C1.setup({ scl: D22, sda: D21, bitrate: 400000 });
    setTimeout(function () {
      I2C1.writeTo(0x57, [0x10, 1, 2], 'A', new Uint8Array([9]));
      I2C1.writeTo(0x57, 0x10);
      var r = I2C1.readFrom(0x57, 4);
      print('read', r instanceof Uint8Array, r.join(','));
      try { I2C1.writeTo(0x3c, 0) } catch (e) { print('nack', e instanceof Error, e.message) }
      try { I2C1.readFrom(0x3c, 1) } catch (e) { print('nack', e.message) }
    }, 250);
  `)
  board.advance(300)
  t.same(dev.log[0], { op: 'w', bytes: [0x10, 1, 2, 0x41, 9], at: 250 })
  t.match(board.console.text(), 'read true 1,2,65,9')
  t.match(board.console.text(), "nack true jshI2CWrite: slave doesn't ACK the transfer")
  t.match(board.console.text(), "nack jshI2CRead: slave doesn't ACK the transfer")
})

t.test('I2C: i2cRemove makes the device NACK until i2cRestore; unset-up bus fails', async (t) => {
  const dev = new FakeRegisters(0x60)
  const { board } = makeBoard(t, { i2c: { I2C1: [dev] } })
  board.load(`try { I2C1.writeTo(0x60, 0) } catch (e) { print(e.message) }
    I2C1.setup({});
    setInterval(function () { try { I2C1.writeTo(0x60, 0); print('ok') } catch (e) { print('err', e.message) } }, 100);`)
  t.match(board.console.lines[0], /^jshI2CWrite:, unknown error code 259/)
  board.advance(100)
  board.i2cRemove(0x60)
  board.advance(100)
  board.i2cRestore(0x60)
  board.advance(100)
  t.same(board.console.lines.slice(1), ['ok', "err jshI2CWrite: slave doesn't ACK the transfer", 'ok'])
})

t.test('ADC: 12-bit quantisation of 0..3.3 V on ADC pins, returned as raw/4096 like jshPinAnalog; other pins fail', async (t) => {
  const { board } = makeBoard(t, { analog: { 36: { voltage: (ms) => (ms < 1000 ? 1.65 : 5) }, 32: { voltage: () => -1 } } })
  board.load(`print(analogRead(D36) * 4096, analogRead(32) * 4096); setTimeout(function () { print(analogRead(D36) * 4096) }, 1000);
    try { analogRead(D5) } catch (e) { print(e.message) }`)
  board.advance(1000)
  t.same(board.console.lines, ['2048 0', 'Pin D5 is not an ADC pin', '4095'])
  t.throws(() => makeBoard(t, { analog: { 5: { voltage: () => 0 } } }), /expected analog sources on ADC pins/)
})

t.test('digital pins: inputs from sources, outputs to sinks with virtual time, Pin methods', async (t) => {
  const sets: Array<[boolean, number]> = []
  const { board } = makeBoard(t, { digitalIn: { 4: { level: (ms) => ms >= 50 } }, digitalOut: { 2: { set: (l, ms) => sets.push([l, ms]) } } })
  board.load(`pinMode(D2, 'output'); digitalWrite(D2, 1); print(digitalRead(D4), D2.read(), String(D2));
    setTimeout(function () { D2.reset(); print(digitalRead(D4)) }, 60);`)
  board.advance(100)
  t.same(board.console.lines, ['0 1 D2', '1'])
  t.same(sets, [[true, 0], [false, 60]])
})

t.test('crypto: SHA1/256/512 as ArrayBuffers; PBKDF2 with 1 iteration and keySize 8 equals HMAC-SHA256(key, msg || 00000001)', async (t) => {
  const { board } = makeBoard(t)
  board.load(`
    var c = require('crypto');
    function hex(ab) { return [].map.call(new Uint8Array(ab), function (b) { return (b < 16 ? '0' : '') + b.toString(16) }).join('') }
    var h = c.SHA256('abc');
    print(h instanceof ArrayBuffer, hex(h));
    print(hex(c.SHA512(new Uint8Array([1, 2, 3]))));
    print(hex(c.SHA1('abc')));
    print(hex(c.PBKDF2('key', 'message', { iterations: 1, keySize: 8, hasher: 'SHA256' })));
    print(hex(c.PBKDF2('pw', 'salt')).length);
  `)
  const l = board.console.lines
  t.equal(l[0], `true ${createHash('sha256').update('abc').digest('hex')}`)
  t.equal(l[1], createHash('sha512').update(Buffer.from([1, 2, 3])).digest('hex'))
  t.equal(l[2], createHash('sha1').update('abc').digest('hex'))
  t.equal(l[3], createHmac('sha256', 'key').update(Buffer.concat([Buffer.from('message'), Buffer.from([0, 0, 0, 1])])).digest('hex'))
  t.equal(l[4], '32', 'default keySize is 4 words = 16 bytes')
})

t.test('E helpers, Modules.addCached and require errors', async (t) => {
  const { board } = makeBoard(t)
  board.load(`
    var s = E.toString([104, 105], 'x', new Uint8Array([33]));
    print(s, s.length, E.toUint8Array('AB', [67]).join(','), E.toUint8Array('A') instanceof Uint8Array);
    Modules.addCached('adder', function () { exports.add = function (a, b) { return a + b } });
    print(require('adder').add(2, 3));
    try { require('nothere') } catch (e) { print(e.message) }
    print(E.hwRand() === E.hwRand());
  `)
  t.same(board.console.lines, ['hix! 4 65,66,67 true', '5', 'Module nothere not found', 'false'])
})

t.test('Math.random and E.hwRand repeat the same sequence after every boot', async (t) => {
  const { board } = makeBoard(t)
  const code = 'print(Math.random(), E.hwRand())'
  board.load(code)
  board.reset()
  board.load(code)
  t.equal(board.console.lines[0], board.console.lines[1])
})

t.test('clock: getTime and Date follow the virtual clock; setTime and clockSkew move the wall clock', async (t) => {
  const { board } = makeBoard(t, { clock: 1_700_000_000_000 })
  board.load(`setTimeout(function () { print(getTime(), Date.now(), new Date().getTime()) }, 2000)`)
  board.advance(2000)
  t.equal(board.console.lines[0], '1700000002 1700000002000 1700000002000')
  board.clockSkew(-500)
  board.load(`print(getTime()); setTime(100); print(getTime())`)
  t.same(board.console.lines.slice(1), ['1700000001.5', '100'])
})

t.test('bad host input is refused with clear messages', async (t) => {
  const { board } = makeBoard(t)
  t.throws(() => board.advance(-1), /expected a finite ms >= 0, got -1/)
  t.throws(() => board.load(42 as unknown as string), /expected bundle source as a string, got number|expected code as a string/)
  t.throws(() => makeBoard(t, { id: '' }), /expected options.id to be a non-empty string/)
  // Misuse of a working board is a BoardError: a second run() while one is going.
  board.load('var n = 0; setInterval(function () { n++ }, 100);')
  const running = board.run({ speed: 1 })
  const second = await board.run({ speed: 1 }).then(() => null, (e: unknown) => e)
  board.stop()
  await running
  t.type(second, BoardError)
  t.match(second, { message: 'board is already running' })
})

t.test('an unhandled promise rejection is printed, not thrown into the host', async (t) => {
  const { board } = makeBoard(t)
  board.load(`setTimeout(function () { Promise.reject(new Error('nope')) }, 10)`)
  board.advance(20)
  // The host learns of the rejection asynchronously (after its microtasks), not inside advance().
  await waitFor(() => board.console.lines.length > 0, 'the rejection on the console')
  t.same(board.console.lines, ['Uncaught (in promise) Error: nope'])
})

t.test('a uploaded bundle may not use eval to sneak in what the gate refuses', async (t) => {
  const { board } = makeBoard(t)
  board.load(`try { eval('var m = new Map()') } catch (e) { print(e.message) }`)
  t.same(board.console.lines, ['Espruino cannot run this bundle: Map at 1:13'])
})
