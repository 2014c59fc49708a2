/**
 * Building signed frames and tokens on a host, with the same portable encoder
 * the board runs. Used by tests, the simulator's tools and `mhealth frame make`;
 * a real board signs in its secure element instead.
 */
import { CborWriter } from '../portable/cbor.ts'
import { encodePayload, encodePayloadV2, type FramePayload, type FramePayloadV2 } from '../portable/frame.ts'
import { buildMac0, buildSign1, mac0ToBeMaced, sign1ToBeSigned } from '../portable/cose.ts'
import { authPayload, type AuthClaims } from '../portable/auth-token.ts'
import { es256Sign, hmacSha256Compute, type Impl } from './primitives.ts'
import type { KeyMaterial } from './keys.ts'

export type DeviceSigningKey = Extract<KeyMaterial, { type: 'p256' } | { type: 'hmac' }>

export function signPayloadBytes(key: DeviceSigningKey, payload: Uint8Array, impl: Impl = 'node'): Uint8Array {
  if (key.type === 'p256') return buildSign1(key.id, payload, es256Sign(impl, key.privateKey, key.publicKey, sign1ToBeSigned(key.id, payload)))
  return buildMac0(key.id, payload, hmacSha256Compute(impl, key.secret, mac0ToBeMaced(key.id, payload)))
}

export function signFrame(key: DeviceSigningKey, p: FramePayload, impl: Impl = 'node'): Uint8Array {
  if (p.deviceId !== key.id) throw new Error(`payload device ID ${p.deviceId} differs from the key's ${key.id}`)
  return signPayloadBytes(key, new Uint8Array(encodePayload(new CborWriter(2048), p)), impl)
}

/** A version-2 frame (FIFO bytes as drained) signed the same way. */
export function signFrameV2(key: DeviceSigningKey, p: FramePayloadV2, impl: Impl = 'node'): Uint8Array {
  if (p.deviceId !== key.id) throw new Error(`payload device ID ${p.deviceId} differs from the key's ${key.id}`)
  return signPayloadBytes(key, new Uint8Array(encodePayloadV2(new CborWriter(4096), p)), impl)
}

export function signAuthToken(key: DeviceSigningKey, claims: Omit<AuthClaims, 'deviceId'>): Uint8Array {
  return signPayloadBytes(key, authPayload({ deviceId: key.id, iatMs: claims.iatMs, counter: claims.counter }))
}
