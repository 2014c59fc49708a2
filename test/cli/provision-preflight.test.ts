/**
 * `mhealth provision` checks the gateway and its admin token before it opens the board's port:
 * reading the key personalises a blank secure element for good, so a wrong --gateway or token
 * must fail with nothing done. The "board" here is a TCP port that counts who connects.
 */
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import { runCli } from '../helpers/cli.ts'
import { startRealGateway } from '../../testing/real-gateway.ts'
import { freePort } from '../../testing/net.ts' // bound, then closed: nothing listens there

async function boardPort(t: { teardown(fn: () => unknown): void }): Promise<{ url: string; connections: () => number }> {
  let n = 0
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => {
    n++
    sockets.add(s)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((r) => server.close(() => r()))
  })
  return { url: `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`, connections: () => n }
}


t.test('a wrong admin token is refused before the board is touched', async (t) => {
  const gw = await startRealGateway()
  t.teardown(() => gw.close())
  const board = await boardPort(t)
  const r = await runCli(['provision', '--port', board.url, '--gateway', gw.httpUrl, '--wifi', 'clinic', '--token', 'not-the-token'], { timeoutMs: 60_000 })
  t.equal(r.code, 1, r.stderr)
  t.match(r.stderr, /the gateway at http:\/\/127\.0\.0\.1:\d+ refused the admin token \(HTTP 401\): check --token or --data \(nothing was done to the board\)/)
  t.notMatch(r.stderr, /\bat .*\.ts:\d+/, 'no stack trace')
  t.equal(board.connections(), 0, 'the board port was never opened')
  t.equal(gw.gw.registry.listDevices().length, 0, 'nothing was registered')
})

t.test('an unreachable gateway is reported before the board is touched', async (t) => {
  const board = await boardPort(t)
  const port = await freePort()
  const r = await runCli(['provision', '--port', board.url, '--gateway', `http://127.0.0.1:${port}`, '--wifi', 'clinic', '--token', 'x'], { timeoutMs: 60_000 })
  t.equal(r.code, 1, r.stderr)
  t.match(r.stderr, new RegExp(`cannot reach the gateway at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.* \\(nothing was done to the board\\)`))
  t.equal(board.connections(), 0, 'the board port was never opened')
})

t.test('a server that is not an mhealth gateway is named as such', async (t) => {
  const board = await boardPort(t)
  const other = http.createServer((_req, res) => res.writeHead(404).end('not here'))
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    other.closeAllConnections()
    return new Promise<void>((r) => other.close(() => r()))
  })
  const url = `http://127.0.0.1:${(other.address() as net.AddressInfo).port}`
  const r = await runCli(['provision', '--port', board.url, '--gateway', url, '--wifi', 'clinic', '--token', 'x'], { timeoutMs: 60_000 })
  t.equal(r.code, 1, r.stderr)
  t.match(r.stderr, /does not answer like an mhealth gateway \(GET \/api\/devices: HTTP 404\)/)
  t.equal(board.connections(), 0, 'the board port was never opened')
})
