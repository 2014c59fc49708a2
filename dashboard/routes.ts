/**
 * The dashboard's HTTP routes, mounted in the gateway's HTTP server:
 *
 *   GET  /  /index.html  /app.js  /app.css     the single-page app (no patient data)
 *   POST /api/dash/login {username, password}   → HttpOnly session cookie
 *   POST /api/dash/logout
 *   GET  /api/dash/me                           {userId, role, alarms}
 *   GET  /api/dash/patients                     ward list (consent per patient)
 *   GET  /api/dash/patients/:id/trends?from&to  HR/PR/SpO2 series
 *   GET  /api/dash/patients/:id/frames?limit    recent frames with verification state
 *   GET  /api/dash/patients/:id/fhir?from&to&type   FHIR R4 Bundle
 *   GET  /api/dash/patients/:id/consent         grants
 *   POST /api/dash/patients/:id/consent         {action: grant|revoke, clinicianId, scope, expiresMs}
 *   GET  /api/dash/clinicians
 *   GET  /api/dash/devices    POST /api/dash/devices    POST /api/dash/devices/:id/revoke
 *   GET  /api/dash/proof/:leafHash              the ledger's proof bundle (with the frame bytes)
 *   GET  /api/dash/producer-key                 the ledger producer's Ed25519 key (hex)
 *   GET  /api/dash/live[?patients=a,b]          Server-Sent Events: live frames, consent changes
 *
 * Everything under /api/dash except login needs a session; the app shell is
 * public because it holds no data. Errors are JSON {error}.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { DashboardError, type Actor, type DashboardDeps, type DeviceRegistration, type LiveSubscription } from './deps.ts'
import { SessionStore, SESSION_COOKIE, readCookie, sessionCookie, clearedCookie } from './session.ts'
import { buildFhirBundle, type ExportFrame } from './fhir.ts'
import { getWebAssets, type WebAssets } from './build.ts'
import { decodeFrame } from '../protocol/node/decode.ts'
import { leafHashOf } from './leaf-hash.ts'
import { VitalsTracker } from './vitals.ts'

export interface AlarmThresholds {
  spo2Low: number
  hrLow: number
  hrHigh: number
}

export const DEFAULT_ALARMS: AlarmThresholds = { spo2Low: 90, hrLow: 40, hrHigh: 130 }

export interface DashboardOptions {
  /** Alarm thresholds sent to the browser (default SpO2 < 90 %, HR outside 40–130). */
  alarms?: Partial<AlarmThresholds>
  /** Set the cookie's Secure flag (when served over HTTPS). */
  secureCookie?: boolean
  sessions?: SessionStore
  /** Longest export range (default 24 h): a FHIR bundle is built in memory. */
  maxExportMs?: number
  /** SSE keep-alive comment interval (default 15 s), so proxies keep the stream open. */
  keepAliveMs?: number
  log?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void
}

export type DashboardHandler = ((req: IncomingMessage, res: ServerResponse) => Promise<boolean>) & {
  /** Ends all live streams (call before closing the HTTP server). */
  close(): void
}

const MAX_BODY = 16 * 1024
const PATIENT_ID_RE = /^[A-Za-z0-9._-]{1,64}$/
const HEX64_RE = /^[0-9a-f]{64}$/

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message)
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const ct = req.headers['content-type'] ?? ''
    if (!ct.startsWith('application/json')) return reject(new HttpError(415, `expected content-type application/json, got ${ct || 'none'}`))
    const chunks: Buffer[] = []
    let n = 0
    req.on('data', (c: Buffer) => {
      n += c.length
      if (n > MAX_BODY) {
        reject(new HttpError(413, `body over ${MAX_BODY} bytes`))
        req.destroy()
      } else chunks.push(c)
    })
    req.on('end', () => {
      try {
        const v = JSON.parse(Buffer.concat(chunks).toString('utf8'))
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object')
        resolve(v as Record<string, unknown>)
      } catch {
        reject(new HttpError(400, 'body: expected a JSON object'))
      }
    })
    req.on('error', reject)
  })
}

function str(b: Record<string, unknown>, key: string, max = 256): string {
  const v = b[key]
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new HttpError(400, `${key}: expected a string of 1..${max} characters, got ${v === undefined ? 'nothing' : typeof v}`)
  return v
}

function timeParam(q: URLSearchParams, key: string, dflt: number): number {
  const v = q.get(key)
  if (v === null || v === '') return dflt
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v)
  if (!Number.isFinite(n)) throw new HttpError(400, `${key}: expected ms since epoch or an ISO 8601 time, got '${v}'`)
  return n
}

