/**
 * Key material for every principal: devices (P-256 in a secure element, or an
 * HMAC secret for bare boards), and the Ed25519 keys of gateways, patients and
 * clinicians. Secrets come from node:crypto's CSPRNG, never from a board.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { nodeHash } from './hash-node.ts'
import { deviceIdFromBytes, deviceIdFromPublicKey } from '../portable/device-id.ts'
import { concatBytes, utf8Encode } from '../portable/bytes.ts'

export type KeyType = 'ed25519' | 'p256' | 'hmac'

export type KeyMaterial =
  | { type: 'p256'; id: string; publicKey: Uint8Array; privateKey: Uint8Array }
  | { type: 'ed25519'; id: string; publicKey: Uint8Array; privateKey: Uint8Array }
  | { type: 'hmac'; id: string; secret: Uint8Array }

const fromB64u = (s: string | undefined): Uint8Array => new Uint8Array(Buffer.from(s ?? '', 'base64url'))

/** Principal ID of an Ed25519 key: same shape as a device ID, separate domain. */
export function principalIdFromEd25519(pub32: Uint8Array): string {
  return deviceIdFromBytes(nodeHash, nodeHash.sha256(concatBytes([utf8Encode('mhealth/principal-id/v1'), pub32])))
}

export function generateKey(type: KeyType): KeyMaterial {
  if (type === 'p256') {
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' })
    const publicKey = concatBytes([new Uint8Array([4]), fromB64u(jwk.x), fromB64u(jwk.y)])
    return { type, id: deviceIdFromPublicKey(nodeHash, publicKey), publicKey, privateKey: fromB64u(jwk.d) }
  }
  if (type === 'ed25519') {
    const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' })
    const publicKey = fromB64u(jwk.x)
    return { type, id: principalIdFromEd25519(publicKey), publicKey, privateKey: fromB64u(jwk.d) }
  }
  // Bare profile: the ID is assigned here, from fresh randomness, not derived from the secret.
  return { type: 'hmac', id: deviceIdFromBytes(nodeHash, new Uint8Array(randomBytes(10))), secret: new Uint8Array(randomBytes(32)) }
}
