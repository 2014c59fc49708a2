/**
 * What the ingest pipeline needs from the protocol code: strict decode and
 * signature/MAC verification of one frame against one device key. Two
 * implementations: inline (on the event loop) and a worker_threads pool; the
 * bench measures both and the gateway picks by config (see docs/gateway.md).
 */
import type { Profile } from './registry.ts'

export interface DeviceKey {
  profile: Profile
  publicKey: Uint8Array | null
  secret: Uint8Array | null
}

/** The facts the gateway acts on after a frame verified. */
export interface FrameFacts {
  kid: string
  deviceId: string
  seq: number
  boot: number
  t0: number
  flags: number
}

/** A frame refused; `code` is the metric label and the NACK reason. */
export class Rejection extends Error {
  override name = 'Rejection'
  constructor(readonly code: string, message: string) {
    super(message)
  }
}

export interface FrameChecker {
  /**
   * Decodes strictly, checks the kid is `expectKid` (before spending a signature
   * verification on it) and verifies; rejects with a Rejection naming what failed.
   */
  check(frame: Uint8Array, key: DeviceKey, expectKid: string): Promise<FrameFacts>
  close(): Promise<void>
}

/** Claims carried by a verified CONNECT auth token. */
export interface AuthClaims {
  deviceId: string
  iatMs: number
  counter: number
}

/** The protocol operations the CONNECT step needs (synchronous: one per connection). */
export interface AuthCodec {
  isValidDeviceId(id: string): boolean
  /** Verifies the token's COSE signature/MAC with the device key; throws when it does not verify. */
  verifyAuthToken(token: Uint8Array, key: DeviceKey): AuthClaims
}

/** Everything the gateway needs from protocol/, in one injectable object. */
export interface GatewayCodec extends AuthCodec {
  idFromPublicKey(pub65: Uint8Array): string
  principalIdFromEd25519(pub32: Uint8Array): string
}
