import t from 'tap'
import vm from 'node:vm'
import { instrument, countTokens } from '../../../hardware-sim/cost/instrument.ts'
import { CALIBRATION } from '../../../hardware-sim/cost/model.ts'

/** Runs `code` in a fresh context with a counter; returns the script's completion value and the units. */
function run(code: string, extra: Record<string, unknown> = {}): { value: unknown; units: number } {
  const ctx = vm.createContext({ __cost: { u: 0, h: [] }, ...extra })
  const value = vm.runInContext(code, ctx)
  return { value, units: (ctx.__cost as { u: number }).u }
}

/** Units a snippet costs when run instrumented with the given settings. */
function unitsOf(src: string, callUnits = 0, skipWeight = 0): number {
  return run(instrument(src, { callUnits, skipWeight }).code).units
}

t.test('countTokens counts lexical tokens, not comments or whitespace', async (t) => {
  t.equal(countTokens('a = 1;'), 4)
  t.equal(countTokens('for(var i=0;i<100000;i++){i=i;}'), 20)
  t.equal(countTokens('/* c */ x // d\n'), 1)
  t.equal(countTokens('f(a, "s", 1.5)'), 8)
  t.equal(countTokens('a.b[c] += 2', 0, 6), 6, 'a range: a . b [ c ]')
})

t.test('hand-counted charges for small snippets', async (t) => {
  // Statements: every token of the statement, `;` included.
  t.equal(unitsOf('a = 1;'), 4)
  t.equal(unitsOf('var a = 1, b = a + 2;'), 11)
  // A block charges its braces; its statements charge themselves.
  t.equal(unitsOf('{ a = 1; b = 2; }'), 2 + 4 + 4)
  // if: `if ( c )` and `else` (5), then the branch taken: braces 2 + `x = 1;` 4. At skip
  // weight 0 the branch not taken costs nothing...
  t.equal(unitsOf('var c = 1; if (c) { x = 1; } else { y = 2; }'), 5 + 5 + 6)
  t.equal(unitsOf('var c = 0; if (c) { x = 1; } else { y = 2; }'), 5 + 5 + 6)
  // ...at 0.5 it costs half its 6 tokens, charged in the branch that runs, or by an added else.
  t.equal(unitsOf('var c = 1; if (c) { x = 1; } else { y = 2; }', 0, 0.5), 5 + 5 + 6 + 3)
  t.equal(unitsOf('var c = 0; if (c) { x = 1; }', 0, 0.5), 5 + 4 + 3)
  // A function declaration: `function f ( )` 4, its body (6 tokens with braces) at the skim
  // weight; a call `f();` 4; at entry the call units and the body's statements.
  t.equal(unitsOf('function f() { x = 1; } f();', 10, 0), 4 + 4 + 10 + 4)
  t.equal(unitsOf('function f() { x = 1; } f();', 10, 0.5), 4 + 3 + 4 + 10 + 4)
  // return skims the rest of the function: `x = 2; y = 3;` 8 tokens at weight 1.
  t.equal(unitsOf('function g() { return 1; x = 2; y = 3; } g();', 0, 1), 4 + 13 + 4 + 3 + 8)
  // Arrow expression bodies: `var h = x => x + 1 ;` 9 tokens with the body (3) at weight 0;
  // each call re-parses the body: call units 5 + 3.
  t.equal(unitsOf('var h = x => x + 1; h(2);', 5, 0), 6 + 5 + (5 + 3))
  // while: `while ( test )` once, then per iteration test + 2, braces 2, `n--;` 3.
  t.equal(unitsOf('var n = 3; while (n) { n--; }'), 5 + 4 + 3 * (1 + 2 + 2 + 3))
  // do-while: `do` once; per iteration test + 3 (`while ( )`), braces 2, `n--;` 3.
  t.equal(unitsOf('var n = 2; do { n--; } while (n)'), 5 + 1 + 2 * (1 + 3 + 2 + 3))
  // for..of: the header `for ( var v of [ 1 , 2 ] )` 11 once (body skim at weight 0), then
  // `)` + braces 2 + `s += v;` 4 per element.
  t.equal(unitsOf('var s = 0; for (var v of [1, 2]) { s += v; }'), 5 + 11 + 2 * (1 + 2 + 4))
})

