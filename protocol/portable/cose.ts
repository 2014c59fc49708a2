/**
 * COSE (RFC 9052) for our two frame profiles:
 *  - SE profile: COSE_Sign1 (tag 18), alg ES256 (-7), signature r‖s (64 bytes);
 *  - bare profile: COSE_Mac0 (tag 17), alg HMAC 256/256 (5), 32-byte tag.
 * The protected header is exactly {1: alg, 4: kid}, kid being the device ID's
 * bytes; the unprotected header is empty; no external AAD.
 */
import { CborWriter } from './cbor.ts'
import { utf8Encode } from './bytes.ts'

export const TAG_SIGN1 = 18
export const TAG_MAC0 = 17
export const ALG_ES256 = -7
export const ALG_HMAC256 = 5
export const HDR_ALG = 1
export const HDR_CRIT = 2
export const HDR_KID = 4

/** The serialized protected header map {1: alg, 4: kid}. */
export function protectedHeader(alg: number, kid: string): Uint8Array {
  const w = new CborWriter(32)
  w.mapHeader(2)
  w.uint(HDR_ALG).int(alg)
  w.uint(HDR_KID).bytes(utf8Encode(kid))
  return w.copy()
}

/** RFC 9052 §4.4 Sig_structure ["Signature1", protected, external_aad, payload]. */
export function sigStructure(protectedBytes: Uint8Array, payload: Uint8Array, externalAad: Uint8Array): Uint8Array {
  const w = new CborWriter(payload.length + protectedBytes.length + 32)
  w.arrayHeader(4).ascii('Signature1').bytes(protectedBytes).bytes(externalAad).bytes(payload)
  return w.copy()
}

/** RFC 9052 §6.3 MAC_structure ["MAC0", protected, external_aad, payload]. */
export function macStructure(protectedBytes: Uint8Array, payload: Uint8Array, externalAad: Uint8Array): Uint8Array {
  const w = new CborWriter(payload.length + protectedBytes.length + 32)
  w.arrayHeader(4).ascii('MAC0').bytes(protectedBytes).bytes(externalAad).bytes(payload)
  return w.copy()
}

const EMPTY = new Uint8Array(0)

/** The bytes a secure element signs the SHA-256 digest of. */
export function sign1ToBeSigned(kid: string, payload: Uint8Array): Uint8Array {
  return sigStructure(protectedHeader(ALG_ES256, kid), payload, EMPTY)
}

/** The bytes HMAC-SHA256 runs over. */
export function mac0ToBeMaced(kid: string, payload: Uint8Array): Uint8Array {
  return macStructure(protectedHeader(ALG_HMAC256, kid), payload, EMPTY)
}

function envelope(tag: number, alg: number, kid: string, payload: Uint8Array, last: Uint8Array): Uint8Array {
  const prot = protectedHeader(alg, kid)
  const w = new CborWriter(payload.length + prot.length + last.length + 16)
  w.tag(tag).arrayHeader(4).bytes(prot).mapHeader(0).bytes(payload).bytes(last)
  return w.copy()
}

/** COSE_Sign1 = 18([protected, {}, payload, signature]). */
export function buildSign1(kid: string, payload: Uint8Array, signature: Uint8Array): Uint8Array {
  if (signature.length !== 64) throw new Error('ES256 signature must be 64 bytes (r‖s), got ' + signature.length)
  return envelope(TAG_SIGN1, ALG_ES256, kid, payload, signature)
}

/** COSE_Mac0 = 17([protected, {}, payload, tag]). */
export function buildMac0(kid: string, payload: Uint8Array, tag: Uint8Array): Uint8Array {
  if (tag.length !== 32) throw new Error('HMAC 256/256 tag must be 32 bytes, got ' + tag.length)
  return envelope(TAG_MAC0, ALG_HMAC256, kid, payload, tag)
}
