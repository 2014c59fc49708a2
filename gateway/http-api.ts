/**
 * The HTTP side (node:http, JSON):
 *   GET  /healthz                   liveness + readiness (503 while shutting down)
 *   GET  /api/time                  {"now": ms}, unauthenticated: boards sync before CONNECT
 *   GET  /metrics                   Prometheus text format
 *   GET  /api/devices               admin: list             (Authorization: Bearer <admin token>)
 *   POST /api/devices               admin: register {profile, publicKey|secret+id, patient}
 *   GET  /api/devices/:id           admin: show
 *   POST /api/devices/:id/revoke    admin: revoke and disconnect now
 *   POST /api/devices/:id/reactivate  admin: a revoked device may connect again
 *   POST /api/devices/:id/move      admin: {patient} assign to another patient (a connected board follows now)
 *   DELETE /api/devices/:id         admin: delete (tombstone with its key kept; disconnected now)
 *   POST /api/users                 admin: add a user {username, role, password}
 *   GET  /api/users                 admin: list users
 *   DELETE /api/users/:name         admin: delete a user (their sessions end)
 *   POST /api/users/:name/password  admin: {password} set a new one (their sessions end)
 *   POST /api/users/:name/role      admin: {role} clinician|admin (their sessions end)
 *   POST /api/admin-token/rotate    admin: a new admin token, written to DATA/admin.token -> {token}
 *   POST /api/login                 {username, password} -> {token, username, role, expiresAt} (dashboard session)
 *   POST /api/logout                Authorization: Bearer <session token>
 *   GET  /api/access?patient=P[&scope=live]   session: may this user see patient P? (consent)
 *   (admin routes also accept the session token of a user with role admin)
 *   POST /api/consent               a patient-signed consent record (CBOR body, or JSON {"record": base64});
 *                                   no token: the patient's signature is the authority, and the
 *                                   patient must be one the registry knows (no ledger spam)
 */
import type { IncomingMessage, Server } from 'node:http'
import { HttpError, errorMessage, type ErrorMapper } from '../http/errors.ts'
import { readBody, readJson, parseJsonObject } from '../http/body.ts'
import { sendJson, sendText } from '../http/respond.ts'
import { Router, notFound } from '../http/router.ts'
import { createHttpServer, requestListener, type Mount, type RequestContext } from '../http/server.ts'
import { bearerToken, requireSession, unauthorized, type SessionLookup } from '../http/auth.ts'
import { publicView, RegistryError, type DeviceRegistry } from './registry.ts'
import { registerDevice, type RegistrationCodec } from './devices.ts'
import type { Registry } from './metrics.ts'
import type { Logger } from './log.ts'
import { adminTokenCheck, rotateAdminToken } from './admin-token.ts'
import { LoginThrottled, type Session, type UserAuth } from './user-auth.ts'

