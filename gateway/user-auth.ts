/**
 * Clinician and app users outside MQTT: the dashboard checks a login and a
 * patient's consent with these functions (in process) or through the HTTP routes
 * built on them (`POST /api/login`, `GET /api/access`).
 *
 * Sessions are random bearer tokens held in memory with an expiry: a gateway
 * restart logs everyone out, which is acceptable for a ward dashboard and keeps
 * no session secret on disk.
 */
import { randomBytes, createHash } from 'node:crypto'
import { LIVE_SCOPE, type ConsentPort } from './ledger-port.ts'
import type { DeviceRegistry, Role, User } from './registry.ts'

export interface Session {
  username: string
  role: Role
  expiresAt: number
}

export interface UserAuth {
  /** The user when the password matches, else null (same answer for unknown users). */
  checkLogin(username: string, password: string): Promise<User | null>
  /** May `username` see `patientId`'s data for `scope` now? Roles do not bypass consent. */
  canView(username: string, patientId: string, scope?: string, nowMs?: number): boolean
  /** Logs in and returns a session token, or null. */
  login(username: string, password: string): Promise<{ token: string; session: Session } | null>
  /** The live session for a bearer token, or null (unknown or expired). */
  session(token: string): Session | null
  logout(token: string): void
}

const tokenKey = (t: string) => createHash('sha256').update(t).digest('hex')

export function userAuth(registry: DeviceRegistry, consent: ConsentPort, opts: { now?: () => number; sessionMs?: number; maxSessions?: number } = {}): UserAuth {
  const now = opts.now ?? Date.now
  const sessionMs = opts.sessionMs ?? 8 * 3600_000 // one ward shift
  const maxSessions = opts.maxSessions ?? 10_000
  // Keyed by the token's hash, so a heap dump does not hand out live tokens directly.
  const sessions = new Map<string, Session>()

  const sweep = () => {
    const t = now()
    for (const [k, s] of sessions) if (s.expiresAt <= t) sessions.delete(k)
  }

  return {
    checkLogin: (username, password) => {
      if (typeof username !== 'string' || typeof password !== 'string') return Promise.resolve(null)
      return registry.checkUser(username, password)
    },
    canView(username, patientId, scope = LIVE_SCOPE, nowMs = now()) {
      return consent.isAllowed(patientId, username, scope, nowMs)
    },
    async login(username, password) {
      const u = await this.checkLogin(username, password)
      if (!u) return null
      if (sessions.size >= maxSessions) sweep()
      if (sessions.size >= maxSessions) sessions.delete(sessions.keys().next().value!) // oldest first
      const token = randomBytes(32).toString('base64url')
      const session: Session = { username: u.username, role: u.role, expiresAt: now() + sessionMs }
      sessions.set(tokenKey(token), session)
      return { token, session }
    },
    session(token) {
      if (typeof token !== 'string' || token === '') return null
      const k = tokenKey(token)
      const s = sessions.get(k)
      if (!s) return null
      if (s.expiresAt <= now()) {
        sessions.delete(k)
        return null
      }
      return s
    },
    logout(token) {
      sessions.delete(tokenKey(token))
    },
  }
}
