/**
 * Who is asking: a bearer token (`Authorization: Bearer <token>`) checked in
 * constant time against a secret, or a session found by its token in a cookie
 * or a bearer header. Each refusal is a 401 HttpError the error sender answers.
 */
import type { IncomingMessage } from 'node:http'
import { createHash, timingSafeEqual } from 'node:crypto'
import { HttpError } from './errors.ts'
import type { SessionData, SessionStore } from './sessions.ts'

/** The token of an `Authorization: Bearer` header, or null. */
export function bearerToken(req: IncomingMessage): string | null {
  const h = req.headers.authorization
  return h && h.startsWith('Bearer ') ? h.slice(7).trim() || null : null
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/**
 * A check of presented tokens against one secret. Digests are compared, so the
 * time taken does not depend on where the tokens differ nor on the presented length.
 */
export function tokenMatcher(secret: string): (presented: string | null) => boolean {
  const want = digest(secret)
  return (presented) => presented !== null && timingSafeEqual(digest(presented), want)
}

/** A 401 that asks for a bearer token. */
export function unauthorized(message: string): HttpError {
  return new HttpError(401, message, { headers: { 'www-authenticate': 'Bearer' } })
}

/** The value of cookie `name` in a Cookie header, or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const i = part.indexOf('=')
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim()
  }
  return undefined
}

/**
 * A session cookie: HttpOnly (no script reads it), SameSite=Strict (other sites'
 * requests do not carry it), Secure when served over HTTPS. SameSite does not stop
 * another origin of the same site (another port of the same host), so the routes
 * that trust this cookie must also pass `assertSameOrigin` (same-origin.ts).
 */
export function sessionCookie(name: string, token: string, secure: boolean): string {
  return `${name}=${token}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`
}

/** The Set-Cookie value that makes the browser drop cookie `name`. */
export function clearedCookie(name: string): string {
  return `${name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`
}

/** Finds the session a request carries; null when it carries none that is live. */
export type SessionLookup<S> = (req: IncomingMessage) => S | null

/** The session of `kind` behind the request's cookie `name`. */
export function cookieSession<T extends SessionData>(store: SessionStore<SessionData>, name: string, kind?: string): SessionLookup<T> {
  return (req) => store.get<T>(readCookie(req.headers.cookie, name), kind)
}

/** The session of `kind` behind the request's bearer token. */
export function bearerSession<T extends SessionData>(store: SessionStore<SessionData>, kind?: string): SessionLookup<T> {
  return (req) => store.get<T>(bearerToken(req) ?? undefined, kind)
}

/** The lookup made mandatory: its session, or a 401 with `message`. */
export function requireSession<S>(lookup: SessionLookup<S>, message: string): (req: IncomingMessage) => S {
  return (req) => {
    const s = lookup(req)
    if (s === null) throw new HttpError(401, message)
    return s
  }
}
