/**
 * A general COSE_Sign1 verifier (RFC 9052 §4) for messages outside our frame
 * profile: published examples, consent records, other tools' output. Unlike
 * decodeCose it accepts untagged messages, alg in either header bucket,
 * external AAD and EdDSA, but it still refuses unknown or mismatched
 * algorithms and critical headers it does not understand.
 */
import { Decoder, Tag } from 'cbor-x'
import { sigStructure, ALG_ES256, HDR_ALG, HDR_CRIT } from '../portable/cose.ts'
import { es256Verify, ed25519Verify, type Impl } from './primitives.ts'

export const ALG_EDDSA = -8

export interface CoseVerifyKey {
  alg: typeof ALG_ES256 | typeof ALG_EDDSA
  /** P-256: 65-byte uncompressed; Ed25519: 32 bytes. */
  publicKey: Uint8Array
}

export type GenericResult = { ok: true; payload: Uint8Array } | { ok: false; reason: string }

const decoder = new Decoder({ mapsAsObjects: false, useRecords: false })
const EMPTY = new Uint8Array(0)
const u8 = (b: Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)

export function verifyCoseSign1(bytes: Uint8Array, key: CoseVerifyKey, opts: { externalAad?: Uint8Array; impl?: Impl } = {}): GenericResult {
  let top: unknown
  try {
    top = decoder.decode(bytes)
  } catch (err) {
    return { ok: false, reason: `not CBOR: ${(err as Error).message}` }
  }
  let arr: unknown = top
  if (top instanceof Tag) {
    if (top.tag !== 18) return { ok: false, reason: `CBOR tag ${top.tag} is not COSE_Sign1 (18)` }
    arr = top.value
  }
  if (!Array.isArray(arr) || arr.length !== 4) return { ok: false, reason: 'not a 4-element COSE_Sign1 array' }
  const [prot, unprot, payload, sig] = arr
  if (!(prot instanceof Uint8Array) || !(unprot instanceof Map) || !(sig instanceof Uint8Array)) return { ok: false, reason: 'malformed COSE_Sign1 structure' }
  if (!(payload instanceof Uint8Array)) return { ok: false, reason: 'detached payloads are not supported' }
  let protMap = new Map<unknown, unknown>()
  if (prot.length > 0) {
    try {
      protMap = decoder.decode(prot)
    } catch {
      return { ok: false, reason: 'protected header is not CBOR' }
    }
    if (!(protMap instanceof Map)) return { ok: false, reason: 'protected header is not a map' }
  }
  const crit = protMap.get(HDR_CRIT)
  if (crit !== undefined) {
    const understood = new Set<unknown>([HDR_ALG])
    if (!Array.isArray(crit) || crit.length === 0 || crit.some((l) => !understood.has(l))) return { ok: false, reason: 'critical header not understood' }
  }
  for (const label of protMap.keys()) if (unprot.has(label)) return { ok: false, reason: `header label ${String(label)} appears in both buckets` }
  const alg = protMap.has(HDR_ALG) ? protMap.get(HDR_ALG) : unprot.get(HDR_ALG)
  if (alg !== key.alg) return { ok: false, reason: `alg ${String(alg)} does not match the key's alg ${key.alg}` }
  // RFC 9052 §3: an empty protected bucket is carried as a zero-length bstr.
  // A sender that wrote the empty map h'A0' instead still signed "no protected
  // headers" (cose-wg Examples sign-pass-01), so both forms sign as zero-length.
  const protForSig = protMap.size === 0 ? EMPTY : u8(prot)
  const tbs = sigStructure(protForSig, u8(payload), opts.externalAad ?? EMPTY)
  const impl = opts.impl ?? 'node'
  const good = key.alg === ALG_ES256 ? es256Verify(impl, key.publicKey, tbs, u8(sig)) : ed25519Verify(impl, key.publicKey, tbs, u8(sig))
  return good ? { ok: true, payload: u8(payload) } : { ok: false, reason: 'signature does not verify' }
}
