/**
 * Puts the dashboard on a running gateway's HTTP listener:
 *
 *   const gw = await startGateway(resolveConfig({ httpPort: 8080, ... }))
 *   const dash = await mountDashboard(gw, { patientKeys, patients, alarms })
 *   console.log(dash.url)           // http://127.0.0.1:8080/
 *   ...
 *   await gw.close()                // also ends the dashboard's live streams first
 *
 * The gateway's own routes (/healthz, /metrics, /api/...) keep working; the
 * dashboard answers /, /app.js, /app.css and /api/dash/*, and the alarm API
 * /api/alarms and /api/patients/:id/alarm-limits (alarm-routes.ts).
 */
import { dirname, join } from 'node:path'
import type { Gateway } from '../gateway/gateway.ts'
import { createDashboardRoutes, type DashboardOptions, type DashboardHandler } from './routes.ts'
import { gatewayDashboardDeps, type GatewayDashboardDeps, type GatewayDepsOptions } from './gateway-deps.ts'
import { getWebAssets } from './build.ts'
import { alarmRoutes } from './alarm-routes.ts'
import { adminTokenCheck } from '../gateway/admin-token.ts'
import { bearerToken, cookieSession } from '../http/auth.ts'
import { SESSION_COOKIE, DASHBOARD_SESSION } from './session.ts'
import type { Actor } from './deps.ts'

export interface MountDashboardOptions extends GatewayDepsOptions, DashboardOptions {
  /** Host name for the printed URL (default 127.0.0.1). */
  host?: string
}

export interface MountedDashboard {
  url: string
  deps: GatewayDashboardDeps
  handler: DashboardHandler
  /** Ends live streams and unmounts (the gateway keeps running). Idempotent. */
  close(): void
}

export async function mountDashboard(gw: Gateway, o: MountDashboardOptions = {}): Promise<MountedDashboard> {
  if (gw.ports.http === null && gw.ports.https === null) throw new Error('mountDashboard: expected a gateway with its HTTP or HTTPS listener on (httpPort or httpsPort != 0), got none')
  const deps = gatewayDashboardDeps(gw, o)
  // One session store per gateway: the dashboard's cookie sessions live beside the API's tokens.
  const handler = createDashboardRoutes(deps, { sessions: gw.sessions, ...o })
  const unmount = gw.mountHttp(handler)
  // The alarm API answers the admin token and API sessions as /api/ does, and the dashboard's cookie as /api/dash does.
  const isAdminToken = adminTokenCheck(gw.identity.adminToken, join(dirname(gw.identity.keyFile), 'admin.token'))
  const cookie = cookieSession<Actor>(gw.sessions, SESSION_COOKIE, DASHBOARD_SESSION)
  const unmountAlarms = gw.mountHttp(
    alarmRoutes(
      deps.alarms,
      {
        bearer(req) {
          const b = bearerToken(req)
          if (b === null) return null
          if (isAdminToken(b)) return { userId: 'admin-token', role: 'admin' }
          const s = gw.users.session(b)
          return s ? { userId: s.username, role: s.role } : null
        },
        cookie,
      },
      { log: o.log },
    ),
  )
  let closed = false
  const close = (): void => {
    if (closed) return
    closed = true
    handler.close()
    deps.close()
    unmount()
    unmountAlarms()
  }
  // Open event streams would hold the HTTP server's close forever: end them first.
  const gwClose = gw.close.bind(gw)
  gw.close = async () => {
    close()
    return gwClose()
  }
  // Build the browser bundle and backfill trends now, so the first page load is quick and complete.
  await Promise.all([deps.ready, getWebAssets()])
  const url = gw.ports.http !== null ? `http://${o.host ?? '127.0.0.1'}:${gw.ports.http}/` : `https://${o.host ?? '127.0.0.1'}:${gw.ports.https}/`
  return { url, deps, handler, close }
}
