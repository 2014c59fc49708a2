import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import type { Test } from 'tap'

/** A real HTTP server on 127.0.0.1, an ephemeral port, closed at the test's end. */
export async function listen(t: Test, listener: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(listener)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((r) => server.close(() => r()))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  json(): Record<string, unknown>
}

/** One request with node:http (no fetch: a chunked body with no length is sent as given). */
export function call(base: string, method: string, path: string, o: { headers?: Record<string, string>; body?: string | Buffer; chunks?: Buffer[] } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const r = request(base + path, { method, headers: o.headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject) // cut off mid-answer
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) as Record<string, unknown> })
      })
    })
    r.on('error', reject)
    if (o.chunks) {
      for (const c of o.chunks) r.write(c)
      r.end()
    } else r.end(o.body)
  })
}

/** Sends one GET with `target` verbatim; resolves with the status and body. */
export function rawGet(base: string, target: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), hostname, () => s.write(`GET ${target} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n\r\n`))
    let text = ''
    s.setEncoding('utf8')
    s.on('data', (d: string) => (text += d))
    s.on('error', reject)
    s.on('close', () => resolve({ status: Number(text.split(' ')[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) }))
  })
}
