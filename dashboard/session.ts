/**
 * Browser sessions: an unguessable token in an HttpOnly, SameSite=Strict cookie,
 * mapped in memory to the authenticated actor. Memory is enough: a gateway
 * restart logs clinicians out, which is the safe failure. SameSite=Strict keeps
 * other sites from riding the cookie on POSTs (no CSRF token needed).
 */
import { randomBytes } from 'node:crypto'
import type { Actor } from './deps.ts'

export const SESSION_COOKIE = 'mh_session'

export interface SessionOptions {
  /** Idle time after which a session ends (default 8 h, one shift). */
  idleMs?: number
  /** Most sessions held at once (default 10,000); past it the least recently used one ends. */
  maxSessions?: number
  now?: () => number
}

interface Entry {
  actor: Actor
  lastMs: number
}

export class SessionStore {
  private readonly sessions = new Map<string, Entry>()
  private readonly idleMs: number
  private readonly now: () => number
  private readonly maxSessions: number

  constructor(o: SessionOptions = {}) {
    this.idleMs = o.idleMs ?? 8 * 3600_000
    this.maxSessions = o.maxSessions ?? 10_000
    this.now = o.now ?? Date.now
  }

  create(actor: Actor): string {
    this.sweep()
    // Map order is insertion order and get() re-inserts, so the first key is the least recently used.
    while (this.sessions.size >= this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!)
    const token = randomBytes(32).toString('base64url')
    this.sessions.set(token, { actor, lastMs: this.now() })
    return token
  }

  /** The session's actor, refreshing its idle timer; null if unknown or expired. */
  get(token: string | undefined): Actor | null {
    if (!token) return null
    const e = this.sessions.get(token)
    if (!e) return null
    const t = this.now()
    if (t - e.lastMs > this.idleMs) {
      this.sessions.delete(token)
      return null
    }
    e.lastMs = t
    this.sessions.delete(token)
    this.sessions.set(token, e)
    return e.actor
  }

  destroy(token: string | undefined): void {
    if (token) this.sessions.delete(token)
  }

  private sweep(): void {
    const t = this.now()
    for (const [k, e] of this.sessions) if (t - e.lastMs > this.idleMs) this.sessions.delete(k)
  }
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const i = part.indexOf('=')
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim()
  }
  return undefined
}

export function sessionCookie(token: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`
}

export function clearedCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`
}
