import t from 'tap'
import { makeBoard } from '../board/helpers.ts'
import { ReplSession, isIncomplete } from '../../../hardware-sim/serial/repl.ts'

function session(t: Parameters<typeof makeBoard>[0]) {
  const { board } = makeBoard(t)
  let out = ''
  const s = new ReplSession(board, (x) => (out += x))
  t.teardown(() => s.detach())
  return { board, s, take: () => { const o = out; out = ''; return o } }
}

t.test('echo, =value results, console output and the prompt', async (t) => {
  const { s, take } = session(t)
  s.input('1+2\r')
  t.equal(take(), '1+2\r\n=3\r\n>')
  s.input('print("hi"), "str"\n')
  t.equal(take(), 'print("hi"), "str"\r\nhi\r\n="str"\r\n>')
  s.input('var o = {a: 1}\r\n')
  t.equal(take(), 'var o = {a: 1}\r\n=undefined\r\n>')
})

t.test('multi-line input waits for the closing brace; ESC+LF adds a newline without executing', async (t) => {
  const { s, board, take } = session(t)
  s.input('function f() {\r')
  t.equal(take(), 'function f() {\r\n:')
  s.input('  return 42\r}\r')
  t.match(take(), '=undefined\r\n>')
  s.input('\x10f()\x1b\n + 1\n')
  t.equal(take(), '')
  board.load('print(f() + 1)')
  t.equal(board.console.lines.at(-1), '43')
})

t.test('0x10 lines run without echo and without =value; Ctrl-C clears the line', async (t) => {
  const { s, take, board } = session(t)
  s.input('\x10print("<","<<",JSON.stringify(process.env),">>",">")\n')
  const o = take()
  t.match(o, /^< << \{"VERSION":"2v25",.*"BOARD":"ESP32".* >> >\r\n$/)
  s.input('digitalWrite(D2, 1)\x03')
  t.equal(take(), 'digitalWrite(D2, 1)\r\n>')
  s.input('D2.read()\r')
  t.equal(take(), 'D2.read()\r\n=0\r\n>', 'the cleared line never ran')
  s.input('\x1b[5dprint(1)\r')
  t.equal(take(), 'print(1)\r\n1\r\n=undefined\r\n>', 'CSI line-number hints are ignored')
  void board
})

t.test('errors are printed like Espruino; a forbidden feature is refused by name', async (t) => {
  const { s, take } = session(t)
  s.input('throw new Error("bad")\r')
  t.equal(take(), 'throw new Error("bad")\r\nUncaught Error: bad\r\n>')
  s.input('var m = new Map()\r')
  t.match(take(), 'Espruino cannot run this bundle: Map at 1:13')
})

t.test('reset() prints the banner and forgets the program; save() and load() bring it back; Storage writes work', async (t) => {
  const { s, take, board } = session(t)
  s.input('var x = 5\r')
  s.input('save()\r')
  s.input('reset()\r')
  const o = take()
  t.match(o, 'espruino.com')
  s.input('typeof x\r')
  t.match(take(), '="undefined"')
  s.input('load()\r')
  take()
  s.input('x\r')
  t.match(take(), '=5')
  s.input('require("Storage").write("a", "hello")\r')
  t.match(take(), '=true')
  s.input('E.setBootCode("print(\'booted\')")\r')
  take()
  board.boot()
  t.match(board.console.lines.at(-1), 'booted')
})

t.test('async console output re-draws the prompt and the half-typed line', async (t) => {
  const { s, take, board } = session(t)
  s.input('setTimeout(function () { print("tick") }, 10)\r')
  take()
  s.input('1 +')
  take()
  board.advance(10)
  t.equal(take(), '\rtick\r\n>1 +')
})

t.test('isIncomplete', async (t) => {
  t.equal(isIncomplete('function f() {'), true)
  t.equal(isIncomplete('var s = "abc'), true)
  t.equal(isIncomplete('var a = ['), true)
  t.equal(isIncomplete('1+2'), false)
  t.equal(isIncomplete('var 1x = 2'), false, 'a real syntax error executes (and is reported)')
  t.equal(isIncomplete(''), false)
})
