import t from 'tap'
import v8 from 'node:v8'
import vm from 'node:vm'
import { makeBoard } from './helpers.ts'
import { BoardError } from '../../../hardware-sim/board/board.ts'

t.test('a buffer that cannot fit on an ESP32 interrupts the code: no catch sees it, nothing after it runs', async (t) => {
  const { board } = makeBoard(t)
  board.load(`try { var big = new Uint8Array(300000); print('allocated') } catch (e) { print('caught', e.message) } finally { print('finally') }
    print('after');`)
  t.same(board.console.lines, ['ERROR: Out of Memory!', 'Execution Interrupted', 'New interpreter error: LOW_MEMORY,MEMORY'])
  board.load(`var ok = new Uint8Array(20000); print('20 KB ok', ok.length);`)
  t.equal(board.console.lines[3], '20 KB ok 20000', 'the next upload runs: memory was there for it')
})

t.test('a bundle whose code alone would not fit is refused and does not run', async (t) => {
  const { board } = makeBoard(t)
  const filler = 'function big() { return "' + 'x'.repeat(200_000) + '" } print("ran");'
  t.throws(() => board.load(filler), BoardError)
  t.throws(() => board.load(filler), /Out of Memory!: upload needs 20\d+ JsVars for its code/)
  t.notMatch(board.console.text(), 'ran')
})

t.test('process.memory() reports usage that grows with the program state and shrinks when it is dropped', async (t) => {
  const { board } = makeBoard(t)
  t.ok(board.memory().usage < 400, `idle usage ${board.memory().usage}`)
  board.load(`var m0 = process.memory(); var keep = new Uint8Array(12000); var m1 = process.memory();
    var small = []; for (var i = 0; i < 40; i++) small.push('a string of some length ' + i);
    var m2 = process.memory(); small = undefined; var m3 = process.memory();
    print(m0.total, m1.usage - m0.usage >= 12000 / 14, m2.usage - m1.usage >= 80, m3.usage < m2.usage, m0.free + m0.usage === m0.total);`)
  t.equal(board.console.lines[0], '16383 true true true true')
  t.equal(board.memory().total, 16383)
})

t.test('a queue that only a closure holds runs out of memory while appending; a leaking board then fails every callback', async (t) => {
  const { board } = makeBoard(t)
  board.load(`(function () {
    var queue = [];
    setInterval(function () { for (var i = 0; i < 500; i++) queue.push({ seq: i, t: 1.5 }); }, 100);
    setInterval(function () { print('still alive') }, 2000);
  })();`)
  board.advance(10_000)
  const text = board.console.text()
  t.match(text, 'ERROR: Out of Memory!')
  t.match(text, 'ERROR: Ctrl-C while processing interval - removing it.\nExecution Interrupted during event processing.', 'the interval that ran out is removed')
  t.notMatch(text, 'still alive', 'with no free JsVars no callback can run')
  t.ok(board.memory().usage > 16_000)
})

t.test('the firmware cannot catch running out of memory while appending: the rest of the callback never runs', async (t) => {
  const { board } = makeBoard(t)
  board.load(`(function () {
    var queue = [];
    setTimeout(function () {
      try { for (var i = 0; i < 100000; i++) queue.push({ seq: i, t: 1.5 }) } catch (e) { print('caught', e.message); queue = [] }
      print('after the loop');
    }, 100);
  })();`)
  board.advance(1_000)
  t.same(board.console.lines, ['ERROR: Out of Memory!', 'Execution Interrupted during event processing.', 'New interpreter error: LOW_MEMORY,MEMORY'])
  t.equal(board.memory().interrupts, 1, 'counted')
})

t.test('a smaller budget is honoured (memoryVars option)', async (t) => {
  const { board } = makeBoard(t, { memoryVars: 2000 })
  board.load(`print(process.memory().total); new Uint8Array(30000)`)
  t.same(board.console.lines, ['2000', 'ERROR: Out of Memory!', 'Execution Interrupted', 'New interpreter error: LOW_MEMORY,MEMORY'])
})

t.test('E.getSizeOf follows the JsVar model', async (t) => {
  const { board } = makeBoard(t)
  board.load(`print(E.getSizeOf([1, 2, 3]), E.getSizeOf({ a: 1 }), E.getSizeOf(new Uint8Array(120)), E.getSizeOf('x'))`)
  t.equal(board.console.lines[0], '4 2 12 2')
})

t.test('garbage of every board in the process stops counting within a few event-loop turns of one collection', async (t) => {
  // V8 runs one FinalizationRegistry's cleanup per turn of a busy loop (a fleet always has
  // work queued): with a registry per board, a collection released one board's garbage per
  // turn, and a 1,000-board fleet counted freed buffers for minutes. 40 boards, one
  // collection, a loop kept busy with setImmediate: all are back at their baseline in 5 turns.
  const boards = Array.from({ length: 40 }, () => makeBoard(t).board)
  const base = boards.map((b) => b.memory().usage)
  for (const b of boards) b.load(`(function () { for (var i = 0; i < 20; i++) new Uint8Array(600) })()`)
  t.ok(boards.every((b, i) => b.memory().usage >= base[i]! + 20 * 40), 'the dropped buffers still count before V8 collects them')
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  v8.setFlagsFromString('--no-expose-gc')
  await new Promise((r) => setImmediate(r))
  gc()
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r))
  t.same(boards.map((b, i) => b.memory().usage - base[i]!).filter((d) => d > 2), [], 'every board released its garbage')
})
