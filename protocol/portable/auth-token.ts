/**
 * The MQTT CONNECT password: a proof that the connecting board holds its key,
 * fresh without any randomness on the board. It is a COSE_Sign1 (SE profile)
 * or COSE_Mac0 (bare profile) over CBOR ["mh-auth", deviceId, iatMs, counter],
 * protected header exactly as a frame's. The gateway refuses a counter not
 * above the last it accepted for the device and an iat outside its clock window.
 * An array payload with a text marker can never be mistaken for a frame (a map).
 */
import { CborWriter } from './cbor.ts'
import { sign1ToBeSigned, mac0ToBeMaced } from './cose.ts'

export const AUTH_MARKER = 'mh-auth'

export interface AuthClaims {
  deviceId: string
  /** Board time, ms since the Unix epoch. */
  iatMs: number
  /** Strictly increasing per device, persisted on the board. */
  counter: number
}

export function authPayload(c: AuthClaims): Uint8Array {
  const w = new CborWriter(64)
  w.arrayHeader(4).ascii(AUTH_MARKER).ascii(c.deviceId).uint(c.iatMs).uint(c.counter)
  return w.copy()
}

/** What the secure element signs (after SHA-256) for an SE-profile token. */
export function authToBeSigned(c: AuthClaims): Uint8Array {
  return sign1ToBeSigned(c.deviceId, authPayload(c))
}

/** What HMAC-SHA256 runs over for a bare-profile token. */
export function authToBeMaced(c: AuthClaims): Uint8Array {
  return mac0ToBeMaced(c.deviceId, authPayload(c))
}
