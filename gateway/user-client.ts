/**
 * For the dashboard (or any app) running apart from the gateway: log a user in and
 * ask whether they may see a patient, over the gateway's HTTP API. The gateway
 * answers from the same registry and ledger consent state that authorizes MQTT
 * subscriptions, so the dashboard never decides access on its own.
 */
import type { Session } from './user-auth.ts'

export class GatewayAuthError extends Error {
  override name = 'GatewayAuthError'
  constructor(message: string, readonly status: number) {
    super(message)
  }
}

/** What POST /api/login answers: the session and its bearer token. */
export interface LoginResult extends Session {
  token: string
}

async function call(url: URL, init: RequestInit): Promise<Record<string, unknown>> {
  const res = await fetch(url, init)
  const j = (await res.json().catch(() => ({}))) as Record<string, unknown>
  if (!res.ok) throw new GatewayAuthError(String(j.error ?? res.statusText), res.status)
  return j
}

/** The session for a correct login; null for a wrong username or password. */
export async function checkLogin(gatewayUrl: string, username: string, password: string): Promise<LoginResult | null> {
  try {
    return (await call(new URL('/api/login', gatewayUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    })) as unknown as LoginResult
  } catch (err) {
    if (err instanceof GatewayAuthError && err.status === 401) return null
    throw err
  }
}

/** True when the logged-in user may see `patientId` (`scope` default 'live') right now. */
export async function checkAccess(gatewayUrl: string, sessionToken: string, patientId: string, scope = 'live'): Promise<boolean> {
  const url = new URL('/api/access', gatewayUrl)
  url.searchParams.set('patient', patientId)
  url.searchParams.set('scope', scope)
  const j = await call(url, { headers: { authorization: `Bearer ${sessionToken}` } })
  return j.allowed === true
}
