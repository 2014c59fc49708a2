/**
 * Device IDs: 16 base32 characters (80 bits) plus one check character.
 * SE profile: derived from the secure element's public key, so an ID cannot be
 * claimed without the key. Bare profile: the same shape, from random bytes the
 * host draws at provisioning.
 */
import type { HashProvider } from './hash.ts'
import { concatBytes, utf8Encode } from './bytes.ts'

export const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'
export const ID_BODY_LENGTH = 16
export const ID_LENGTH = 17
const ID_DOMAIN = 'mhealth/device-id/v1'

/** RFC 4648 base32 (lowercase, no padding) of the first 10 bytes. */
function base32of10(b: Uint8Array): string {
  let s = ''
  // 10 bytes = 80 bits = two 40-bit groups of 8 characters
  for (let g = 0; g < 2; g++) {
    let hi = 0
    for (let i = 0; i < 5; i++) hi = hi * 256 + b[g * 5 + i]
    let chunk = ''
    for (let i = 0; i < 8; i++) {
      const v = hi % 32
      hi = Math.floor(hi / 32)
      chunk = ID_ALPHABET.charAt(v) + chunk
    }
    s += chunk
  }
  return s
}

/** The check character: the top 5 bits of SHA-256 over the body's text. */
export function checkChar(h: HashProvider, body: string): string {
  return ID_ALPHABET.charAt(h.sha256(utf8Encode(body))[0] >> 3)
}

/** ID for 10 bytes of entropy (bare profile) or a key-derived digest (SE profile). */
export function deviceIdFromBytes(h: HashProvider, bytes10: Uint8Array): string {
  if (bytes10.length < 10) throw new Error('device ID needs 10 bytes, got ' + bytes10.length)
  const body = base32of10(bytes10)
  return body + checkChar(h, body)
}

/** SE-profile ID: SHA-256 over a domain string and the uncompressed P-256 public key (65 bytes). */
export function deviceIdFromPublicKey(h: HashProvider, pub65: Uint8Array): string {
  if (pub65.length !== 65 || pub65[0] !== 4) throw new Error('expected an uncompressed P-256 public key (65 bytes starting 04), got ' + pub65.length + ' bytes')
  return deviceIdFromBytes(h, h.sha256(concatBytes([utf8Encode(ID_DOMAIN), pub65])))
}

/** Shape and check character; says nothing about registration. */
export function isValidDeviceId(h: HashProvider, id: string): boolean {
  if (typeof id !== 'string' || id.length !== ID_LENGTH) return false
  for (let i = 0; i < ID_LENGTH; i++) if (ID_ALPHABET.indexOf(id.charAt(i)) < 0) return false
  return checkChar(h, id.substr(0, ID_BODY_LENGTH)) === id.charAt(ID_BODY_LENGTH)
}
