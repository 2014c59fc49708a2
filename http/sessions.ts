/**
 * Login sessions for every kind of user (clinicians, admins, patients): an
 * unguessable token handed to the client, mapped in memory to what the server
 * knows about the session (at least its role). Memory is enough: a restart logs
 * everyone out, which is the safe failure, and no session secret lies on disk.
 *
 * A session ends when it has been idle for `idleMs`, when it is `maxAgeMs` old,
 * or when it is destroyed (logout, revocation). The store holds at most
 * `maxSessions`; past that the least recently used one ends. Tokens are kept
 * only as their SHA-256, so a heap dump does not hand out live tokens.
 */
import { createHash, randomBytes } from 'node:crypto'

/** What every session carries: the role its user acts in. */
export interface SessionData {
  role: string
}

export interface SessionOptions {
  /** Idle time after which a session ends; each use restarts it (default 8 h, one shift). */
  idleMs?: number
  /** Age at which a session ends however busy (default: none). */
  maxAgeMs?: number
  /** Most sessions held at once (default 10,000). */
  maxSessions?: number
  now?: () => number
}

interface Entry<S> {
  data: S
  createdMs: number
  lastMs: number
}

const keyOf = (token: string): string => createHash('sha256').update(token).digest('base64url')

export class SessionStore<S extends SessionData = SessionData> {
  // Map order is insertion order and every use re-inserts, so the first key is the least recently used.
  private readonly sessions = new Map<string, Entry<S>>()
  private readonly idleMs: number
  private readonly maxAgeMs: number
  private readonly maxSessions: number
  private readonly now: () => number

  constructor(o: SessionOptions = {}) {
    this.idleMs = o.idleMs ?? 8 * 3600_000
    this.maxAgeMs = o.maxAgeMs ?? Infinity
    this.maxSessions = o.maxSessions ?? 10_000
    this.now = o.now ?? Date.now
  }

  /** Starts a session; returns its token (32 random bytes, base64url). */
  create(data: S): string {
    if (this.sessions.size >= this.maxSessions) this.sweep()
    while (this.sessions.size >= this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!)
    const token = randomBytes(32).toString('base64url')
    const t = this.now()
    this.sessions.set(keyOf(token), { data, createdMs: t, lastMs: t })
    return token
  }

  /** The live session of a token with the time it will end if left idle from now (this use counts as one). */
  lookup(token: string | null | undefined): { data: S; expiresAt: number } | null {
    if (typeof token !== 'string' || token === '') return null
    const k = keyOf(token)
    const e = this.sessions.get(k)
    if (!e) return null
    const t = this.now()
    if (t >= this.expiry(e)) {
      this.sessions.delete(k)
      return null
    }
    e.lastMs = t
    this.sessions.delete(k)
    this.sessions.set(k, e)
    return { data: e.data, expiresAt: this.expiry(e) }
  }

  /** The live session's data, or null (unknown, expired or destroyed). */
  get(token: string | null | undefined): S | null {
    return this.lookup(token)?.data ?? null
  }

  /** Ends one session (logout). Unknown tokens are ignored. */
  destroy(token: string | null | undefined): void {
    if (typeof token === 'string' && token !== '') this.sessions.delete(keyOf(token))
  }

  /** Ends every session whose data matches (e.g. all of a user whose access was revoked); returns how many. */
  destroyWhere(match: (data: S) => boolean): number {
    let n = 0
    for (const [k, e] of this.sessions) {
      if (match(e.data)) {
        this.sessions.delete(k)
        n++
      }
    }
    return n
  }

  get size(): number {
    return this.sessions.size
  }

  private expiry(e: Entry<S>): number {
    return Math.min(e.lastMs + this.idleMs, e.createdMs + this.maxAgeMs)
  }

  private sweep(): void {
    const t = this.now()
    for (const [k, e] of this.sessions) if (t >= this.expiry(e)) this.sessions.delete(k)
  }
}
