/**
 * The gateway's binding to protocol/: strict decode + verification of frames and
 * CONNECT tokens, device-ID rules. Everything protocol-specific the gateway does
 * goes through here, so the broker and pipeline stay testable on their own.
 */
import { assertAuthentic, verifyAuthToken, type DeviceKey as ProtocolKey } from '../protocol/node/verify.ts'
import { decodeFrameLean } from '../protocol/node/decode.ts'
import { FrameError } from '../protocol/node/errors.ts'
import { nodeHash } from '../protocol/node/hash-node.ts'
import { principalIdFromEd25519 } from '../protocol/node/keys.ts'
import { deviceIdFromPublicKey, isValidDeviceId } from '../protocol/portable/device-id.ts'
import { Rejection, type DeviceKey, type FrameChecker, type FrameFacts, type GatewayCodec } from './frame-check.ts'

export function protocolKey(k: DeviceKey): ProtocolKey {
  if (k.profile === 'se') {
    if (!k.publicKey) throw new FrameError('key', 'se device without a public key')
    return { profile: 'se', publicKey: k.publicKey }
  }
  if (!k.secret) throw new FrameError('key', 'bare device without a secret')
  return { profile: 'bare', secret: k.secret }
}

export const protocolCodec: GatewayCodec = {
  isValidDeviceId: (id) => isValidDeviceId(nodeHash, id),
  idFromPublicKey: (pub) => deviceIdFromPublicKey(nodeHash, pub),
  principalIdFromEd25519,
  verifyAuthToken(token, key) {
    return verifyAuthToken(token, protocolKey(key)).claims
  },
}

/** Decode + verify one frame synchronously; FrameError codes become rejection reasons. */
export function checkFrameSync(frame: Uint8Array, key: DeviceKey, expectKid: string): FrameFacts {
  try {
    const f = decodeFrameLean(frame)
    if (f.kid !== expectKid) throw new Rejection('kid-mismatch', `frame kid ${f.kid} is not the client ID ${expectKid}`)
    assertAuthentic(f, protocolKey(key))
    return { kid: f.kid, deviceId: f.payload.deviceId, seq: f.payload.seq, boot: f.payload.boot, t0: f.payload.t0, flags: f.payload.flags }
  } catch (err) {
    if (err instanceof Rejection) throw err
    if (err instanceof FrameError) throw new Rejection(err.code, err.message)
    throw new Rejection('cbor', (err as Error).message) // the decoder threw something unexpected: still a bad frame
  }
}

/** Verification on the event loop. */
export function inlineChecker(): FrameChecker {
  return {
    check: (frame, key, expectKid) => {
      try {
        return Promise.resolve(checkFrameSync(frame, key, expectKid))
      } catch (err) {
        return Promise.reject(err)
      }
    },
    close: () => Promise.resolve(),
  }
}
