/**
 * Login sessions for every kind of user (clinicians, admins, patients): an
 * unguessable token handed to the client, mapped in memory to what the server
 * knows about the session (at least its role). Memory is enough: a restart logs
 * everyone out, which is the safe failure, and no session secret lies on disk.
 *
 * One store serves every way in: each session has a `kind` (e.g. 'api' bearer
 * tokens, 'dashboard' cookies) that its lookups must name, so a token handed out
 * for one channel never opens another, and a revocation (`destroyWhere`) reaches
 * every channel of a user at once. Each kind may set its own lifetime.
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

/** How one session is issued: its channel and, if not the store's, its lifetime. */
export interface SessionKind {
  kind?: string
  idleMs?: number
  maxAgeMs?: number
}

interface Entry<S> {
  data: S
  kind: string
  idleMs: number
  maxAgeMs: number
  createdMs: number
  lastMs: number
}

const DEFAULT_KIND = 'session'

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
  create<T extends S>(data: T, how: SessionKind = {}): string {
    if (this.sessions.size >= this.maxSessions) this.sweep()
    while (this.sessions.size >= this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!)
    const token = randomBytes(32).toString('base64url')
    const t = this.now()
    this.sessions.set(keyOf(token), {
      data, kind: how.kind ?? DEFAULT_KIND, idleMs: how.idleMs ?? this.idleMs, maxAgeMs: how.maxAgeMs ?? this.maxAgeMs, createdMs: t, lastMs: t,
    })
    return token
  }

  /**
   * The live session of a token with the time it will end if left idle from now (this use
   * counts as one). A session of another kind than `kind` is not found (and not touched).
   */
  lookup<T extends S = S>(token: string | null | undefined, kind = DEFAULT_KIND): { data: T; expiresAt: number } | null {
    if (typeof token !== 'string' || token === '') return null
    const k = keyOf(token)
    const e = this.sessions.get(k)
    if (!e || e.kind !== kind) return null
    const t = this.now()
    if (t >= this.expiry(e)) {
      this.sessions.delete(k)
      return null
    }
    e.lastMs = t
    this.sessions.delete(k)
    this.sessions.set(k, e)
    return { data: e.data as T, expiresAt: this.expiry(e) }
  }

  /** The live session's data, or null (unknown, expired, destroyed, or of another kind). */
  get<T extends S = S>(token: string | null | undefined, kind = DEFAULT_KIND): T | null {
    return this.lookup<T>(token, kind)?.data ?? null
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
    return Math.min(e.lastMs + e.idleMs, e.createdMs + e.maxAgeMs)
  }

  private sweep(): void {
    const t = this.now()
    for (const [k, e] of this.sessions) if (t >= this.expiry(e)) this.sessions.delete(k)
  }
}
