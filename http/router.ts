/**
 * A small router: method + path pattern, where a `:name` segment captures one
 * non-empty path segment (percent-decoded; bad encoding is a 400). Patterns are
 * tried in the order they were added. A path no pattern matches is a 404; a path
 * that matches with another method is a 405 naming the allowed ones.
 *
 *   const r = new Router<Ctx>()
 *     .get('/api/devices', (c) => ...)
 *     .post('/api/devices/:id/revoke', (c, p) => ... p.id ...)
 *   await r.dispatch(method, path, ctx)
 */
import { HttpError } from './errors.ts'

export type Params = Record<string, string>
export type Handler<C> = (c: C, params: Params) => unknown

interface Route<C> {
  method: string
  segments: string[]
  handler: Handler<C>
}

/** What a path and method found: the handler and its params, or the methods the path does allow (none: no such path). */
export type Match<C> = { handler: Handler<C>; params: Params } | { handler: null; allowed: string[] }

export class Router<C> {
  private readonly routes: Route<C>[] = []

  on(method: string, pattern: string, handler: Handler<C>): this {
    if (!pattern.startsWith('/')) throw new Error(`route pattern: expected a path starting with /, got '${pattern}'`)
    this.routes.push({ method, segments: pattern.split('/'), handler })
    return this
  }

  get(pattern: string, handler: Handler<C>): this {
    return this.on('GET', pattern, handler)
  }

  post(pattern: string, handler: Handler<C>): this {
    return this.on('POST', pattern, handler)
  }

  /** Whether any route (whatever its method) has this path. */
  has(path: string): boolean {
    const segments = path.split('/')
    return this.routes.some((r) => matchSegments(r.segments, segments) !== null)
  }

  match(method: string, path: string): Match<C> {
    const segments = path.split('/')
    const allowed: string[] = []
    for (const r of this.routes) {
      const params = matchSegments(r.segments, segments)
      if (!params) continue
      if (r.method === method) return { handler: r.handler, params: decodeParams(params) }
      if (!allowed.includes(r.method)) allowed.push(r.method)
    }
    return { handler: null, allowed }
  }

  /** Runs the matching handler; 404, or 405 with the Allow header, otherwise. */
  async dispatch(method: string, path: string, c: C): Promise<void> {
    const m = this.match(method, path)
    if (m.handler) {
      await m.handler(c, m.params)
      return
    }
    if (m.allowed.length === 0) throw notFound(method, path)
    throw new HttpError(405, `${method} not allowed on ${path} (use ${m.allowed.join(' or ')})`, { headers: { allow: m.allowed.join(', ') } })
  }
}

export function notFound(method: string, path: string): HttpError {
  return new HttpError(404, `no route ${method} ${path}`)
}

function matchSegments(pattern: string[], path: string[]): Params | null {
  if (pattern.length !== path.length) return null
  const params: Params = {}
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]
    if (p.startsWith(':')) {
      if (path[i] === '') return null
      params[p.slice(1)] = path[i]
    } else if (p !== path[i]) return null
  }
  return params
}

function decodeParams(raw: Params): Params {
  const out: Params = {}
  for (const k of Object.keys(raw)) out[k] = decodeSegment(raw[k])
  return out
}

/** One percent-encoded path segment, decoded; 400 on bad encoding (not a crash). */
export function decodeSegment(seg: string): string {
  try {
    return decodeURIComponent(seg)
  } catch {
    throw new HttpError(400, `path segment: expected valid percent-encoding, got '${seg.slice(0, 70)}'`)
  }
}
