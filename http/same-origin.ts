/**
 * The cross-site request guard for cookie-authenticated routes. A browser attaches
 * a cookie to any request for its site, and SameSite=Strict does not help against
 * another origin of the same site (another port of the same host, a sibling
 * subdomain): a page there can post a form, or fetch() with credentials, and the
 * action runs even though the page cannot read the answer. So every
 * state-changing request must show it comes from this server's own pages:
 *
 *   1. `Sec-Fetch-Site` (Fetch Metadata), when sent, is `same-origin` or `none`
 *      (typed in the address bar); `same-site` is exactly the attack above.
 *   2. `Origin`, when sent, is this server's own: its host matches the Host header.
 *   3. The body is typed `application/json`, body or not. Plain forms cannot send that
 *      type, and fetch() can only send it cross-origin after a CORS preflight that this
 *      server never grants, so this holds even for a browser that sends neither header.
 *
 * Safe methods (GET, HEAD, OPTIONS) change nothing and pass. Bearer-token routes do not
 * need the guard: a browser never attaches the token by itself.
 */
import type { IncomingMessage } from 'node:http'
import { HttpError } from './errors.ts'

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
const OWN_FETCH_SITES = new Set(['same-origin', 'none'])

/** Whether a method may change state (everything but GET, HEAD and OPTIONS). */
export function isStateChanging(method: string | undefined): boolean {
  return !SAFE_METHODS.has((method ?? 'GET').toUpperCase())
}

/** The media type of a Content-Type header (lower case, parameters dropped), or '' when absent. */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase()
}

/**
 * Throws unless a state-changing request comes from this server's own pages: 403 (code
 * 'cross-site') for another origin, 415 (code 'json-required') for a body not typed JSON.
 * Safe methods always pass.
 */
export function assertSameOrigin(req: IncomingMessage): void {
  if (!isStateChanging(req.method)) return
  const site = req.headers['sec-fetch-site']
  if (site !== undefined && !OWN_FETCH_SITES.has(site)) throw crossSite(`Sec-Fetch-Site is '${site}'`)
  const origin = req.headers.origin
  // The Host header is what the browser itself addressed, which no page can set; a DNS-rebound
  // name that matches it carries no cookie of ours, since cookies follow the host name.
  if (origin !== undefined && !isOwnOrigin(origin, req.headers.host)) throw crossSite(`Origin ${origin.slice(0, 100)} is not this server (${req.headers.host ?? 'no Host header'})`)
  const type = mediaType(req.headers['content-type'])
  if (type !== 'application/json') {
    throw new HttpError(415, `expected content-type application/json on ${req.method} (it keeps other sites' forms out), got ${type || 'none'}`, { code: 'json-required' })
  }
}

function crossSite(why: string): HttpError {
  return new HttpError(403, `cross-site request refused: ${why}; state-changing requests must come from this server's own pages`, { code: 'cross-site' })
}

/**
 * Whether an Origin names the host the request was sent to. Both sides go through the URL
 * parser, so case and an explicit default port do not matter. The scheme is not compared: behind
 * a TLS-terminating proxy the page is https while this server sees plain http. 'null'
 * (sandboxed frames, opaque origins) and anything unparsable are never ours.
 */
function isOwnOrigin(origin: string, host: string | undefined): boolean {
  if (!host) return false
  try {
    const o = new URL(origin)
    if (o.protocol !== 'http:' && o.protocol !== 'https:') return false
    return o.host === new URL(`${o.protocol}//${host}`).host
  } catch {
    return false
  }
}
