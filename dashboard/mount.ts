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
 * dashboard answers /, /app.js, /app.css and /api/dash/*.
 */
import type { Gateway } from '../gateway/gateway.ts'
import { createDashboardRoutes, type DashboardOptions, type DashboardHandler } from './routes.ts'
import { gatewayDashboardDeps, type GatewayDashboardDeps, type GatewayDepsOptions } from './gateway-deps.ts'
import { getWebAssets } from './build.ts'

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
  let closed = false
  const close = (): void => {
    if (closed) return
    closed = true
    handler.close()
    deps.close()
    unmount()
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
