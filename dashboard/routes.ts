/**
 * The dashboard's HTTP routes, mounted in the gateway's HTTP server:
 *
 *   GET  /  /index.html  /app.js  /app.css     the single-page app (no patient data)
 *   POST /api/dash/login {username, password}   → HttpOnly session cookie
 *   POST /api/dash/logout
 *   GET  /api/dash/me                           {userId, role, alarms}
 *   GET  /api/dash/patients                     ward list (consent per patient)
 *   GET  /api/dash/patients/:id/trends?from&to  HR/PR/SpO2, PVC/min and rhythm series
 *   GET  /api/dash/patients/:id/frames?limit    recent frames with verification state
 *   GET  /api/dash/patients/:id/fhir?from&to&type   FHIR R4 Bundle, streamed (fhir-export.ts)
 *   GET  /api/dash/patients/:id/consent         grants
 *   POST /api/dash/patients/:id/consent         {action: grant|revoke, clinicianId, scope, expiresMs}
 *   GET  /api/dash/clinicians
 *   GET  /api/dash/devices    POST /api/dash/devices    POST /api/dash/devices/:id/revoke
 *   GET  /api/dash/proof/:leafHash              the ledger's proof bundle (with the frame bytes)
 *   GET  /api/dash/producer-key                 the ledger producer's Ed25519 key (hex)
 *   GET  /api/dash/live[?patients=a,b]          Server-Sent Events: live frames, consent changes
 *
 * Everything under /api/dash except login needs a session; the app shell is
 * public because it holds no data. Every state-changing request under /api/dash
 * (login and logout included) must come from the dashboard's own origin with a
 * JSON content type (http/same-origin.ts): the cookie alone proves nothing, since
 * another origin of the same site can make the browser send it. Errors are JSON {error}.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { HttpError, errorMessage, sendError, type ErrorMapper } from '../http/errors.ts'
import { readJson } from '../http/body.ts'
import { sendJson, sendFile } from '../http/respond.ts'
import { Router, type Params } from '../http/router.ts'
import { contextOf, type RequestContext } from '../http/server.ts'
import { cookieSession, readCookie, requireSession } from '../http/auth.ts'
import { assertSameOrigin } from '../http/same-origin.ts'
import { DashboardError, type Actor, type DashboardDeps, type DeviceRegistration } from './deps.ts'
import { SessionStore, SESSION_COOKIE, DASHBOARD_SESSION, sessionCookie, clearedCookie, type SessionData } from './session.ts'
import { streamFhirBundle } from './fhir-export.ts'
import { getWebAssets, type WebAssets } from './build.ts'
import { liveStreams } from './live.ts'
import { patientParam, stringField, timeRange } from './params.ts'

export interface AlarmThresholds {
  spo2Low: number
  hrLow: number
  hrHigh: number
}

export const DEFAULT_ALARMS: AlarmThresholds = { spo2Low: 90, hrLow: 40, hrHigh: 130 }

export interface DashboardOptions {
  /** Alarm thresholds sent to the browser (default SpO2 < 90 %, HR outside 40–130). */
  alarms?: Partial<AlarmThresholds>
  /** Set the cookie's Secure flag; default: when the login request came over TLS (the gateway's HTTPS listener). */
  secureCookie?: boolean
  /** The session store to keep dashboard cookie sessions in (kind 'dashboard'); the gateway's own when mounted on one. */
  sessions?: SessionStore<SessionData>
  /** Longest export range (default 24 h). */
  maxExportMs?: number
  /** FHIR exports at once (default 2); one more gets 503. Each streams in slices between ingest work. */
  maxConcurrentExports?: number
  /** SSE keep-alive comment interval (default 15 s), so proxies keep the stream open. */
  keepAliveMs?: number
  log?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void
}

export type DashboardHandler = ((req: IncomingMessage, res: ServerResponse) => Promise<boolean>) & {
  /** Ends all live streams (call before closing the HTTP server). */
  close(): void
}

const BODY = { maxBytes: 16 * 1024, requireJsonType: true }
const HEX64_RE = /^[0-9a-f]{64}$/
/** The app shell's files; none holds patient data, so they are public. */
const SHELL: Record<string, keyof WebAssets> = { '/': 'html', '/index.html': 'html', '/app.js': 'js', '/app.css': 'css' }
// The app needs nothing from other origins; inline scripts are not allowed.
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"

const STATUS_OF: Record<DashboardError['code'], number> = { forbidden: 403, 'not-found': 404, invalid: 400, conflict: 409, unavailable: 503, throttled: 429 }
const dashboardStatus: ErrorMapper = (err) => {
  if (!(err instanceof DashboardError)) return undefined
  const retry = err.retryAfterMs === undefined ? {} : { headers: { 'retry-after': String(Math.ceil(err.retryAfterMs / 1000)) } }
  return new HttpError(STATUS_OF[err.code], err.message, retry)
}

