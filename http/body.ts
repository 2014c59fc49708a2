/**
 * Request bodies, read whole into memory under a size limit: 413 past the limit,
 * 400 for JSON that does not parse or is not an object, 415 when a JSON type is
 * required and the request says otherwise.
 */
import type { IncomingMessage } from 'node:http'
import { HttpError } from './errors.ts'
import { mediaType } from './same-origin.ts'

export interface BodyOptions {
  /** Largest body accepted, bytes. */
  maxBytes: number
}

export interface JsonOptions extends BodyOptions {
  /**
   * Refuse (415) a request whose content-type is not application/json. Browsers
   * cannot send that type cross-site without a CORS preflight, so a cookie-authenticated
   * route that requires it cannot be driven by another site's plain form.
   */
  requireJsonType?: boolean
}

export function readBody(req: IncomingMessage, o: BodyOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let size = 0
    const chunks: Buffer[] = []
    const onData = (c: Buffer): void => {
      size += c.length
      if (size > o.maxBytes) refuse()
      else chunks.push(c)
    }
    if (Number(req.headers['content-length']) > o.maxBytes) return refuse()
    req.on('data', onData)
    req.on('end', () => resolve(Buffer.concat(chunks)))
    // A client that goes away mid-body (or is cut off at the body deadline) is not a server fault.
    const cutOff = (): void => reject(new HttpError(400, 'request body cut off before its end'))
    req.on('error', cutOff)
    req.on('close', () => {
      if (!req.complete) cutOff()
    })

    function refuse(): void {
      req.off('data', onData)
      // Drop the rest instead of cutting the connection, so the client gets to read the 413
      // (the server's body deadline, see server.ts, still ends an upload that never stops).
      req.resume()
      reject(new HttpError(413, `body over ${o.maxBytes} bytes`))
    }
  })
}

/** Parses a JSON body that must be an object (400 otherwise). */
export function parseJsonObject(body: Buffer | string): Record<string, unknown> {
  let v: unknown
  try {
    v = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'))
  } catch (err) {
    throw new HttpError(400, `invalid JSON body: ${(err as Error).message}`)
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'invalid JSON body: expected a JSON object')
  return v as Record<string, unknown>
}

export async function readJson(req: IncomingMessage, o: JsonOptions): Promise<Record<string, unknown>> {
  if (o.requireJsonType) {
    const ct = mediaType(req.headers['content-type'])
    if (ct !== 'application/json') throw new HttpError(415, `expected content-type application/json, got ${ct || 'none'}`)
  }
  return parseJsonObject(await readBody(req, o))
}
