import t, { type Test } from 'tap'
import net from 'node:net'
import { makeBoard } from './helpers.ts'
import type { VirtualBoard } from '../../../hardware-sim/board/board.ts'

/** A real TCP server on 127.0.0.1:0 that answers every chunk with [0xff, 0x00, ...chunk]. */
async function echoServer(t: Test): Promise<{ port: number; received: Buffer[] }> {
  const received: Buffer[] = []
  const server = net.createServer((s) => {
    s.on('data', (d) => {
      received.push(d)
      s.write(Buffer.concat([Buffer.from([0xff, 0x00]), d]))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  return { port: (server.address() as net.AddressInfo).port, received }
}

/**
 * Runs the board flat out until `pred` holds or `maxVirtualMs` of board time pass. A socket
 * event still on its way (a close after end()) arrives in real time, and a board whose sockets
 * were quiet for 50 real ms counts as idle and jumps to the end: on a loaded host that can
 * happen before the event lands. So when the condition is not met by then, the board runs on
 * at real-time pace for up to `graceRealMs` more.
 */
async function runUntil(board: VirtualBoard, pred: () => boolean, maxVirtualMs = 60_000, graceRealMs = 5000): Promise<void> {
  const stopAt = board.now + maxVirtualMs
  const watcher = setInterval(() => {
    if (pred() || board.now >= stopAt) board.stop()
  }, 5)
  try {
    await board.run({ speed: Infinity, until: stopAt })
  } finally {
    clearInterval(watcher)
  }
  if (pred()) return
  const grace = setInterval(() => {
    if (pred()) board.stop()
  }, 5)
  try {
    await board.run({ speed: 1, until: board.now + graceRealMs })
  } finally {
    clearInterval(grace)
  }
}

t.test('WiFi connect, then a real TCP socket: binary writes, data delivered as a binary string', async (t) => {
  const { port, received } = await echoServer(t)
  const { board } = makeBoard(t, { wifi: { ssid: 'clinic', password: 'pw' } })
  board.load(`
    var wifi = require('Wifi');
    wifi.on('connected', function (info) { print('connected', info.ip) });
    wifi.connect('clinic', { password: 'pw' }, function (err) {
      print('wifi cb', err, getTime());
      require('net').connect({ host: '127.0.0.1', port: ${port} }, function (sock) {
        sock.on('data', function (d) { print('data', typeof d, d.length, d.charCodeAt(0), d.charCodeAt(1), d.slice(2)); sock.end() });
        sock.on('close', function () { print('closed') });
        sock.write(new Uint8Array([104, 105]));
      });
    });
  `)
  await runUntil(board, () => board.console.lines.includes('closed'))
  t.same(board.console.lines, ['wifi cb null 1.5', 'connected 192.168.4.2', 'data string 4 255 0 hi', 'closed'])
  t.same(received.map((b) => [...b]), [[104, 105]])
})

t.test('wrong WiFi password fails; connects throw while WiFi is down (no route, no DNS)', async (t) => {
  const { port } = await echoServer(t)
  const { board } = makeBoard(t, { wifi: { ssid: 'clinic', password: 'pw' } })
  board.load(`
    require('Wifi').connect('clinic', { password: 'nope' }, function (err) { print('wifi cb', err) });
    try { require('net').connect({ host: '127.0.0.1', port: ${port} }, function () { print('connected?!') }) } catch (e) { print('threw', e.name, e.message) }
    try { require('tls').connect({ host: 'gateway.local', port: ${port} }) } catch (e) { print('threw', e.name, e.message) }
  `)
  board.advance(2000)
  t.same(board.console.lines, ['ERROR: Connect failed (err 113)', 'threw InternalError Unable to create socket', 'threw InternalError Unable to locate host', 'wifi cb auth_fail'])
})

t.test('wifiDrop: sockets close, "disconnected" fires, the link comes back by itself after the outage', async (t) => {
  const { port } = await echoServer(t)
  const { board } = makeBoard(t)
  board.load(`
    var wifi = require('Wifi');
    wifi.on('disconnected', function (d) { print('disconnected', d.reason, getTime()) });
    wifi.on('connected', function () { print('connected', getTime()) });
    wifi.connect('any', { password: 'x' }, function () {
      require('net').connect({ host: '127.0.0.1', port: ${port} }, function (sock) {
        print('sock open');
        sock.on('close', function () { print('sock closed', getTime()) });
      });
    });
  `)
  await runUntil(board, () => board.console.lines.includes('sock open'))
  const at = board.now / 1000
  board.wifiDrop(10_000)
  // A 'connected' line after the drop's 'disconnected' (the first one's time carries the TCP connect's real duration, whatever it is).
  await runUntil(board, () => {
    const lines = board.console.lines
    const drop = lines.findIndex((x) => x.startsWith('disconnected'))
    return drop >= 0 && lines.slice(drop).some((x) => x.startsWith('connected'))
  }, 30_000)
  const l = board.console.lines
  // connect() blocks for the TCP handshake (fractions of a ms on loopback): the event after it is that much later.
  const first = /^connected (\S+)$/.exec(l[0]!)
  t.ok(first && Number(first[1]) >= 1.5 && Number(first[1]) < 1.55, `connected at 1.5 s plus the connect: ${l[0]}`)
  t.equal(l[1], 'sock open')
  t.match(l[2], /^sock closed /)
  t.equal(l[3], `disconnected beacon_timeout ${at}`)
  // The board prints getTime() in seconds; compare as numbers, not as float text.
  const back = /^connected (\S+)$/.exec(l[4])
  t.ok(back, `reconnected: ${l[4]}`)
  t.ok(Math.abs(Number(back![1]) - (at + 11.5)) < 1e-6, 'back 10 s outage + 1.5 s association later')
})

t.test('run({speed}) paces virtual time against real time', async (t) => {
  const { board } = makeBoard(t)
  board.load(`var n = 0; setInterval(function () { n++ }, 100);`)
  const stopper = setTimeout(() => board.stop(), 100)
  const realStart = performance.now()
  await board.run({ speed: 50 })
  const realMs = performance.now() - realStart
  clearTimeout(stopper)
  // How far it got depends on the host's pace; it may never run ahead of 50 x real time.
  t.ok(board.now > 0, `virtual time moved (${board.now} ms)`)
  t.ok(board.now <= 50 * realMs, `never ahead of 50 x the ${realMs.toFixed(0)} real ms (${board.now} virtual ms)`)
})
