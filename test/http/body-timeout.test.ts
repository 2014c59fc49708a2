/**
 * A request body trickled a byte a second is cut off at the server's body deadline:
 * a 408 when nothing was answered yet, and the connection closed either way (also when
 * the handler answered without reading the body). Real server, real sockets.
 */
import t, { type Test } from 'tap'
import { Agent, request } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { BODY_TIMEOUT_MS, createHttpServer, requestListener } from '../../http/server.ts'
import { readJson } from '../../http/body.ts'
import { sendJson } from '../../http/respond.ts'
import { waitFor } from '../helpers/wait.ts'

const DEADLINE_MS = 1_000

async function server(t: Test, bodyTimeoutMs?: number): Promise<{ port: number; internal: unknown[]; reads: unknown[] }> {
  const internal: unknown[] = []
  const reads: unknown[] = []
  const s = createHttpServer(
    requestListener(
      async ({ req, res, path }) => {
        if (path === '/read') {
          const body = await readJson(req, { maxBytes: 1024 }).catch((err: unknown) => {
            reads.push(err)
            throw err
          })
          return sendJson(res, 200, body)
        }
        sendJson(res, 401, { error: 'not reading your body' })
      },
      { onInternal: (e) => internal.push(e) },
    ),
    bodyTimeoutMs === undefined ? {} : { bodyTimeoutMs },
  )
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    s.closeAllConnections()
    return new Promise<void>((r) => s.close(() => r()))
  })
  return { port: (s.address() as AddressInfo).port, internal, reads }
}

/** Sends headers announcing 1,000 bytes, then one byte a second; resolves with what came back when the server closes. */
function trickle(port: number, path: string): Promise<{ answer: string; closedAfterMs: number; bytesSent: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now()
    let answer = ''
    let bytesSent = 0
    let timer: NodeJS.Timeout | undefined
    const s: Socket = connect(port, '127.0.0.1', () => {
      s.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`)
      timer = setInterval(() => {
        if (!s.writable) return
        s.write(bytesSent === 0 ? '{' : ' ')
        bytesSent++
      }, 1000)
    })
    s.setEncoding('utf8')
    s.on('data', (d: string) => (answer += d))
    s.on('error', () => {}) // a reset after the server closes is fine: the close is what is checked
    s.on('close', () => {
      clearInterval(timer)
      resolve({ answer, closedAfterMs: Date.now() - t0, bytesSent })
    })
    // Generous: the server is expected to close after ~1 s, not this.
    setTimeout(() => reject(new Error('the server kept the trickling connection open for 30 s')), 30_000).unref()
  })
}

t.test('the default deadline is 10 s', async (t) => {
  t.equal(BODY_TIMEOUT_MS, 10_000)
})

t.test('a trickled body that a handler is reading gets a 408 and the socket closed', async (t) => {
  const { port, internal, reads } = await server(t, DEADLINE_MS)
  const r = await trickle(port, '/read')
  t.match(r.answer, /^HTTP\/1\.1 408 /, 'answered 408 Request Timeout')
  t.match(r.answer, /connection: close/i)
  t.match(r.answer, /"code":"body-timeout"/, 'a JSON error that names the reason')
  t.ok(r.closedAfterMs >= DEADLINE_MS, `closed after the deadline (${r.closedAfterMs} ms)`)
  t.ok(r.bytesSent < 1000, 'long before the announced body was in')
  await waitFor(() => reads.length === 1, 'the handler to stop waiting for the body', 10_000)
  t.match(reads[0], { name: 'HttpError', message: /cut off/ }, 'its read ended with a client error, not a hang')
  t.same(internal, [], 'nothing was logged as an internal failure')
})

t.test('a trickled body that the handler never reads: its connection is closed too', async (t) => {
  const { port } = await server(t, DEADLINE_MS)
  const r = await trickle(port, '/ignore')
  t.match(r.answer, /^HTTP\/1\.1 401 /, 'the handler answered at once')
  t.ok(r.closedAfterMs >= DEADLINE_MS, `then the connection was closed at the deadline (${r.closedAfterMs} ms)`)
})

t.test('a body that arrives in time is answered, and its kept-alive connection outlives the deadline', async (t) => {
  const { port } = await server(t, DEADLINE_MS)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const first = await post(port, agent, '{"a":1}')
  t.same([first.status, first.body], [200, { a: 1 }])
  await new Promise((r) => setTimeout(r, DEADLINE_MS * 2)) // the window in which a stray deadline would have closed it
  const second = await post(port, agent, '{"b":2}')
  t.same([second.status, second.body, second.reused], [200, { b: 2 }, true], 'the same socket served the next request')
})

function post(port: number, agent: Agent, body: string): Promise<{ status: number; body: unknown; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/read', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), reused: req.reusedSocket }))
    })
    req.on('error', reject)
    req.end(body)
  })
}