function decodeSegment(seg: string): string {
  try {
    return decodeURIComponent(seg)
  } catch {
    throw new HttpError(400, `path segment: expected valid percent-encoding, got '${seg.slice(0, 70)}'`)
  }
}

function patientParam(id: string): string {
  const p = decodeSegment(id)
  if (!PATIENT_ID_RE.test(p)) throw new HttpError(400, `patient ID: expected 1-64 characters [A-Za-z0-9._-], got '${p.slice(0, 70)}'`)
  return p
}

const STATUS_OF: Record<DashboardError['code'], number> = { forbidden: 403, 'not-found': 404, invalid: 400, conflict: 409, unavailable: 503 }

export function createDashboardRoutes(deps: DashboardDeps, o: DashboardOptions = {}): DashboardHandler {
  const sessions = o.sessions ?? new SessionStore()
  const alarms: AlarmThresholds = { ...DEFAULT_ALARMS, ...o.alarms }
  const maxExportMs = o.maxExportMs ?? 24 * 3600_000
  const keepAliveMs = o.keepAliveMs ?? 15_000
  const streams = new Set<() => void>()
  let closing = false
  let assets: Promise<WebAssets> | null = null
  const web = (): Promise<WebAssets> => (assets ??= getWebAssets())

  async function serveStatic(res: ServerResponse, path: string): Promise<boolean> {
    const a = await web()
    const file = path === '/' || path === '/index.html' ? a.html : path === '/app.js' ? a.js : path === '/app.css' ? a.css : null
    if (!file) return false
    res.writeHead(200, {
      'content-type': file.type,
      'content-length': file.body.length,
      'cache-control': 'no-cache',
      etag: file.etag,
      'x-content-type-options': 'nosniff',
      // The app needs nothing from other origins; inline scripts are not allowed.
      'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    })
    res.end(file.body)
    return true
  }

  function actorOf(req: IncomingMessage): Actor {
    const a = sessions.get(readCookie(req.headers.cookie, SESSION_COOKIE))
    if (!a) throw new HttpError(401, 'log in first')
    return a
  }

  /**
   * One Server-Sent Events stream per browser tab for all the patients it may see
   * (or those named in ?patients=). Events: `frame` (decoded frame + vitals),
   * `subscribed` {patientId}, `end` {patientId, reason} when consent goes,
   * `denied` {patientId}. A grant made while the stream is open subscribes the
   * patient on the spot, so a new tile appears without a reload.
   */
  async function live(req: IncomingMessage, res: ServerResponse, actor: Actor, q: URLSearchParams): Promise<void> {
    if (closing) throw new HttpError(503, 'dashboard is shutting down')
    const named = q.get('patients')
    const ids = named ? named.split(',').filter(Boolean).map(patientParam) : null
    if (ids && ids.length > 64) throw new HttpError(400, `patients: expected 1..64 comma-separated patient IDs, got ${ids.length}`)
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' })
    res.flushHeaders()
    const subs = new Map<string, LiveSubscription>()
    let closed = false
    const event = (name: string, data: unknown): void => {
      if (!closed) res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`)
    }
    const end = (): void => {
      if (closed) return
      closed = true
      clearInterval(ka)
      unConsent()
      streams.delete(end)
      for (const s of subs.values()) s.close()
      res.end()
    }
    const ka = setInterval(() => !closed && res.write(': keep-alive\n\n'), keepAliveMs)
    streams.add(end)
    req.on('close', end)
    res.on('error', end)
    const subscribe = async (patientId: string, quiet: boolean): Promise<void> => {
      if (closed || subs.has(patientId)) return
      try {
        const s = await deps.subscribeLive(
          actor,
          patientId,
          (f) => {
            // The red channel only feeds SpO2 (already in vitals); the pleth is drawn from IR.
            const { red: _red, ...payload } = f.payload
            event('frame', { patientId: f.patientId, leafHash: f.leafHash, receivedMs: f.receivedMs, vitals: f.vitals, ...payload })
          },
          (reason) => {
            subs.delete(patientId)
            event('end', { patientId, reason })
          },
        )
        if (closed || subs.has(patientId)) return s.close()
        subs.set(patientId, s)
        event('subscribed', { patientId })
      } catch (err) {
        if (!(err instanceof DashboardError)) throw err
        if (!quiet) event('denied', { patientId, reason: err.code, message: err.message })
      }
    }
    const unConsent = deps.onConsentChange((c) => {
      if (closed || (c.clinicianId !== undefined && c.clinicianId !== actor.userId)) return
      if (ids && !ids.includes(c.patientId)) return
      // A grant for this user: start streaming (revocations end through subscribeLive's onEnd).
      void subscribe(c.patientId, true).catch(() => {})
    })
    const initial = ids ?? (await deps.listPatients(actor)).filter((p) => p.consented).map((p) => p.patientId)
    for (const patientId of initial) await subscribe(patientId, false)
    event('ready', { patients: [...subs.keys()] })
  }

  async function exportFhir(res: ServerResponse, actor: Actor, patientId: string, q: URLSearchParams): Promise<void> {
    const now = Date.now()
    const toMs = timeParam(q, 'to', now)
    const fromMs = timeParam(q, 'from', toMs - 3600_000)
    if (toMs < fromMs) throw new HttpError(400, `to (${toMs}) is before from (${fromMs})`)
    if (toMs - fromMs > maxExportMs) throw new HttpError(400, `range of ${Math.round((toMs - fromMs) / 60000)} min exceeds the ${Math.round(maxExportMs / 60000)} min export limit`)
    const type = q.get('type') ?? 'collection'
    if (type !== 'collection' && type !== 'transaction') throw new HttpError(400, `type: expected collection or transaction, got '${type}'`)
    const patient = (await deps.listPatients(actor)).find((p) => p.patientId === patientId)
    const raw = await deps.frames(actor, patientId, fromMs, toMs)
    const frames: ExportFrame[] = []
    let skipped = 0
    // Frames without board-computed values get the gateway's (signal/ over the raw samples,
    // oldest first so the streaming monitors see each device's signal in order).
    const vitals = new VitalsTracker()
    for (const bytes of raw) {
      try {
        const p = decodeFrame(bytes).payload
        const v = vitals.add(patientId, p)
        const fill = (k: 'hr' | 'pr' | 'spo2') => (p[k] ?? (v[k] ? { value: v[k]!.value, quality: v[k]!.quality } : undefined))
        const payload = { ...p, hr: fill('hr'), pr: fill('pr'), spo2: fill('spo2') }
        for (const k of ['hr', 'pr', 'spo2'] as const) if (payload[k] === undefined) delete payload[k]
        frames.push({ payload, frameHash: leafHashOf(bytes) })
      } catch {
        skipped++ // stored frames were verified at ingest; a frame that no longer decodes is left out, not guessed at
      }
    }
    if (skipped) o.log?.('warn', 'FHIR export skipped undecodable frames', { patientId, skipped })
    const bundle = buildFhirBundle(frames, { patientId, patientName: patient?.name, fromMs, toMs, type })
    send(res, 200, bundle, { 'content-type': 'application/fhir+json; charset=utf-8', 'content-disposition': `attachment; filename="${patientId}-${fromMs}-${toMs}.fhir.json"` })
  }

  async function api(req: IncomingMessage, res: ServerResponse, path: string, q: URLSearchParams): Promise<void> {
    const m = req.method ?? 'GET'
    if (path === '/api/dash/login') {
      if (m !== 'POST') throw new HttpError(405, 'use POST')
      const b = await readJson(req)
      const actor = await deps.authenticateUser(str(b, 'username', 64), str(b, 'password', 256))
      if (!actor) {
        o.log?.('warn', 'dashboard login refused', { username: String(b.username).slice(0, 64) })
        throw new HttpError(401, 'wrong username or password')
      }
      const old = readCookie(req.headers.cookie, SESSION_COOKIE)
      sessions.destroy(old) // a new login never reuses an earlier token (session fixation)
      const token = sessions.create(actor)
      o.log?.('info', 'dashboard login', { userId: actor.userId, role: actor.role })
      return send(res, 200, { userId: actor.userId, role: actor.role }, { 'set-cookie': sessionCookie(token, o.secureCookie ?? false) })
    }
    if (path === '/api/dash/logout') {
      if (m !== 'POST') throw new HttpError(405, 'use POST')
      sessions.destroy(readCookie(req.headers.cookie, SESSION_COOKIE))
      return send(res, 200, { ok: true }, { 'set-cookie': clearedCookie() })
    }
    const actor = actorOf(req)
    const seg = path.slice('/api/dash/'.length).split('/')
    const get = m === 'GET'
    const post = m === 'POST'
    if (seg.length === 1) {
      switch (seg[0]) {
        case 'me':
          if (get) return send(res, 200, { userId: actor.userId, role: actor.role, alarms, now: Date.now() })
          break
        case 'patients':
          if (get) return send(res, 200, await deps.listPatients(actor))
          break
        case 'clinicians':
          if (get) return send(res, 200, await deps.listClinicians(actor))
          break
        case 'producer-key':
          if (get) return send(res, 200, { publicKey: await deps.producerPublicKey() })
          break
        case 'devices':
          if (get) return send(res, 200, await deps.listDevices(actor))
          if (post) {
            const b = await readJson(req)
            const profile = b.profile
            if (profile !== 'se' && profile !== 'bare') throw new HttpError(400, `profile: expected 'se' or 'bare', got ${JSON.stringify(profile)}`)
            const reg: DeviceRegistration = profile === 'se'
              ? { patientId: patientParam(str(b, 'patientId', 64)), profile, publicKey: str(b, 'publicKey', 130) }
              : { patientId: patientParam(str(b, 'patientId', 64)), profile, deviceId: str(b, 'deviceId', 17), secret: str(b, 'secret', 64) }
            return send(res, 201, await deps.registerDevice(actor, reg))
          }
          break
        case 'live':
          if (get) return live(req, res, actor, q)
          break
        default:
          throw new HttpError(404, `no route ${path}`)
      }
      throw new HttpError(405, `${m} not allowed on ${path}`)
    }
    if (seg[0] === 'devices' && seg.length === 3 && seg[2] === 'revoke') {
      if (!post) throw new HttpError(405, 'use POST')
      await deps.revokeDevice(actor, decodeSegment(seg[1]))
      return send(res, 200, { ok: true })
    }
    if (seg[0] === 'proof' && seg.length === 2) {
      if (!get) throw new HttpError(405, 'use GET')
      const h = seg[1].toLowerCase()
      if (!HEX64_RE.test(h)) throw new HttpError(400, `leaf hash: expected 64 hex characters, got '${seg[1].slice(0, 70)}'`)
      return send(res, 200, await deps.proof(actor, h))
    }
    if (seg[0] === 'patients' && seg.length === 3) {
      const patientId = patientParam(seg[1])
      switch (seg[2]) {
        case 'trends':
          if (get) {
            const toMs = timeParam(q, 'to', Date.now())
            const fromMs = timeParam(q, 'from', toMs - 3600_000)
            if (toMs < fromMs) throw new HttpError(400, `to (${toMs}) is before from (${fromMs})`)
            return send(res, 200, await deps.trends(actor, patientId, fromMs, toMs))
          }
          break
        case 'frames':
          if (get) {
            const limit = Number(q.get('limit') ?? 50)
            if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new HttpError(400, `limit: expected an integer 1..500, got '${q.get('limit')}'`)
            return send(res, 200, await deps.recentFrames(actor, patientId, limit))
          }
          break
        case 'fhir':
          if (get) return exportFhir(res, actor, patientId, q)
          break
        case 'consent':
          if (get) return send(res, 200, await deps.consentState(actor, patientId))
          if (post) {
            const b = await readJson(req)
            const clinicianId = str(b, 'clinicianId', 64)
            const scope = b.scope === undefined ? 'live' : str(b, 'scope', 32)
            if (b.action === 'grant') {
              const exp = b.expiresMs
              if (exp !== undefined && exp !== null && !(typeof exp === 'number' && Number.isSafeInteger(exp) && exp > 0)) throw new HttpError(400, `expiresMs: expected ms since epoch or null, got ${JSON.stringify(exp)}`)
              await deps.grantConsent(actor, patientId, clinicianId, scope, (exp as number | null | undefined) ?? null)
            } else if (b.action === 'revoke') {
              await deps.revokeConsent(actor, patientId, clinicianId, scope)
            } else throw new HttpError(400, `action: expected 'grant' or 'revoke', got ${JSON.stringify(b.action)}`)
            return send(res, 200, await deps.consentState(actor, patientId))
          }
          break
        default:
          throw new HttpError(404, `no route ${path}`)
      }
      throw new HttpError(405, `${m} not allowed on ${path}`)
    }
    throw new HttpError(404, `no route ${path}`)
  }

  const handler = (async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid')
    const path = url.pathname
    try {
      if (path === '/api/dash' || path.startsWith('/api/dash/')) {
        await api(req, res, path, url.searchParams)
        return true
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') return false
      return await serveStatic(res, path)
    } catch (err) {
      if (res.headersSent) {
        res.destroy()
        return true
      }
      if (err instanceof HttpError) send(res, err.status, { error: err.message })
      else if (err instanceof DashboardError) send(res, STATUS_OF[err.code], { error: err.message })
      else {
        o.log?.('warn', 'dashboard route failed', { path, error: (err as Error).message })
        send(res, 500, { error: 'internal error' })
      }
      return true
    }
  }) as DashboardHandler
  handler.close = () => {
    closing = true
    for (const end of [...streams]) end()
  }
  return handler
}
