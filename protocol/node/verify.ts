/**
 * Frame and token verification: strict decode, then the signature or MAC by
 * the device's key. The key's kind must match the message's: an SE-profile
 * device never gets a MAC accepted and vice versa.
 */
import { decodeFrame, decodeAuthToken, type CoseMessage, type DecodedFrame, type DecodedAuthToken } from './decode.ts'
import { FrameError } from './errors.ts'
import { es256Verify, hmacSha256Verify, type Impl } from './primitives.ts'

/** What the gateway's registry knows of a device. */
export type DeviceKey = { profile: 'se'; publicKey: Uint8Array } | { profile: 'bare'; secret: Uint8Array }

export interface VerifyOptions {
  impl?: Impl
}

/** Throws FrameError('signature' | 'key') unless the message is authenticated by `key`. */
export function assertAuthentic(msg: CoseMessage, key: DeviceKey, opts: VerifyOptions = {}): void {
  const impl = opts.impl ?? 'node'
  if (msg.kind === 'sign1') {
    if (key.profile !== 'se') throw new FrameError('key', `device ${msg.kid} is a bare-profile device; an ES256 signature is not accepted from it`)
    if (!es256Verify(impl, key.publicKey, msg.toBeAuthenticated, msg.tag)) throw new FrameError('signature', `ES256 signature does not verify with device ${msg.kid}'s key`)
  } else {
    if (key.profile !== 'bare') throw new FrameError('key', `device ${msg.kid} signs with a secure element; a MAC is not accepted from it`)
    if (!hmacSha256Verify(impl, key.secret, msg.toBeAuthenticated, msg.tag)) throw new FrameError('signature', `HMAC tag does not verify with device ${msg.kid}'s secret`)
  }
}

/** Strict decode plus authentication. Throws FrameError naming the failed check. */
export function verifyFrame(bytes: Uint8Array, key: DeviceKey, opts: VerifyOptions = {}): DecodedFrame {
  const frame = decodeFrame(bytes)
  assertAuthentic(frame, key, opts)
  return frame
}

export function verifyAuthToken(bytes: Uint8Array, key: DeviceKey, opts: VerifyOptions = {}): DecodedAuthToken {
  const token = decodeAuthToken(bytes)
  assertAuthentic(token, key, opts)
  return token
}