export interface HttpApiDeps {
  registry: DeviceRegistry
  codec: RegistrationCodec
  metrics: Registry
  adminToken: string
  /** DATA/admin.token: re-read when it changes (rotation without restart); absent: `adminToken` only. */
  adminTokenFile?: string
  log: Logger
  now: () => number
  health: () => { ok: boolean; [k: string]: unknown }
  /** Called after a revocation is committed: disconnect the device now. */
  onRevoke(deviceId: string): boolean
  /** Called after a move, reactivation or deletion is committed: a connected board follows now. */
  onDeviceChange?(deviceId: string): 'disconnected' | 'moved' | null
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
export type HttpMount = Mount

const BODY = { maxBytes: 64 * 1024 }

const REGISTRY_STATUS: Record<RegistryError['code'], number> = { 'not-found': 404, exists: 409, busy: 503, invalid: 400 }
const registryStatus: ErrorMapper = (err) => {
  if (err instanceof RegistryError) return new HttpError(REGISTRY_STATUS[err.code] ?? 400, err.message)
  if (err instanceof LoginThrottled) return new HttpError(429, err.message, { code: 'login-backoff', headers: { 'retry-after': String(Math.ceil(err.retryAfterMs / 1000)) } })
  return undefined
}

export function createHttpApi(d: HttpApiDeps): Server {
  const isAdminToken = adminTokenCheck(d.adminToken, d.adminTokenFile)
  const sessionOf: SessionLookup<Session> = (req) => {
    const b = bearerToken(req)
    return (b && d.users?.session(b)) || null
  }
  const userSession = requireSession(sessionOf, 'login required (Authorization: Bearer <session token from POST /api/login>)')
  const isAdmin = (req: IncomingMessage): boolean => isAdminToken(bearerToken(req)) || sessionOf(req)?.role === 'admin'

  /** Routes that need no admin token: liveness, time, metrics, and those that check their own authority. */
  const open = new Router<RequestContext>()
    .get('/healthz', ({ res }) => {
      const h = d.health()
      sendJson(res, h.ok ? 200 : 503, h)
    })
    .get('/api/time', ({ res }) => sendJson(res, 200, { now: d.now() }))
    .get('/metrics', ({ res }) => sendText(res, 200, d.metrics.render(), 'text/plain; version=0.0.4; charset=utf-8'))
    .post('/api/consent', postConsent)
    .post('/api/login', async ({ req, res }) => {
      if (!d.users) throw new HttpError(501, 'user logins are not enabled')
      const b = await readJson(req, BODY)
      if (typeof b.username !== 'string' || typeof b.password !== 'string') throw new HttpError(400, 'expected {"username": string, "password": string}')
      const r = await d.users.login(b.username, b.password, req.socket.remoteAddress).catch((err: unknown) => {
        if (err instanceof LoginThrottled) d.log.log('warn', 'login refused', { username: b.username, reason: 'login-backoff', remote: req.socket.remoteAddress })
        throw err
      })
      if (!r) {
        d.log.log('warn', 'login refused', { username: b.username, reason: 'bad-user-credentials', remote: req.socket.remoteAddress })
        throw new HttpError(401, 'bad username or password')
      }
      d.log.log('info', 'user logged in', { username: r.session.username, role: r.session.role, via: 'http' })
      sendJson(res, 200, { token: r.token, ...r.session })
    })
    .post('/api/logout', ({ req, res }) => {
      const b = bearerToken(req)
      if (b) d.users?.logout(b)
      sendJson(res, 200, { ok: true })
    })
    .get('/api/access', (c) => {
      const s = userSession(c.req)
      const patient = c.query.get('patient')
      const scope = c.query.get('scope') ?? 'live'
      if (!patient) throw new HttpError(400, 'expected ?patient=<patient ID>')
      sendJson(c.res, 200, { username: s.username, role: s.role, patient, scope, allowed: d.users!.canView(s.username, patient, scope, d.now()) })
    })

  /** Routes behind the admin token (or an admin's session). */
  const admin = new Router<RequestContext>()
    .get('/api/devices', ({ res }) => sendJson(res, 200, { devices: d.registry.listDevices().map(publicView) }))
    .post('/api/devices', async ({ req, res }) => {
      const dev = registerDevice(d.registry, d.codec, await readJson(req, BODY))
      d.log.log('info', 'device registered', { deviceId: dev.id, profile: dev.profile, patient: dev.patient, via: 'http' })
      sendJson(res, 201, publicView(dev))
    })
    .get('/api/devices/:id', ({ res }, p) => {
      const dev = d.registry.getDevice(p.id)
      if (!dev) throw new HttpError(404, `device ${p.id} is not registered`)
      sendJson(res, 200, publicView(dev))
    })
    .post('/api/devices/:id/revoke', ({ res }, p) => {
      const changed = d.registry.revoke(p.id)
      const disconnected = d.onRevoke(p.id)
      d.log.log('info', 'device revoked', { deviceId: p.id, via: 'http', disconnected })
      sendJson(res, 200, { id: p.id, revoked: true, alreadyRevoked: !changed, disconnected })
    })
    .post('/api/devices/:id/reactivate', ({ res }, p) => {
      const changed = d.registry.reactivate(p.id)
      d.log.log('info', changed ? 'device reactivated' : 'device reactivate: was active', { deviceId: p.id, via: 'http' })
      sendJson(res, 200, { id: p.id, reactivated: true, wasActive: !changed })
    })
    .post('/api/devices/:id/move', async ({ req, res }, p) => {
      const b = await readJson(req, BODY)
      if (typeof b.patient !== 'string') throw new HttpError(400, `patient: expected a patient ID string, got ${typeof b.patient}`)
      const r = d.registry.move(p.id, b.patient)
      const live = r.changed ? d.onDeviceChange?.(p.id) ?? null : null
      d.log.log('info', r.changed ? 'device moved' : 'device move: same patient', { deviceId: p.id, from: r.from, to: r.to, connected: live === 'moved', via: 'http' })
      sendJson(res, 200, { id: p.id, ...r })
    })
    .on('DELETE', '/api/devices/:id', ({ res }, p) => {
      const changed = d.registry.delete(p.id)
      const disconnected = d.onDeviceChange?.(p.id) === 'disconnected'
      d.log.log('info', changed ? 'device deleted' : 'device delete: was deleted', { deviceId: p.id, via: 'http', disconnected })
      sendJson(res, 200, { id: p.id, deleted: true, alreadyDeleted: !changed, disconnected })
    })
    .post('/api/users', async ({ req, res }) => {
      const b = await readJson(req, BODY)
      sendJson(res, 201, d.registry.addUser(String(b.username ?? ''), b.role as 'clinician', String(b.password ?? '')))
    })
    .get('/api/users', ({ res }) => sendJson(res, 200, { users: d.registry.listUsers() }))
    .on('DELETE', '/api/users/:name', ({ res }, p) => {
      d.registry.deleteUser(p.name)
      userChanged(p.name, 'user deleted')
      sendJson(res, 200, { username: p.name, deleted: true })
    })
    .post('/api/users/:name/password', async ({ req, res }, p) => {
      const b = await readJson(req, BODY)
      if (typeof b.password !== 'string') throw new HttpError(400, `password: expected a string, got ${typeof b.password}`)
      d.registry.setPassword(p.name, b.password)
      userChanged(p.name, 'user password set')
      sendJson(res, 200, { username: p.name, passwordSet: true })
    })
    .post('/api/users/:name/role', async ({ req, res }, p) => {
      const b = await readJson(req, BODY)
      const u = d.registry.setRole(p.name, b.role as 'clinician')
      userChanged(p.name, 'user role set')
      sendJson(res, 200, u)
    })
    .post('/api/admin-token/rotate', ({ res }) => {
      if (!d.adminTokenFile) throw new HttpError(501, 'this gateway keeps no admin token file')
      const token = rotateAdminToken(d.adminTokenFile)
      d.log.log('warn', 'admin token rotated', { via: 'http' })
      sendJson(res, 200, { token })
    })

  /** After a user is deleted or changed: every session they hold ends, whatever its channel. */
  function userChanged(username: string, what: string): void {
    const ended = d.users?.endSessionsOf(username) ?? 0
    d.log.log('info', what, { username, sessionsEnded: ended, via: 'http' })
  }

  async function route(c: RequestContext): Promise<void> {
    const { method, path } = c
    const pub = open.match(method, path)
    if (pub.handler) {
      await pub.handler(c, pub.params)
      return
    }
    if (pub.allowed.length > 0) return open.dispatch(method, path, c) // a 405 naming the method to use
    if (!path.startsWith('/api/') || !admin.has(path)) throw notFound(method, path)
    // The route list is public (docs/gateway.md): an unknown path is a plain 404 whoever asks,
    // so a typo is not mistaken for a bad token; a known one needs the token before anything else.
    if (!isAdmin(c.req)) {
      d.log.log('warn', 'admin API refused', { path, reason: 'bad-or-missing-token', remote: c.req.socket.remoteAddress })
      throw unauthorized('admin token required (Authorization: Bearer <token>)')
    }
    await admin.dispatch(method, path, c)
  }

  async function postConsent({ req, res }: RequestContext): Promise<void> {
    if (!d.appendConsent || !d.consentPatient) throw new HttpError(501, 'this gateway has no consent ledger')
    const body = await readBody(req, BODY)
    let record: Uint8Array = body
    if ((req.headers['content-type'] ?? '').startsWith('application/json')) {
      const j = parseJsonObject(body)
      if (typeof j.record !== 'string') throw new HttpError(400, `record: expected base64 consent record bytes, got ${typeof j.record}`)
      record = Buffer.from(j.record, 'base64')
    }
    if (record.length === 0) throw new HttpError(400, 'expected a consent record (CBOR) in the body, got nothing')
    let patient: string
    try {
      patient = d.consentPatient(record)
    } catch (err) {
      throw new HttpError(400, `consent record refused: ${errorMessage(err)}`)
    }
    if (!d.registry.hasPatient(patient)) throw new HttpError(403, `patient ${patient} has no device registered at this gateway`)
    try {
      const r = await d.appendConsent(record)
      d.log.log('info', 'consent recorded', { patientId: r.patientId, action: r.action, leafIndex: r.leafIndex })
      sendJson(res, 201, r)
    } catch (err) {
      if ((err as Error).name === 'ConsentError') throw new HttpError(409, `consent record refused: ${errorMessage(err)}`)
      throw err
    }
  }

  return createHttpServer(
    requestListener(route, {
      mounts: d.mounts,
      mapError: registryStatus,
      onInternal: (err) => d.log.log('error', 'http handler failed', { error: errorMessage(err) }),
    }),
  )
}
