/**
 * Clinician and app users outside MQTT: the dashboard checks a login and a
 * patient's consent with these functions (in process) or through the HTTP routes
 * built on them (`POST /api/login`, `GET /api/access`).
 *
 * Sessions are bearer tokens of kind 'api' in the gateway's one session store
 * (http/sessions.ts, shared with the dashboard's cookie sessions) with a fixed
 * lifetime: a gateway restart logs everyone out, which is acceptable for a ward
 * dashboard and keeps no session secret on disk.
 *
 * Every password check here goes through a per-account, per-source backoff
 * (login-backoff.ts): a source that keeps guessing at one account is made to wait,
 * and its further guesses are refused (LoginThrottled) without being checked.
 */
import { SessionStore, type SessionData } from '../http/sessions.ts'
import { LIVE_SCOPE, type ConsentPort } from './ledger-port.ts'
import type { DeviceRegistry, Role, User } from './registry.ts'
import { LoginBackoff, sourceOf, type LoginBackoffOptions } from './login-backoff.ts'

export { LoginThrottled } from './login-backoff.ts'

export interface Session {
  username: string
  role: Role
  expiresAt: number
}

export interface UserAuth {
  /**
   * The user when the password matches, else null (same answer for unknown users).
   * `source` is the client's address; throws LoginThrottled while it must wait before
   * guessing at this account again.
   */
  checkLogin(username: string, password: string, source?: string): Promise<User | null>
  /** May `username` see `patientId`'s data for `scope` now? Roles do not bypass consent. */
  canView(username: string, patientId: string, scope?: string, nowMs?: number): boolean
  /** Logs in and returns a session token, or null; throws LoginThrottled as `checkLogin` does. */
  login(username: string, password: string, source?: string): Promise<{ token: string; session: Session } | null>
  /** The live session for a bearer token, or null (unknown or expired). */
  session(token: string): Session | null
  logout(token: string): void
  /** Ends every session of a user, whatever its channel (API token, dashboard cookie); returns how many. */
  endSessionsOf(username: string): number
  /**
   * Ends the sessions of users deleted, re-roled or given a new password since the last call,
   * by this process or another on the same registry (the CLI); the gateway calls it on a timer.
   */
  endStaleSessions(): number
}

/** The kind of the bearer-token sessions this module hands out. */
export const API_SESSION = 'api'
type ApiSession = { username: string; role: Role }

/** The user a session belongs to: API tokens carry `username`, dashboard cookies the actor's `userId`. */
function sessionUser(d: SessionData): string | undefined {
  const x = d as { username?: unknown; userId?: unknown }
  return typeof x.username === 'string' ? x.username : typeof x.userId === 'string' ? x.userId : undefined
}

export interface UserAuthOptions {
  now?: () => number
  sessionMs?: number
  maxSessions?: number
  sessions?: SessionStore<SessionData>
  backoff?: LoginBackoffOptions
  /** Called for each user whose sessions were ended (deleted, new password, new role): the broker cuts their MQTT connections. */
  onEnded?: (username: string) => void
}

export function userAuth(registry: DeviceRegistry, consent: ConsentPort, opts: UserAuthOptions = {}): UserAuth {
  const now = opts.now ?? Date.now
  const sessions = opts.sessions ?? new SessionStore<SessionData>({ maxSessions: opts.maxSessions, now })
  const backoff = new LoginBackoff({ now, ...opts.backoff })
  // One ward shift, however busy: the token then has to be renewed by a fresh login.
  const lifetime = { kind: API_SESSION, maxAgeMs: opts.sessionMs ?? 8 * 3600_000, idleMs: Infinity }
  let stamps = registry.userStamps()

  return {
    async checkLogin(username, password, source) {
      if (typeof username !== 'string' || typeof password !== 'string') return null
      const settle = backoff.begin(username, sourceOf(source))
      try {
        const u = await registry.checkUser(username, password)
        settle(u !== null)
        return u
      } catch (err) {
        settle(null) // not checked (the registry was busy): not a wrong password
        throw err
      }
    },
    canView(username, patientId, scope = LIVE_SCOPE, nowMs = now()) {
      return consent.isAllowed(patientId, username, scope, nowMs)
    },
    async login(username, password, source) {
      const u = await this.checkLogin(username, password, source)
      if (!u) return null
      const token = sessions.create<ApiSession>({ username: u.username, role: u.role }, lifetime)
      return { token, session: this.session(token)! }
    },
    session(token) {
      const s = sessions.lookup<ApiSession>(token, API_SESSION)
      return s && { username: s.data.username, role: s.data.role, expiresAt: s.expiresAt }
    },
    logout(token) {
      sessions.destroy(token)
    },
    endSessionsOf(username) {
      // This change is handled: the timer must not end the sessions the user opens next.
      const stamp = registry.userStamps().get(username)
      if (stamp === undefined) stamps.delete(username)
      else stamps.set(username, stamp)
      opts.onEnded?.(username)
      return sessions.destroyWhere((d) => sessionUser(d) === username)
    },
    endStaleSessions() {
      const now = registry.userStamps()
      const changed = new Set<string>()
      for (const [name, stamp] of stamps) if (now.get(name) !== stamp) changed.add(name)
      stamps = now
      for (const name of changed) opts.onEnded?.(name)
      return changed.size === 0 ? 0 : sessions.destroyWhere((d) => changed.has(sessionUser(d) ?? ''))
    },
  }
}