t.test('the calibration loop costs exactly CALIBRATION.loop.units', async (t) => {
  const r = instrument(CALIBRATION.loop.source)
  t.equal(run(r.code).units, CALIBRATION.loop.units)
  t.equal(CALIBRATION.loop.units, 12.5 + 100_000 * 14, 'header 12 + skimmed update 0.5; 14 per iteration')
})

t.test('loop charges scale with iterations', async (t) => {
  const cost = (n: number): number => unitsOf(`var s = 0; for (var i = 0; i < ${n}; i++) { s += i; }`, 40, 0.25)
  const base = cost(0)
  const per = cost(1) - base
  t.equal(per, 3 + 2 + 3 + 2 + 4, 'test 3 + update 2 + 3 separators + braces 2 + `s += i;` 4')
  for (const n of [10, 100, 1000]) t.equal(cost(n), base + n * per)
  const calls = (n: number): number => unitsOf(`function f(){} for (var i = 0; i < ${n}; i++) f();`, 40, 0)
  t.equal(calls(10) - calls(0), 10 * (3 + 2 + 3 + 4 + 40), 'each call adds its tokens and the call units')
})

t.test('instrumenting is deterministic', async (t) => {
  const src = 'function f(a){ if (a) { return a * 2 } for (let i = 0; i < 3; i++) a += i; return a }\nvar o = { get x() { return 1 }, m: () => 2 }'
  const a = instrument(src)
  const b = instrument(src)
  t.equal(a.code, b.code)
  t.same(a.sites, b.sites)
  t.equal(run(a.code).units, run(b.code).units)
  t.ok(a.sites.every((s) => s.line >= 1 && s.column >= 0 && s.units > 0))
  t.same(a.sites.filter((s) => s.kind === 'entry').map((s) => s.fn), ['f', 'get x', 'm'])
})

/** Snippets whose completion value must be the same instrumented or not. */
const TRICKY: Record<string, string> = {
  labels: `var out = []; outer: for (var i = 0; i < 3; i++) { for (var j = 0; j < 3; j++) { if (j == 1) continue outer; if (i == 2) break outer; out.push(i + '' + j) } } out.join()`,
  labelledBlock: `var r = 0; blk: { r = 1; if (r) break blk; r = 2 } r`,
  labelledLoopNoBraces: `var n = 0; a: b: for (var i = 0; i < 5; i++) for (;;) { n++; continue a } n`,
  forLet: `var fs = []; for (let i = 0; i < 3; i++) fs.push(() => i); fs.map(f => f()).join()`,
  forLetBody: `var gs = []; for (let i = 0; i < 3; i++) { let j = i * 2; gs.push(function () { return i + j }) } gs.map(g => g()).join()`,
  arrows: `var f = (a, b) => a + b, g = x => ({ v: x }), h = a => b => a * b, q = x => (x++, x * 2); [f(1, 2), g(3).v, h(2)(5), q(4)].join()`,
  ifChains: `function s(x) { if (x > 0) return 'p'; else if (x < 0) return 'n'; else return 'z' } [s(1), s(-1), s(0)].join()`,
  danglingElse: `function d(a, b) { var r = 'none'; if (a) if (b) r = 'ab'; else r = 'a!b'; return r } [d(1, 1), d(1, 0), d(0, 1)].join()`,
  directive: `(function () { 'use strict'; try { undeclared = 1; return 'sloppy' } catch (e) { return e instanceof ReferenceError } })()`,
  directiveThis: `function st() { 'use strict'; 'another'; return this } st() === undefined`,
  comma: `var a = 0, b = (a++, a++, a); [a, b].join()`,
  getSet: `var o = { _v: 1, get v() { return this._v * 2 }, set v(x) { this._v = x } }; o.v = 5; o.v`,
  classes: `class A { constructor(x) { this.x = x } get d() { return this.x * 2 } static m() { return 'M' } } class B extends A { constructor() { super(3); this.y = 1 } get d() { return super.d + 1 } } var b = new B(); [b.d, A.m(), b.y].join()`,
  doWhile: `var i = 0, n = 0; do n += i; while (++i < 5); while (i > 0) i--; [n, i].join()`,
  switchFall: `function sw(x) { var r = []; switch (x) { case 1: r.push(1); case 2: r.push(2); break; default: r.push('d'); case 3: r.push(3) } return r.join('') } [sw(1), sw(2), sw(3), sw(9)].join()`,
  tryFinally: `function tf() { var log = []; try { log.push('t'); throw new Error('x') } catch (e) { log.push('c:' + e.message); return log } finally { log.push('f') } } tf().join()`,
  asi: `var x = 1\nvar y = x\n++x\nlet k = x\nk++\n;[x, y, k].join()`,
  forIn: `var ob = { a: 1, b: 2 }, ks = []; for (var k in ob) ks.push(k); var s = 0; for (const v of [1, 2, 3]) s += v; ks.join() + s`,
  recursion: `function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) } fib(15)`,
  emptyBodies: `for (var i = 0; i < 3; i++); while (false); if (1); else; i`,
  completionIf: `var z = 7; z; if (false) z = 1`,
  completionLoop: `var w = 3; while (w) w--`,
  completionDecl: `var v = 'kept'; v; var other = 1; function f() {}`,
  templates: "var m = 'a1b22'.match(/\\d+/g); `x${m.length}y${m[1]}`",
  hoisting: `function h() { return g(); function g() { return 'g' } } h()`,
  generators: `function* gen() { yield 1; yield 2 } [...gen()].join()`,
  errors: `var c = []; try { (function () { null.x })() } catch (e) { c.push(e instanceof TypeError) } try { throw 5 } catch (e) { c.push(e) } c.join()`,
  args: `function A() { return arguments.length } A(1, 2, 3)`,
  nestedBreak: `var r = []; for (var i = 0; i < 4; i++) { switch (i) { case 1: continue; case 3: break; default: r.push(i) } if (i == 3) break; r.push('e' + i) } r.join()`,
  staticBlock: `class S { static x = 1; static { S.x += 1 } } S.x`,
  arrowMakesFunction: `var mk = x => function () { return x * 2 }, mk2 = x => y => function () { var z = x + y; return () => z }; mk(4)() + mk2(1)(2)()()`,
  objectMethods: `var o2 = { n: 2, twice() { return this.n * 2 }, ['comp' + 'uted']: 1 }; o2.twice() + o2.computed`,
}

