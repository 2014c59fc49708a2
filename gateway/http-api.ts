/**
 * The HTTP side (node:http, JSON):
 *   GET  /healthz                   liveness + readiness (503 while shutting down)
 *   GET  /api/time                  {"now": ms}, unauthenticated: boards sync before CONNECT
 *   GET  /metrics                   Prometheus text format
 *   GET  /api/devices               admin: list             (Authorization: Bearer <admin token>)
 *   POST /api/devices               admin: register {profile, publicKey|secret+id, patient}
 *   GET  /api/devices/:id           admin: show
 *   POST /api/devices/:id/revoke    admin: revoke and disconnect now
 *   POST /api/users                 admin: add a user {username, role, password}
 *   GET  /api/users                 admin: list users
 *   POST /api/login                 {username, password} -> {token, username, role, expiresAt} (dashboard session)
 *   POST /api/logout                Authorization: Bearer <session token>
 *   GET  /api/access?patient=P[&scope=live]   session: may this user see patient P? (consent)
 *   (admin routes also accept the session token of a user with role admin)
 *   POST /api/consent               a patient-signed consent record (CBOR body, or JSON {"record": base64});
 *                                   no token: the patient's signature is the authority, and the
 *                                   patient must be one the registry knows (no ledger spam)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { timingSafeEqual, createHash } from 'node:crypto'
import { publicView, RegistryError, type DeviceRegistry } from './registry.ts'
import { registerDevice, type RegistrationCodec } from './devices.ts'
import type { Registry } from './metrics.ts'
import type { Logger } from './log.ts'
import type { UserAuth } from './user-auth.ts'

export interface HttpApiDeps {
  registry: DeviceRegistry
  codec: RegistrationCodec
  metrics: Registry
  adminToken: string
  log: Logger
  now: () => number
  health: () => { ok: boolean; [k: string]: unknown }
  /** Called after a revocation is committed: disconnect the device now. */
  onRevoke(deviceId: string): boolean
  /** Dashboard logins and consent checks (absent: /api/login answers 501). */
  users?: UserAuth
  /** Appends a consent record to the ledger (absent: the route answers 501). */
  appendConsent?(record: Uint8Array): Promise<{ leafIndex: number; patientId: string; action: string }>
  /** Patient ID a consent record is about, or throws when the record does not parse/verify. */
  consentPatient?(record: Uint8Array): string
  /**
   * Extra request handlers (e.g. the dashboard) tried in order before the API routes;
   * one that answers resolves true. The array may grow after the server starts.
   */
  mounts?: HttpMount[]
}

/** A mounted handler: resolves true when it answered the request, false to pass it on. */
export type HttpMount = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>

const MAX_BODY = 64 * 1024

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message)
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest()

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body) + '\n'
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
  res.end(text)
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let size = 0
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > MAX_BODY) {
        reject(new HttpError(413, `body over ${MAX_BODY} bytes`))
        req.destroy()
        return
      }
      chunks.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readBody(req)
  let v: unknown
  try {
    v = JSON.parse(body.toString('utf8') || '{}')
  } catch (err) {
    throw new HttpError(400, `invalid JSON body: ${(err as Error).message}`)
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'invalid JSON body: expected a JSON object')
  return v as Record<string, unknown>
}

