/**
 * Out of memory on the virtual board is what it is on the Espruino interpreter: an interrupt,
 * not an exception (src/jsvar.c jsvNewWithFlags -> jspSetInterrupted; src/jsinteractive.c).
 * The callback is abandoned where the allocation failed, `catch` and `finally` included; the
 * idle loop reports it; an interrupted interval is removed; the board keeps running, and later
 * callbacks run when memory is there for them. squeezeMemory() is the fault hook.
 */
import t from 'tap'
import { makeBoard } from './helpers.ts'

t.test('an allocation that does not fit abandons the callback: no catch, no finally, no statement after it', async (t) => {
  const { board } = makeBoard(t)
  board.load(`
    function fill() { return new Uint8Array(300000) }
    setTimeout(function () {
      print('before');
      try { fill(); print('marker: after the allocation') } catch (e) { print('marker: caught', e) } finally { print('marker: finally') }
      print('marker: after try');
    }, 10);
    setTimeout(function () { print('later callback runs') }, 20);
  `)
  board.advance(100)
  t.same(board.console.lines, [
    'before',
    'ERROR: Out of Memory!',
    'Execution Interrupted during event processing.',
    'New interpreter error: LOW_MEMORY,MEMORY',
    'later callback runs',
  ])
  t.equal(board.memory().interrupts, 1, 'the board counts the interrupt')
})

t.test('a catch in an outer function does not see it either; a second interrupt prints no second Out of Memory (JSERR_MEMORY is sticky)', async (t) => {
  const { board } = makeBoard(t)
  board.load(`
    function inner() { var b = new Uint8Array(400000); return b.length }
    function outer() { try { return inner() } catch (e) { print('marker: caught'); return -1 } }
    setTimeout(function () { print('got', outer()) }, 10);
    setTimeout(function () { print('got', outer()) }, 20);
  `)
  board.advance(100)
  t.same(board.console.lines, [
    'ERROR: Out of Memory!', 'Execution Interrupted during event processing.', 'New interpreter error: LOW_MEMORY,MEMORY',
    'Execution Interrupted during event processing.',
  ])
  t.equal(board.memory().interrupts, 2)
})

t.test('an interrupted interval is removed, as Espruino removes it; other timers keep firing', async (t) => {
  const { board } = makeBoard(t)
  board.load(`
    var n = 0;
    setInterval(function () { n++; if (n === 3) new Uint8Array(300000); print('tick', n) }, 100);
    setInterval(function () { print('other') }, 250);
  `)
  board.advance(600)
  t.same(board.console.lines, [
    'tick 1', 'tick 2', 'other',
    'ERROR: Out of Memory!', 'ERROR: Ctrl-C while processing interval - removing it.', 'Execution Interrupted during event processing.',
    'New interpreter error: CALLBACK,LOW_MEMORY,MEMORY',
    'other',
  ])
})

t.test('squeezeMemory: while it lasts an allocation above the free vars interrupts; afterwards allocations succeed again', async (t) => {
  const { board } = makeBoard(t)
  board.load(`
    var made = 0;
    setInterval(function () { var a = new Uint8Array(2000); made++; a[0] = made }, 1000);
    setInterval(function () { print('status', made) }, 5000);
  `)
  board.advance(3000)
  board.squeezeMemory({ freeVars: 60, forMs: 10_000 })
  t.equal(board.memory().squeezedFree !== null && board.memory().squeezedFree! <= 60, true, 'memory() reports the squeeze')
  // The 2000-byte buffer needs 2 + 1 + 143 JsVars: more than the 60 free.
  board.advance(1000)
  t.equal(board.memory().interrupts, 1, 'the first allocation in the squeeze interrupted its callback')
  t.match(board.console.text(), 'ERROR: Ctrl-C while processing interval - removing it.')
  // The allocating interval is gone (Espruino removes it); a new one runs once the squeeze is over.
  board.advance(10_000)
  t.equal(board.memory().squeezedFree, null, 'squeeze over')
  board.load(`setInterval(function () { var a = new Uint8Array(2000); made++; a[0] = made }, 1000);`)
  board.advance(3000)
  t.same(board.console.lines.filter((l) => l.startsWith('status')), ['status 3', 'status 3', 'status 3'], 'the status timer kept running through the squeeze')
  board.load(`print('made', made)`)
  t.equal(board.console.lines[board.console.lines.length - 1], 'made 6', 'allocations succeed again after the squeeze')
})

t.test('a scope lives as long as a function made in it, with every variable: a buffer no closure uses still counts', async (t) => {
  const { board } = makeBoard(t)
  board.load(`var base = process.memory().usage;
    var f = (function () { var big = new Uint8Array(7000); var unused = 'x'; return function () { return 1 } })();
    var held = process.memory().usage - base;`)
  await board.collect()
  board.load(`print(held >= 500, process.memory().usage - base >= 500); f = undefined;`)
  t.equal(board.console.lines[0], 'true true', 'Espruino keeps the whole scope while f exists (V8 alone would have dropped the buffer)')
  await board.collect()
  board.load(`print(process.memory().usage - base < 100)`)
  t.equal(board.console.lines[1], 'true', 'released with the last function made in the scope')
})

t.test('code sent to RAM costs its text in every function; from Storage it stays in flash', async (t) => {
  const fns = Array.from({ length: 20 }, (_, i) => `function f${i}(a, b) { var s = 'some code that takes room ${i}'; return a + b + s.length }`).join('\n')
  const code = `(function () {\n${fns}\nglobalThis.keep = [${Array.from({ length: 20 }, (_, i) => `f${i}`).join(',')}];\n})();`
  const ram = makeBoard(t).board
  ram.load(code)
  await ram.collect()
  const flash = makeBoard(t).board
  flash.load(`require('Storage').write('.bootcde', ${JSON.stringify(code)})`)
  flash.boot()
  await flash.collect()
  const bodies = 20 * (1 + Math.ceil(70 / 14))
  const diff = ram.memory().usage - flash.memory().usage
  t.ok(diff >= bodies * 0.8 && diff <= bodies * 1.3, `RAM costs the function bodies (flat strings, ~${bodies} JsVars) more than flash: ${diff}`)
  t.ok(ram.memory().code > flash.memory().code * 4, `code vars: RAM ${ram.memory().code}, flash ${flash.memory().code}`)
})

t.test("E.on('errorFlag') hears the new flags before they are printed, once", async (t) => {
  const { board } = makeBoard(t)
  board.load(`
    E.on('errorFlag', function (flags) { print('flags', flags.join('+')) });
    setTimeout(function () { new Uint8Array(300000) }, 10);
    setTimeout(function () { new Uint8Array(300000) }, 20);
  `)
  board.advance(100)
  t.same(board.console.lines, [
    'ERROR: Out of Memory!', 'Execution Interrupted during event processing.', 'flags LOW_MEMORY+MEMORY', 'New interpreter error: LOW_MEMORY,MEMORY',
    'Execution Interrupted during event processing.',
  ])
})