t.test('instrumented snippets behave exactly like the originals', async (t) => {
  for (const [name, src] of Object.entries(TRICKY)) {
    const plain = run(src).value
    for (const opts of [{}, { skipWeight: 0 }, { profile: true }]) {
      const r = instrument(src, opts)
      const out = run(r.code)
      t.same(out.value, plain, `${name} ${JSON.stringify(opts)}`)
      t.ok(out.units > 0, `${name} charged`)
    }
  }
})

t.test('statement bodies get braces, labels keep their loops, directives stay first', async (t) => {
  // `if ( a )` + `else` 5; `b();` 4 + the skimmed `c()` 3 x 0.25; `c()` 3 + the skimmed `b();` 4 x 0.25.
  t.equal(instrument('if (a) b(); else c()', { callUnits: 0 }).code, 'var __cost$=(__cost.u+=5);if (a) {var __cost$=(__cost.u+=4.75);b();} else {var __cost$=(__cost.u+=4);c()}')
  const lab = instrument('function f(){ L: for (;;) { break L } }').code
  t.match(lab, /__cost\$c\.u\+=[\d.]+;L: for \(;;\)/, 'the charge goes before the label')
  const dir = instrument('function f(){ "use strict"; return 1 }').code
  t.match(dir, /\{ "use strict";var __cost\$c=__cost; __cost\$c\.u\+=/, 'the directive prologue is untouched; the counter gets a local alias after it')
  const arrow = instrument('var f = () => ({ a: 1 })').code
  t.match(arrow, /=> \(\(__cost\.u\+=[\d.]+,\{ a: 1 \}\)\)/)
  t.throws(() => instrument('var x = ;'), SyntaxError)
  t.throws(() => instrument('x', { counter: 'not valid' }), TypeError)
})

t.test('profiling counts executions per site', async (t) => {
  const r = instrument('function f(){ return 1 } for (var i = 0; i < 5; i++) f()', { profile: true })
  const ctx = vm.createContext({ __cost: { u: 0, h: [] as number[] } })
  vm.runInContext(r.code, ctx)
  const h = (ctx.__cost as { h: number[] }).h
  const entry = r.sites.find((s) => s.kind === 'entry' && s.fn === 'f')!
  t.equal(h[entry.id], 5)
  const total = r.sites.reduce((s, x) => s + (h[x.id] ?? 0) * x.units, 0)
  t.equal(total, (ctx.__cost as { u: number }).u, 'per-site counts add up to the counter')
})
