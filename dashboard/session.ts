/**
 * Browser sessions: a token from the HTTP kit's session store (http/sessions.ts,
 * idle expiry of one shift by default) in an HttpOnly, SameSite=Strict cookie,
 * mapped to the authenticated actor. A gateway restart logs clinicians out,
 * which is the safe failure. SameSite=Strict keeps other sites from riding the
 * cookie, but not other origins of the same site (another port of this host):
 * routes.ts refuses their state-changing requests by Origin, Fetch Metadata and
 * content type (http/same-origin.ts).
 */
import { clearedCookie as cleared, sessionCookie as cookie } from '../http/auth.ts'

export { SessionStore, type SessionData } from '../http/sessions.ts'
export { readCookie } from '../http/auth.ts'

export const SESSION_COOKIE = 'mh_session'
/** The kind of the dashboard's cookie sessions in the shared store: a cookie token never works as an API bearer token. */
export const DASHBOARD_SESSION = 'dashboard'

export function sessionCookie(token: string, secure: boolean): string {
  return cookie(SESSION_COOKIE, token, secure)
}

export function clearedCookie(): string {
  return cleared(SESSION_COOKIE)
}
