/**
 * The one way a handler refuses a request: throw `HttpError(status, message)`.
 * `sendError` is the one place a thrown error becomes a response: an HttpError
 * (or what `mapError` turns a domain error into) answers `{"error": message}`
 * with its status; anything else is a bug, logged through `onInternal` and
 * answered with a bare 500 so no stack or internal message reaches the client.
 */
import type { ServerResponse } from 'node:http'
import { sendJson } from './respond.ts'

export interface HttpErrorOptions {
  /** A stable machine-readable reason, sent as `{"code": ...}` beside the message. */
  code?: string
  /** Headers the answer must carry (Allow on a 405, WWW-Authenticate on a 401). */
  headers?: Record<string, string>
}

export class HttpError extends Error {
  override name = 'HttpError'
  readonly code: string | undefined
  readonly headers: Record<string, string>

  constructor(readonly status: number, message: string, o: HttpErrorOptions = {}) {
    super(message)
    this.code = o.code
    this.headers = o.headers ?? {}
  }
}

/** Turns a domain error (e.g. a registry's 'not-found') into an HttpError; undefined: not one it knows. */
export type ErrorMapper = (err: unknown) => HttpError | undefined

export interface ErrorOptions {
  mapError?: ErrorMapper
  /** Called with every error that became a 500 (the client only sees "internal error"). */
  onInternal?: (err: unknown) => void
}

export function sendError(res: ServerResponse, err: unknown, o: ErrorOptions = {}): void {
  const known = err instanceof HttpError ? err : o.mapError?.(err)
  if (!known) o.onInternal?.(err)
  // A stream (or any answer) already under way cannot change its status: cut it off.
  if (res.headersSent) {
    res.destroy()
    return
  }
  if (!known) return sendJson(res, 500, { error: 'internal error' })
  sendJson(res, known.status, known.code === undefined ? { error: known.message } : { error: known.message, code: known.code }, known.headers)
}

/** The message of anything thrown, for logs. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
