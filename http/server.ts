/**
 * From handlers to a node:http request listener: what one request sees
 * (`RequestContext`), handlers mounted in front of the main one (`Mount`), and
 * every error that escapes turned into a JSON answer by `sendError`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
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