export function createHttpApi(d: HttpApiDeps): Server {
  const want = digest(d.adminToken)
  const bearer = (req: IncomingMessage): string | null => {
    const h = req.headers.authorization
    return h && h.startsWith('Bearer ') ? h.slice(7).trim() : null
  }
  const isAdmin = (req: IncomingMessage): boolean => {
    const b = bearer(req)
    if (!b) return false
    // Compare digests: constant time and independent of the presented token's length.
    if (timingSafeEqual(digest(b), want)) return true
    return d.users?.session(b)?.role === 'admin'
  }
  const userSession = (req: IncomingMessage) => {
    const b = bearer(req)
    const s = b ? d.users?.session(b) : null
    if (!s) throw new HttpError(401, 'login required (Authorization: Bearer <session token from POST /api/login>)')
    return s
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gateway')
    const path = url.pathname
    const method = req.method ?? 'GET'
    if (path === '/healthz' && method === 'GET') {
      const h = d.health()
      return send(res, h.ok ? 200 : 503, h)
    }
    if (path === '/api/time' && method === 'GET') return send(res, 200, { now: d.now() })
    if (path === '/metrics' && method === 'GET') {
      const text = d.metrics.render()
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
      res.end(text)
      return
    }
    if (!path.startsWith('/api/')) throw new HttpError(404, `no route ${method} ${path}`)
    if (path === '/api/consent' && method === 'POST') return postConsent(req, res)
    if (path === '/api/login' && method === 'POST') {
      if (!d.users) throw new HttpError(501, 'user logins are not enabled')
      const b = await readJson(req)
      if (typeof b.username !== 'string' || typeof b.password !== 'string') throw new HttpError(400, 'expected {"username": string, "password": string}')
      const r = await d.users.login(b.username, b.password)
      if (!r) {
        d.log.log('warn', 'login refused', { username: b.username, reason: 'bad-user-credentials', remote: req.socket.remoteAddress })
        throw new HttpError(401, 'bad username or password')
      }
      d.log.log('info', 'user logged in', { username: r.session.username, role: r.session.role, via: 'http' })
      return send(res, 200, { token: r.token, ...r.session })
    }
    if (path === '/api/logout' && method === 'POST') {
      const b = bearer(req)
      if (b) d.users?.logout(b)
      return send(res, 200, { ok: true })
    }
    if (path === '/api/access' && method === 'GET') {
      const s = userSession(req)
      const patient = url.searchParams.get('patient')
      const scope = url.searchParams.get('scope') ?? 'live'
      if (!patient) throw new HttpError(400, 'expected ?patient=<patient ID>')
      return send(res, 200, { username: s.username, role: s.role, patient, scope, allowed: d.users!.canView(s.username, patient, scope, d.now()) })
    }
    if (!isAdmin(req)) {
      d.log.log('warn', 'admin API refused', { path, reason: 'bad-or-missing-token', remote: req.socket.remoteAddress })
      res.setHeader('www-authenticate', 'Bearer')
      throw new HttpError(401, 'admin token required (Authorization: Bearer <token>)')
    }
    const m = /^\/api\/devices(?:\/([^/]+)(\/revoke)?)?$/.exec(path)
    if (m) {
      const [, id, revoke] = m
      if (!id && method === 'GET') return send(res, 200, { devices: d.registry.listDevices().map(publicView) })
      if (!id && method === 'POST') {
        const dev = registerDevice(d.registry, d.codec, await readJson(req))
        d.log.log('info', 'device registered', { deviceId: dev.id, profile: dev.profile, patient: dev.patient, via: 'http' })
        return send(res, 201, publicView(dev))
      }
      if (id && !revoke && method === 'GET') {
        const dev = d.registry.getDevice(decodeURIComponent(id))
        if (!dev) throw new HttpError(404, `device ${id} is not registered`)
        return send(res, 200, publicView(dev))
      }
      if (id && revoke && method === 'POST') {
        const devId = decodeURIComponent(id)
        const changed = d.registry.revoke(devId)
        const disconnected = d.onRevoke(devId)
        d.log.log('info', 'device revoked', { deviceId: devId, via: 'http', disconnected })
        return send(res, 200, { id: devId, revoked: true, alreadyRevoked: !changed, disconnected })
      }
    }
    if (path === '/api/users' && method === 'POST') {
      const b = await readJson(req)
      const u = d.registry.addUser(String(b.username ?? ''), b.role as 'clinician', String(b.password ?? ''))
      return send(res, 201, u)
    }
    if (path === '/api/users' && method === 'GET') return send(res, 200, { users: d.registry.listUsers() })
    throw new HttpError(404, `no route ${method} ${path}`)
  }

  async function postConsent(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!d.appendConsent || !d.consentPatient) throw new HttpError(501, 'this gateway has no consent ledger')
    const body = await readBody(req)
    let record: Uint8Array = body
    if ((req.headers['content-type'] ?? '').startsWith('application/json')) {
      let j: { record?: unknown }
      try {
        j = JSON.parse(body.toString('utf8')) as { record?: unknown }
      } catch (err) {
        throw new HttpError(400, `invalid JSON body: ${(err as Error).message}`)
      }
      if (typeof j.record !== 'string') throw new HttpError(400, `record: expected base64 consent record bytes, got ${typeof j.record}`)
      record = Buffer.from(j.record, 'base64')
    }
    if (record.length === 0) throw new HttpError(400, 'expected a consent record (CBOR) in the body, got nothing')
    let patient: string
    try {
      patient = d.consentPatient(record)
    } catch (err) {
      throw new HttpError(400, `consent record refused: ${(err as Error).message}`)
    }
    if (!d.registry.hasPatient(patient)) throw new HttpError(403, `patient ${patient} has no device registered at this gateway`)
    try {
      const r = await d.appendConsent(record)
      d.log.log('info', 'consent recorded', { patientId: r.patientId, action: r.action, leafIndex: r.leafIndex })
      return send(res, 201, r)
    } catch (err) {
      if ((err as Error).name === 'ConsentError') throw new HttpError(409, `consent record refused: ${(err as Error).message}`)
      throw err
    }
  }

  async function dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const m of d.mounts ?? []) if (await m(req, res)) return
    return route(req, res)
  }

  return createServer((req, res) => {
    dispatch(req, res).catch((err) => {
      if (err instanceof HttpError) return send(res, err.status, { error: err.message })
      if (err instanceof RegistryError) return send(res, err.code === 'not-found' ? 404 : err.code === 'exists' ? 409 : err.code === 'busy' ? 503 : 400, { error: err.message })
      d.log.log('error', 'http handler failed', { error: (err as Error).message })
      send(res, 500, { error: 'internal error' })
    })
  })
}
