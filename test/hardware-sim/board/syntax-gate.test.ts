import t from 'tap'
import { checkEspruinoCompat, assertEspruinoCompat, EspruinoCompatError } from '../../../firmware/build/syntax-gate.ts'

/** One bundle per forbidden construct: [feature named in the message, source, line:col]. */
const FORBIDDEN: Array<[string, string, string]> = [
  ['destructuring', 'var x = 1;\nvar o = {a: 1};\nconst {a} = o;', '3:7'],
  ['destructuring', 'function f(p) {\n  var [a, b] = p; return a + b }', '2:7'],
  ['destructuring', 'function f({a}) { return a }', '1:12'],
  ['destructuring', 'var a, b; [a, b] = [1, 2];', '1:11'],
  ['destructuring', 'for (const [k, v] of [[1, 2]]) print(k, v);', '1:12'],
  ['destructuring', 'try { x() } catch ({message}) { print(message) }', '1:20'],
  ['spread', 'var a = [1]; var b = [...a];', '1:23'],
  ['spread', 'function f() {} var a = [1]; f(...a);', '1:32'],
  ['spread', 'var o = {a: 1}; var p = {...o};', '1:26'],
  ['rest parameters', 'function f(...args) { return args }', '1:12'],
  ['default parameters', 'function f(a = 1) { return a }', '1:12'],
  ['default parameters', 'var f = (a, b = 2) => a + b;', '1:13'],
  ['exponent operator **', 'var x = 2 ** 8;', '1:9'],
  ['exponent assignment **=', 'var x = 2; x **= 3;', '1:12'],
  ['optional chaining ?.', 'var o = {}; var y = o?.a;', '1:21'],
  ['optional chaining ?.', 'var o = {}; o.f?.();', '1:13'],
  ['computed keys', 'var k = "a"; var o = {[k]: 1};', '1:23'],
  ['async functions', 'async function f() { return 1 }', '1:1'],
  ['await', 'var f = async () => { await 1 };', '1:23'],
  ['generators', 'function* g() { yield 1 }', '1:1'],
  ['labelled statements', 'outer: for (var i = 0; i < 3; i++) { break outer }', '1:1'],
  ['tagged templates', 'function tag(s) { return s } var x = tag`a${1}`;', '1:38'],
  ['class extends Error', 'class MyErr extends Error {}', '1:1'],
  ['class extends TypeError', 'var C = class extends TypeError {};', '1:9'],
  ['TypeScript __extends helper', 'var __extends = (this && this.__extends) || function (d, b) { d.prototype = b.prototype };', '1:5'],
  ['Map', 'var m = new Map();', '1:13'],
  ['Set', 'var s = new Set([1]);', '1:13'],
  ['WeakMap', 'var w = new WeakMap();', '1:13'],
  ['WeakSet', 'var w = new WeakSet();', '1:13'],
  ['Symbol', 'var s = Symbol("x");', '1:9'],
  ['BigInt', 'var b = BigInt(1);', '1:9'],
  ['BigInt literal', 'var b = 123n;', '1:9'],
  ['Proxy', 'var p = new Proxy({}, {});', '1:13'],
  ['Reflect', 'var k = Reflect.ownKeys({});', '1:9'],
  ['TextEncoder', 'var e = new TextEncoder();', '1:13'],
  ['TextDecoder', 'var d = new TextDecoder();', '1:13'],
  ['Array.from', 'var a = Array.from("ab");', '1:9'],
  ['Array.of', 'var a = Array.of(1, 2);', '1:9'],
  ['Uint8Array.from', 'var a = Uint8Array.from([1]);', '1:9'],
  ['Float32Array.of', 'var a = Float32Array.of(1);', '1:9'],
  ['Number.isInteger', 'var ok = Number.isInteger(3);', '1:10'],
  ['Number.isSafeInteger', 'var ok = Number.isSafeInteger(3);', '1:10'],
  ['Number.EPSILON', 'var e = Number.EPSILON;', '1:9'],
  ['Number.MAX_SAFE_INTEGER', 'var m = Number.MAX_SAFE_INTEGER;', '1:9'],
  ['Math.imul', 'var x = Math.imul(3, 4);', '1:9'],
  ['Math.clz32', 'var x = Math.clz32(3);', '1:9'],
  ['Math.trunc', 'var x = Math.trunc(3.5);', '1:9'],
  ['Math.fround', 'var x = Math.fround(3.5);', '1:9'],
  ['Object.freeze', 'var o = Object.freeze({});', '1:9'],
]

for (const [feature, src, at] of FORBIDDEN) {
  t.test(`refuses ${feature}: ${src.replace(/\n/g, ' ')}`, async (t) => {
    const v = checkEspruinoCompat(src)
    t.ok(v.some((x) => x.feature === feature && `${x.line}:${x.column}` === at), `${feature} at ${at} in ${JSON.stringify(v)}`)
    let err: unknown
    try { assertEspruinoCompat(src) } catch (e) { err = e }
    t.ok(err instanceof EspruinoCompatError, 'throws EspruinoCompatError')
    t.match((err as Error).message, `Espruino cannot run this bundle: `)
    t.match((err as Error).message, `${feature} at ${at}`)
  })
}

t.test('the error lists every violation with its position', async (t) => {
  const src = 'var a = 1;\nvar o = {};\nconst {b} = o;\nvar m = new Map();\nvar x = 2 ** 3;'
  t.throws(() => assertEspruinoCompat(src), { message: 'Espruino cannot run this bundle: destructuring at 3:7, Map at 4:13, exponent operator ** at 5:9' })
})

t.test('a realistic bundle with the features Espruino has is accepted', async (t) => {
  const src = `
(function () {
  "use strict";
  class Ring {
    constructor(n) { this.buf = new Float32Array(n); this.i = 0 }
    get size() { return this.buf.length }
    static make(n) { return new Ring(n) }
    push(v) { this.buf[this.i++ % this.buf.length] = v }
  }
  class Base { hello() { return 'base' } }
  class Derived extends Base { hello() { return 'derived ' + super.hello() } }
  const r = Ring.make(8);
  let total = 0;
  for (const x of [1, 2, 3]) { r.push(x); total += x }
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat32(0, 1.5);
  const u8 = new Uint8Array(4).subarray(1, 3);
  const label = \`total=\${total} size=\${r.size}\`;
  const fallback = r.missing ?? 42;
  const args = [].slice.call([1, 2, 3], 1);
  const p = new Promise((resolve) => resolve(1)).then((v) => v + 1);
  const o = { total, label, fn() { return this.total } };
  const k = 'label'; const picked = o[k];
  let Map = function () {}; new Map();  // a bundle may declare its own names
  try { JSON.parse('{') } catch (e) { print(e.message) } finally { total = 0 }
  const obj = Object.assign({}, { a: 1 }); Object.keys(obj).forEach((n) => print(n));
  setInterval(() => print(new Derived().hello(), fallback, u8.length, args, picked, p), 1000);
})();
`
  t.same(checkEspruinoCompat(src), [])
  t.doesNotThrow(() => assertEspruinoCompat(src))
})

t.test('a parse error is reported, not thrown', async (t) => {
  const v = checkEspruinoCompat('var x = ;')
  t.equal(v.length, 1)
  t.match(v[0].feature, /^syntax error/)
  t.equal(v[0].line, 1)
})

t.test('bad input is refused with a clear message', async (t) => {
  t.throws(() => checkEspruinoCompat(42 as unknown as string), { message: 'expected bundle source as a string, got number' })
})
