/**
 * The HTTP servers keep an idle connection open past Node's 5 s default, so a client that reuses
 * a pooled socket after a pause (the fleet provisioning 1,000 boards while its event loop is
 * busy) is not answered "other side closed". Real server, real socket, a real 6 s pause.
 */
import t from 'tap'
import { Agent, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { KEEP_ALIVE_MS, createHttpServer } from '../../http/server.ts'

function get(port: number, agent: Agent): Promise<{ status: number; reused: boolean; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('an idle keep-alive connection is still served after 6 s', async (t) => {
  t.ok(KEEP_ALIVE_MS > 60_000, 'the idle window is over a minute')
  const server = createHttpServer((_req, res) => res.end('ok'))
  t.equal(server.keepAliveTimeout, KEEP_ALIVE_MS)
  t.ok(server.headersTimeout > server.keepAliveTimeout, 'headers outlast the keep-alive, as node requires')
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => {
    agent.destroy()
    server.close()
  })
  const first = await get(port, agent)
  t.same([first.status, first.body, first.reused], [200, 'ok', false])
  await new Promise((r) => setTimeout(r, 6_000))
  const second = await get(port, agent)
  t.same([second.status, second.body, second.reused], [200, 'ok', true], 'the second request went over the first socket')
})

t.test('close() does not wait for idle keep-alive connections', async (t) => {
  const server = createHttpServer((_req, res) => res.end('ok'))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const agent = new Agent({ keepAlive: true })
  t.teardown(() => agent.destroy())
  await get((server.address() as AddressInfo).port, agent)
  const t0 = Date.now()
  await new Promise<void>((r) => server.close(() => r()))
  t.ok(Date.now() - t0 < KEEP_ALIVE_MS / 2, 'closed without waiting out the idle socket')
})
