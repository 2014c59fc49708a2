/**
 * From handlers to a node:http request listener: what one request sees
 * (`RequestContext`), handlers mounted in front of the main one (`Mount`), and
 * every error that escapes turned into a JSON answer by `sendError`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { sendError, type ErrorOptions } from './errors.ts'

export interface RequestContext {
  req: IncomingMessage
  res: ServerResponse
  method: string
  /** The path, still percent-encoded (route params are decoded when matched). */
  path: string
  query: URLSearchParams
}

export function contextOf(req: IncomingMessage, res: ServerResponse): RequestContext {
  // The base only completes relative request targets; the host header is not trusted for anything.
  const url = new URL(req.url ?? '/', 'http://localhost')
  return { req, res, method: req.method ?? 'GET', path: url.pathname, query: url.searchParams }
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
