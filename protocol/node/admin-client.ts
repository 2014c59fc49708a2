/**
 * The gateway's admin HTTP API (gateway/http-api.ts) as typed calls, with the admin token
 * (or an admin user's session token) as the bearer token:
 *   POST /api/devices               register        GET /api/devices   list
 *   GET  /api/devices/:id           show            POST /api/devices/:id/revoke   revoke
 *   POST /api/devices/:id/move      move {patient}  POST /api/devices/:id/reactivate   reactivate
 *   DELETE /api/devices/:id         delete (a tombstone stays)
 *   POST /api/users                 add a user      GET /api/users     list users
 * Used by the CLI (`device --url`, `provision`, `sim`) and the simulator (rig, fleet,
 * hostile devices), so a change to the API is made here once.
 *
 * It lives in protocol/node, below both the gateway and the simulator (which may not import
 * each other): the shapes of these requests and answers are a wire format the two sides
 * share, as frames are.
 */
import { randomBytes } from 'node:crypto'
import { toHex } from '../portable/bytes.ts'
import { deviceIdFromBytes, deviceIdFromPublicKey } from '../portable/device-id.ts'
import { nodeHash } from './hash-node.ts'
import type { DeviceKey } from './verify.ts'

/**
 * POST /api/devices: an SE board by its uncompressed P-256 public key (the gateway derives
 * the ID; `id`, if given, must match), a bare board by its ID and HMAC secret. Keys are hex.
 */
export type DeviceRegistration =
  | { profile: 'se'; publicKey: string; id?: string; patient: string }
  | { profile: 'bare'; id: string; secret: string; patient: string }

/** A device as the API shows it: the public key as hex, the secret never. */
export interface DeviceView {
  id: string
  profile: 'se' | 'bare'
  publicKey?: string
  patient: string
  /** 'deleted': a tombstone kept so the device's ledger frames still verify and its ID stays retired. */
  status: 'active' | 'revoked' | 'deleted'
  createdMs: number
  firstSeenMs: number | null
  lastSeenMs: number | null
  lastSeq: number | null
  lastAuthCounter: number
  revokedMs: number | null
}

export interface RevokeResult {
  id: string
  revoked: true
  /** The device was revoked before this call. */
  alreadyRevoked: boolean
  /** A live connection of the device was closed. */
  disconnected: boolean
}

export interface UserView {
  username: string
  role: 'clinician' | 'admin'
  createdMs: number
}

/** The gateway answered with an error status. */
export class AdminApiError extends Error {
  override name = 'AdminApiError'
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    /** The gateway's error message (its JSON `error`), or the HTTP status text. */
    readonly error: string,
    /** The answer's body as sent. */
    readonly body: string,
  ) {
    super(`${method} ${path}: ${status} ${error}`)
  }
}

/** No answer at all: nothing listening, unknown host, connection reset. */
export class GatewayUnreachableError extends Error {
  override name = 'GatewayUnreachableError'
  constructor(
    readonly origin: string,
    /** Why, as the network stack put it (e.g. "connect ECONNREFUSED 127.0.0.1:8081"). */
    readonly reason: string,
  ) {
    super(`cannot reach the gateway at ${origin}: ${reason}`)
  }
}

export class AdminClient {
  readonly base: URL

  /** `baseUrl`: the gateway's HTTP address, e.g. http://127.0.0.1:8081. */
  constructor(baseUrl: string | URL, private readonly token: string) {
    this.base = new URL(baseUrl)
  }

  register(body: DeviceRegistration): Promise<DeviceView> {
    return this.call('POST', '/api/devices', body)
  }

  async list(): Promise<DeviceView[]> {
    return (await this.call<{ devices: DeviceView[] }>('GET', '/api/devices')).devices
  }

  show(id: string): Promise<DeviceView> {
    return this.call('GET', `/api/devices/${encodeURIComponent(id)}`)
  }

  /** Refused from now on, and disconnected at once if connected. */
  revoke(id: string): Promise<RevokeResult> {
    return this.call('POST', `/api/devices/${encodeURIComponent(id)}/revoke`)
  }

  /** Assigns the device to another patient; a connected board's next frames go to that patient. */
  move(id: string, patient: string): Promise<{ id: string; from: string; to: string; changed: boolean }> {
    return this.call('POST', `/api/devices/${encodeURIComponent(id)}/move`, { patient })
  }

  /** A revoked device may connect again. */
  reactivate(id: string): Promise<{ id: string; reactivated: true; wasActive: boolean }> {
    return this.call('POST', `/api/devices/${encodeURIComponent(id)}/reactivate`)
  }

  /** Retired for good (disconnected now); the gateway keeps a tombstone with its key. */
  delete(id: string): Promise<{ id: string; deleted: true; alreadyDeleted: boolean; disconnected: boolean }> {
    return this.call('DELETE', `/api/devices/${encodeURIComponent(id)}`)
  }

  addUser(username: string, role: UserView['role'], password: string): Promise<UserView> {
    return this.call('POST', '/api/users', { username, role, password })
  }

  async listUsers(): Promise<UserView[]> {
    return (await this.call<{ users: UserView[] }>('GET', '/api/users')).users
  }

  private async send(method: string, path: string, body?: unknown): Promise<Response> {
    try {
      return await fetch(new URL(path, this.base), {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      })
    } catch (err) {
      // fetch() says only "fetch failed"; the reason is in its cause.
      const e = err as Error & { cause?: Error }
      throw new GatewayUnreachableError(this.base.origin, e.cause?.message ?? e.message)
    }
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response
    try {
      res = await this.send(method, path, body)
    } catch (err) {
      // A pooled socket the gateway closed as it was reused fails before any answer. A GET is
      // safe to send again; a POST may have been acted on, so its caller sees the error.
      if (method !== 'GET' || !(err instanceof GatewayUnreachableError)) throw err
      res = await this.send(method, path, body)
    }
    const text = await res.text()
    let j: unknown
    try {
      j = JSON.parse(text)
    } catch {
      j = undefined
    }
    if (!res.ok) {
      const error = (j as { error?: unknown } | undefined)?.error
      throw new AdminApiError(method, path, res.status, typeof error === 'string' ? error : res.statusText, text)
    }
    if (typeof j !== 'object' || j === null) throw new Error(`${method} ${path}: the gateway's answer is not a JSON object: ${text.slice(0, 200)}`)
    return j as T
  }
}

/**
 * A new board's identity: with an SE, the ID derived from its public key; bare, a random ID
 * and a fresh 32-byte HMAC secret (from node:crypto).
 */
export function newIdentity(sePublicKey: Uint8Array | null): { id: string; key: DeviceKey } {
  if (sePublicKey) return { id: deviceIdFromPublicKey(nodeHash, sePublicKey), key: { profile: 'se', publicKey: sePublicKey } }
  return { id: deviceIdFromBytes(nodeHash, randomBytes(10)), key: { profile: 'bare', secret: new Uint8Array(randomBytes(32)) } }
}

/** The registration of a board with this ID and key (the SE ID is left for the gateway to derive). */
export function registration(id: string, key: DeviceKey, patient: string): DeviceRegistration {
  return key.profile === 'se' ? { profile: 'se', publicKey: toHex(key.publicKey), patient } : { id, profile: 'bare', secret: toHex(key.secret), patient }
}