/** A request past the session wall: who is asking. */
type Ctx = RequestContext & { actor: Actor }

export function createDashboardRoutes(deps: DashboardDeps, o: DashboardOptions = {}): DashboardHandler {
  const sessions = o.sessions ?? new SessionStore<SessionData>()
  const actorOf = requireSession(cookieSession<Actor>(sessions, SESSION_COOKIE, DASHBOARD_SESSION), 'log in first')
  const alarms: AlarmThresholds = { ...DEFAULT_ALARMS, ...o.alarms }
  const maxExportMs = o.maxExportMs ?? 24 * 3600_000
  const maxExports = o.maxConcurrentExports ?? 2
  /** Running exports, stopped when the dashboard closes (they would hold the HTTP server's close). */
  const exports = new Set<AbortController>()
  const live = liveStreams(deps, { keepAliveMs: o.keepAliveMs ?? 15_000 })
  let assets: Promise<WebAssets> | null = null
  const web = (): Promise<WebAssets> => (assets ??= getWebAssets())

  /** Login and logout: the only API routes before the session wall. */
  const open = new Router<RequestContext>()
    .post('/api/dash/login', async ({ req, res }) => {
      const b = await readJson(req, BODY)
      const actor = await deps.authenticateUser(stringField(b, 'username', 64), stringField(b, 'password', 256), req.socket.remoteAddress)
      if (!actor) {
        o.log?.('warn', 'dashboard login refused', { username: String(b.username).slice(0, 64) })
        throw new HttpError(401, 'wrong username or password')
      }
      sessions.destroy(readCookie(req.headers.cookie, SESSION_COOKIE)) // a new login never reuses an earlier token (session fixation)
      // Idle expiry: an open ward screen stays logged in, one left alone for a shift does not.
      const token = sessions.create(actor, { kind: DASHBOARD_SESSION })
      o.log?.('info', 'dashboard login', { userId: actor.userId, role: actor.role })
      sendJson(res, 200, { userId: actor.userId, role: actor.role }, { 'set-cookie': sessionCookie(token, o.secureCookie ?? (req.socket as { encrypted?: boolean }).encrypted === true) })
    })
    .post('/api/dash/logout', ({ req, res }) => {
      sessions.destroy(readCookie(req.headers.cookie, SESSION_COOKIE))
      sendJson(res, 200, { ok: true }, { 'set-cookie': clearedCookie() })
    })

  const api = new Router<Ctx>()
    .get('/api/dash/me', ({ res, actor }) => sendJson(res, 200, { userId: actor.userId, role: actor.role, alarms, now: Date.now() }))
    .get('/api/dash/patients', async ({ res, actor }) => sendJson(res, 200, await deps.listPatients(actor)))
    .get('/api/dash/clinicians', async ({ res, actor }) => sendJson(res, 200, await deps.listClinicians(actor)))
    .get('/api/dash/producer-key', async ({ res }) => sendJson(res, 200, { publicKey: await deps.producerPublicKey() }))
    .get('/api/dash/devices', async ({ res, actor }) => sendJson(res, 200, await deps.listDevices(actor)))
    .post('/api/dash/devices', async ({ req, res, actor }) => sendJson(res, 201, await deps.registerDevice(actor, deviceRegistration(await readJson(req, BODY)))))
    .post('/api/dash/devices/:id/revoke', async ({ res, actor }, p) => {
      await deps.revokeDevice(actor, p.id)
      sendJson(res, 200, { ok: true })
    })
    .get('/api/dash/live', ({ req, res, actor, query }) => {
      const named = query.get('patients')
      const ids = named ? named.split(',').filter(Boolean).map(patientParam) : null
      if (ids && ids.length > 64) throw new HttpError(400, `patients: expected 1..64 comma-separated patient IDs, got ${ids.length}`)
      return live.open(req, res, actor, ids)
    })
    .get('/api/dash/proof/:hash', async ({ res, actor }, p) => {
      const h = p.hash.toLowerCase()
      if (!HEX64_RE.test(h)) throw new HttpError(400, `leaf hash: expected 64 hex characters, got '${p.hash.slice(0, 70)}'`)
      sendJson(res, 200, await deps.proof(actor, h))
    })
    .get('/api/dash/patients/:id/trends', async ({ res, actor, query }, p) => {
      const patientId = patientParam(p.id)
      const { fromMs, toMs } = timeRange(query, Date.now())
      sendJson(res, 200, await deps.trends(actor, patientId, fromMs, toMs))
    })
    .get('/api/dash/patients/:id/frames', async ({ res, actor, query }, p) => {
      const patientId = patientParam(p.id)
      const limit = Number(query.get('limit') ?? 50)
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new HttpError(400, `limit: expected an integer 1..500, got '${query.get('limit')}'`)
      sendJson(res, 200, await deps.recentFrames(actor, patientId, limit))
    })
    .get('/api/dash/patients/:id/fhir', (c, p) => exportFhir(c, patientParam(p.id)))
    .get('/api/dash/patients/:id/consent', async ({ res, actor }, p) => sendJson(res, 200, await deps.consentState(actor, patientParam(p.id))))
    .post('/api/dash/patients/:id/consent', changeConsent)

  function deviceRegistration(b: Record<string, unknown>): DeviceRegistration {
    const profile = b.profile
    if (profile !== 'se' && profile !== 'bare') throw new HttpError(400, `profile: expected 'se' or 'bare', got ${JSON.stringify(profile)}`)
    const patientId = patientParam(stringField(b, 'patientId', 64))
    return profile === 'se'
      ? { patientId, profile, publicKey: stringField(b, 'publicKey', 130) }
      : { patientId, profile, deviceId: stringField(b, 'deviceId', 17), secret: stringField(b, 'secret', 64) }
  }

  async function changeConsent({ req, res, actor }: Ctx, p: Params): Promise<void> {
    const patientId = patientParam(p.id)
    const b = await readJson(req, BODY)
    const clinicianId = stringField(b, 'clinicianId', 64)
    const scope = b.scope === undefined ? 'live' : stringField(b, 'scope', 32)
    if (b.action === 'grant') {
      const exp = b.expiresMs
      if (exp !== undefined && exp !== null && !(typeof exp === 'number' && Number.isSafeInteger(exp) && exp > 0)) throw new HttpError(400, `expiresMs: expected ms since epoch or null, got ${JSON.stringify(exp)}`)
      await deps.grantConsent(actor, patientId, clinicianId, scope, (exp as number | null | undefined) ?? null)
    } else if (b.action === 'revoke') {
      await deps.revokeConsent(actor, patientId, clinicianId, scope)
    } else throw new HttpError(400, `action: expected 'grant' or 'revoke', got ${JSON.stringify(b.action)}`)
    sendJson(res, 200, await deps.consentState(actor, patientId))
  }

  async function exportFhir({ res, actor, query }: Ctx, patientId: string): Promise<void> {
    const { fromMs, toMs } = timeRange(query, Date.now())
    if (toMs - fromMs > maxExportMs) throw new HttpError(400, `range of ${Math.round((toMs - fromMs) / 60000)} min exceeds the ${Math.round(maxExportMs / 60000)} min export limit`)
    const type = query.get('type') ?? 'collection'
    if (type !== 'collection' && type !== 'transaction') throw new HttpError(400, `type: expected collection or transaction, got '${type}'`)
    // Each export takes turns with ingest on the event loop; a few at once is all the ward needs.
    if (exports.size >= maxExports) throw new HttpError(503, `${exports.size} FHIR exports are running (the limit): try again when one is done`)
    const patient = (await deps.listPatients(actor)).find((p) => p.patientId === patientId)
    const stop = new AbortController()
    exports.add(stop)
    try {
      const pages = await deps.framePages(actor, patientId, fromMs, toMs)
      const alarms = deps.alarms ? await deps.alarms.list(actor, { all: true, patientId }) : []
      const r = await streamFhirBundle(res, pages, {
        patientId, patientName: patient?.name, fromMs, toMs, type, signal: stop.signal, calibrations: deps.spo2Calibrations, alarms,
        headers: { 'content-disposition': `attachment; filename="${patientId}-${fromMs}-${toMs}.fhir.json"` },
      })
      if (r.skipped) o.log?.('warn', 'FHIR export skipped undecodable frames', { patientId, skipped: r.skipped })
      if (r.aborted) o.log?.('info', 'FHIR export stopped before the end', { patientId, frames: r.frames })
    } finally {
      exports.delete(stop)
    }
  }

  async function serveShell(c: RequestContext): Promise<boolean> {
    const name = SHELL[c.path]
    if (!name || (c.method !== 'GET' && c.method !== 'HEAD')) return false
    sendFile(c.res, (await web())[name], { 'content-security-policy': CSP })
    return true
  }

  const handler = (async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const c = contextOf(req, res)
    try {
      if (c.path !== '/api/dash' && !c.path.startsWith('/api/dash/')) return await serveShell(c)
      // Before the session and the route: a cross-site request learns nothing and changes nothing.
      assertSameOrigin(req)
      if (open.has(c.path)) await open.dispatch(c.method, c.path, c)
      else await api.dispatch(c.method, c.path, { ...c, actor: actorOf(req) })
    } catch (err) {
      sendError(res, err, { mapError: dashboardStatus, onInternal: (e) => o.log?.('warn', 'dashboard route failed', { path: c.path, error: errorMessage(e) }) })
    }
    return true
  }) as DashboardHandler
  handler.close = () => {
    live.close()
    for (const e of exports) e.abort()
  }
  return handler
}
