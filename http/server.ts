/**
 * From handlers to a node:http request listener: what one request sees
 * (`RequestContext`), handlers mounted in front of the main one (`Mount`), and
 * every error that escapes turned into a JSON answer by `sendError`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { HttpError, sendError, type ErrorOptions } from './errors.ts'

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

/** A node:http server for `listener` with the keep-alive above (headers must outlast it). */
export function createHttpServer(listener: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const server = createServer(listener)
  server.keepAliveTimeout = KEEP_ALIVE_MS
  server.headersTimeout = KEEP_ALIVE_MS + 1_000
  return server
}
