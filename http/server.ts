/**
 * From handlers to a node:http request listener: what one request sees
 * (`RequestContext`), handlers mounted in front of the main one (`Mount`), and
 * every error that escapes turned into a JSON answer by `sendError`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { HttpError, sendError, type ErrorOptions } from './errors.ts'
import { sendJson } from './respond.ts'

export interface RequestContext {
  req: IncomingMessage
  res: ServerResponse
  method: string
  /** The path, still percent-encoded (route params are decoded when matched). */
  path: string
  query: URLSearchParams
}

export function contextOf(req: IncomingMessage, res: ServerResponse): RequestContext {
  const url = targetUrl(req.url ?? '/')
  return { req, res, method: req.method ?? 'GET', path: url.pathname, query: url.searchParams }
}

/**
 * The URL of a request target; 400 when it is not one or its path has a bad percent-escape.
 * A path is appended to a fixed base rather than resolved against it: resolved, `//x/api/...`
 * would name host x and path /api/..., and `//%zz` would throw (a 500). The Host header is not
 * trusted for anything here.
 */
function targetUrl(target: string): URL {
  let url: URL
  try {
    url = new URL(target.startsWith('/') ? 'http://localhost' + target : target)
    decodeURIComponent(url.pathname) // checked once here, so no route, matched or not, meets a bad escape
  } catch {
    throw new HttpError(400, `request target: expected a path (or absolute URL) with valid percent-encoding, got '${target.slice(0, 70)}'`)
  }
  return url
}

/** A handler tried before the main one (e.g. an app mounted on an API server): true when it answered. */
export type Mount = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>

export interface ListenerOptions extends ErrorOptions {
  /** Tried in order before the handler; the array may change while the server runs. */
  mounts?: readonly Mount[]
}

export function requestListener(handler: (c: RequestContext) => unknown, o: ListenerOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  const run = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    for (const m of o.mounts ?? []) if (await m(req, res)) return
    await handler(contextOf(req, res))
  }
  return (req, res) => {
    run(req, res).catch((err) => sendError(res, err, o))
  }
}

/**
 * How long an idle keep-alive connection stays open. Node's default (5 s) races clients that
 * reuse a pooled socket near that mark: undici keeps one for the server's hint less 1 s, so a
 * client whose event loop stalls for a second (a CLI provisioning 1,000 simulated boards) sends
 * on a socket the server has just closed and gets "other side closed" for a request that never
 * arrived. A minute makes that race need a minute-long stall; close() still drops idle sockets.
 */
export const KEEP_ALIVE_MS = 65_000

/**
 * How long a request body may take to arrive in full. Our bodies are at most tens of KiB, so
 * 10 s allows a link of a few KiB/s; without a limit a client trickling a byte a second holds
 * its connection (and whatever the handler holds) for as long as it likes.
 */
export const BODY_TIMEOUT_MS = 10_000

export interface HttpServerOptions {
  /** Longest time from a request's headers to the end of its body (default `BODY_TIMEOUT_MS`). */
  bodyTimeoutMs?: number
}

/** A node:http server for `listener` with the keep-alive above (headers must outlast it) and a body deadline. */
export function createHttpServer(listener: (req: IncomingMessage, res: ServerResponse) => void, o: HttpServerOptions = {}): Server {
  const bodyTimeoutMs = o.bodyTimeoutMs ?? BODY_TIMEOUT_MS
  const server = createServer((req, res) => {
    bodyDeadline(req, res, bodyTimeoutMs)
    listener(req, res)
  })
  server.keepAliveTimeout = KEEP_ALIVE_MS
  server.headersTimeout = KEEP_ALIVE_MS + 1_000
  return server
}

/**
 * Ends a request whose body is not all in after `ms`: a 408 when nothing has been answered yet,
 * and the connection closed in every case, also when the handler answered without reading the
 * body (node would otherwise go on draining it, byte by byte, to reuse the socket).
 */
function bodyDeadline(req: IncomingMessage, res: ServerResponse, ms: number): void {
  if (req.complete) return
  const timer = setTimeout(() => {
    if (req.complete || req.socket.destroyed) return
    // Destroying the request (not only its socket) also ends a handler still reading the body.
    const close = (): void => {
      req.destroy()
      req.socket.destroy()
    }
    if (res.headersSent) return close()
    res.once('finish', close)
    sendJson(res, 408, { error: `request body not received within ${ms / 1000} s`, code: 'body-timeout' }, { connection: 'close' })
  }, ms)
  timer.unref()
  req.once('end', () => clearTimeout(timer))
}
