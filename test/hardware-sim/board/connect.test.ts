/**
 * `net.connect()`/`tls.connect()` on the virtual board behave as on Espruino 2v29
 * (libs/network/socketserver.c clientRequestConnect, libs/network/esp32/network_esp32.c):
 * a refused port prints `ERROR: Connect failed (err 111)` and throws
 * `InternalError: Unable to create socket` in the caller's stack frame; a name that does not
 * resolve throws `Unable to locate host`; a listening port connects, even one that never
 * answers; and the virtual clock is charged the time the attempt took.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import { makeBoard } from './helpers.ts'
import { probeConnect } from '../../../hardware-sim/board/connect-probe.ts'
import type { VirtualBoard } from '../../../hardware-sim/board/board.ts'
import { freePort } from '../../../testing/net.ts' // bound, then closed: nothing listens there

/** A server that accepts and never sends a byte. */
async function silentServer(t: Test): Promise<number> {
  const held: net.Socket[] = []
  const server = net.createServer((s) => {
    held.push(s)
    s.on('error', () => undefined)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    for (const s of held) s.destroy()
    return new Promise<void>((r) => server.close(() => r()))
  })
  return (server.address() as net.AddressInfo).port
}


/** A board whose WiFi is up (association done). */
function onlineBoard(t: Test): VirtualBoard {
  const { board } = makeBoard(t)
  board.load(`require('Wifi').connect('clinic', { password: 'pw' }, function (err) { print('wifi', err) })`)
  board.advance(2000)
  t.same(board.console.lines, ['wifi null'])
  board.console.lines.length = 0
  return board
}

t.test('a refused port throws synchronously, inside the caller, with the interpreter\'s text', async (t) => {
  const port = await freePort()
  const board = onlineBoard(t)
  board.load(`
    var t0 = getTime();
    try {
      require('net').connect({ host: '127.0.0.1', port: ${port} }, function () { print('connected?!') });
      print('marker: connect returned');
    } catch (e) {
      print('caught', e.name, '|' + e.message + '|', e instanceof Error, String(e));
    }
    print('blocked', getTime() > t0);
  `)
  t.same(board.console.lines, [
    'ERROR: Connect failed (err 111)',
    'caught InternalError |Unable to create socket| true InternalError: Unable to create socket',
    'blocked true',
  ])
  board.load(`require('tls').connect({ host: '127.0.0.1', port: ${port} })`)
  t.same(board.console.lines.slice(3), ['ERROR: Connect failed (err 111)', 'Uncaught InternalError: Unable to create socket'], 'uncaught, tls too')
  board.advance(1000)
  t.equal(board.console.lines.length, 5, 'nothing arrives later: no error or close event')
})

t.test('a name that does not resolve throws "Unable to locate host"', async (t) => {
  const board = onlineBoard(t)
  board.load(`try { require('net').connect({ host: 'no-such-host.invalid', port: 1883 }) } catch (e) { print(e.name + ': ' + e.message) }`)
  t.same(board.console.lines, ['InternalError: Unable to locate host'])
})

t.test('a listening port connects without throwing, even when the server never answers', async (t) => {
  const port = await silentServer(t)
  const board = onlineBoard(t)
  board.load(`
    var t0 = getTime();
    var s = require('net').connect({ host: 'localhost', port: ${port} }, function () { print('connect callback') });
    print('returned', typeof s.write, (getTime() - t0) * 1000 < ${1000 + 50});
    s.on('data', function (d) { print('data?!') });
  `)
  t.same(board.console.lines, ['returned function true'])
  const until = Date.now() + 5000
  while (!board.console.lines.includes('connect callback') && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 10))
    board.advance(10)
  }
  t.same(board.console.lines, ['returned function true', 'connect callback'])
})

t.test('the probe is cheap: loopback refusals and connects take well under a millisecond each (median)', async (t) => {
  const refused = await freePort()
  const open = await silentServer(t)
  probeConnect('127.0.0.1', refused) // the worker starts on first use
  const ms = (port: number) => {
    const times: number[] = []
    for (let i = 0; i < 41; i++) {
      const t0 = performance.now()
      const r = probeConnect('127.0.0.1', port)
      times.push(performance.now() - t0)
      if (i === 0) t.equal(r.kind, port === refused ? 'failed' : 'connected')
    }
    return times.sort((a, b) => a - b)[20]!
  }
  const a = ms(refused)
  const b = ms(open)
  t.comment(`median refusal ${a.toFixed(3)} ms, median connect ${b.toFixed(3)} ms`)
  // Loose bounds: the machine running the suite is shared.
  t.ok(a < 5, `refusal median ${a.toFixed(3)} ms`)
  t.ok(b < 5, `connect median ${b.toFixed(3)} ms`)
})
