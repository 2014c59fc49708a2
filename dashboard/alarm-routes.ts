/**
 * The alarm API (docs/alarms.md), mounted on the gateway's HTTP listener beside the dashboard:
 *
 *   GET  /api/alarms?state=active|all[&patient=P]   {alarms: [AlarmView]}, newest first
 *   GET  /api/alarms/:id                            {alarm}
 *   POST /api/alarms/:id/ack                        {alarm, leafIndex}   (leafIndex: the ack's leaf)
 *   POST /api/alarms/:id/silence {seconds}          {alarm, leafIndex}
 *   GET  /api/patients/:id/alarm-limits             {patientId, limits}
 *   PUT  /api/patients/:id/alarm-limits {limits}    {patientId, limits, leafIndex}
 *
 * Who may: the admin bearer token or an admin's session sees and acts on every alarm; a
 * clinician (an API bearer session or a dashboard cookie session) only those of patients whose
 * consent (scope live) lets them see the data, the same check as the live data. A request
 * with the cookie must pass the dashboard's same-origin check when it changes something, as
 * /api/dash does; a bearer token is not sent by browsers on their own, so it need not.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { HttpError, errorMessage, sendError, type ErrorMapper } from '../http/errors.ts'
import { readJson } from '../http/body.ts'
import { sendJson } from '../http/respond.ts'
import { Router } from '../http/router.ts'
import { contextOf, type RequestContext } from '../http/server.ts'
import { assertSameOrigin } from '../http/same-origin.ts'
import { DashboardError, type Actor, type AlarmDeps } from './deps.ts'
import { AlarmError } from './alarm-engine.ts'
import { patientParam } from './params.ts'

export interface AlarmAuth {
  /** The actor behind an `Authorization: Bearer` token (the admin token or an API session), or null. */
  bearer(req: IncomingMessage): Actor | null
  /** The actor behind the dashboard's session cookie, or null. */
  cookie(req: IncomingMessage): Actor | null
}

const BODY = { maxBytes: 4096, requireJsonType: true }
const ID_RE = /^[0-9a-f]{20}$/
const STATUS: Record<DashboardError['code'], number> = { forbidden: 403, 'not-found': 404, invalid: 400, conflict: 409, unavailable: 503, throttled: 429 }
const mapError: ErrorMapper = (err) => {
  if (err instanceof DashboardError) return new HttpError(STATUS[err.code], err.message)
  if (err instanceof AlarmError) return new HttpError(err.code === 'not-found' ? 404 : err.code === 'conflict' ? 409 : 400, err.message)
  return undefined
}

type Ctx = RequestContext & { actor: Actor }

const alarmId = (s: string): string => {
  if (!ID_RE.test(s)) throw new HttpError(400, `alarm ID: expected 20 hex characters, got '${s.slice(0, 40)}'`)
  return s
}

export function alarmRoutes(deps: AlarmDeps, auth: AlarmAuth, o: { log?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void } = {}): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const api = new Router<Ctx>()
    .get('/api/alarms', async ({ res, actor, query }) => {
      const state = query.get('state') ?? 'active'
      if (state !== 'active' && state !== 'all') throw new HttpError(400, `state: expected active or all, got '${state.slice(0, 20)}'`)
      const p = query.get('patient')
      sendJson(res, 200, { alarms: await deps.list(actor, { all: state === 'all', ...(p !== null ? { patientId: patientParam(p) } : {}) }) })
    })
    .get('/api/alarms/:id', async ({ res, actor }, p) => sendJson(res, 200, { alarm: await deps.get(actor, alarmId(p.id)) }))
    .post('/api/alarms/:id/ack', async ({ res, actor }, p) => {
      const n = await deps.acknowledge(actor, alarmId(p.id))
      o.log?.('info', 'alarm acknowledged', { id: p.id, by: actor.userId, leafIndex: n.eventLeafIndex })
      sendJson(res, 200, { alarm: n.alarm, leafIndex: n.eventLeafIndex })
    })
    .post('/api/alarms/:id/silence', async ({ req, res, actor }, p) => {
      const id = alarmId(p.id)
      const b = await readJson(req, BODY)
      const n = await deps.silence(actor, id, b.seconds as number)
      o.log?.('info', 'alarm silenced', { id, by: actor.userId, seconds: b.seconds, leafIndex: n.eventLeafIndex })
      sendJson(res, 200, { alarm: n.alarm, leafIndex: n.eventLeafIndex })
    })
    .get('/api/patients/:id/alarm-limits', async ({ res, actor }, p) => {
      const patientId = patientParam(p.id)
      sendJson(res, 200, { patientId, limits: await deps.limits(actor, patientId) })
    })
    .on('PUT', '/api/patients/:id/alarm-limits', async ({ req, res, actor }, p) => {
      const patientId = patientParam(p.id)
      const b = await readJson(req, BODY)
      const r = await deps.setLimits(actor, patientId, b.limits ?? b)
      o.log?.('info', 'alarm limits set', { patientId, by: actor.userId, leafIndex: r.leafIndex })
      sendJson(res, 200, { patientId, ...r })
    })

  return async (req, res) => {
    const c = contextOf(req, res)
    if (c.path !== '/api/alarms' && !c.path.startsWith('/api/alarms/') && !/^\/api\/patients\/[^/]+\/alarm-limits$/.test(c.path)) return false
    try {
      let actor = auth.bearer(req)
      if (!actor) {
        actor = auth.cookie(req)
        if (!actor) throw new HttpError(401, 'log in first (dashboard session) or send Authorization: Bearer <admin token or session token>', { headers: { 'www-authenticate': 'Bearer' } })
        assertSameOrigin(req) // a cookie is sent by the browser on its own: only our own pages may change things with it
      }
      await api.dispatch(c.method, c.path, { ...c, actor })
    } catch (err) {
      sendError(res, err, { mapError, onInternal: (e) => o.log?.('warn', 'alarm route failed', { path: c.path, error: errorMessage(e) }) })
    }
    return true
  }
}
