/**
 * What a leaf is: the one place a record body (frame, pruned frame, consent) becomes a
 * leaf (kind, RFC 6962 leaf hash, frame fields, time). The ledger's replay and replica
 * import, the offline verifier and the dashboard all go through here.
 */
import { leafHashFast } from './crypto.ts'
import { RecordType, decodeFrameLike, decodeConsentRecord, type FrameMeta } from './records.ts'
import { parseConsent, type ConsentRecord } from './consent.ts'
import { toHex } from '../protocol/portable/bytes.ts'

export type LeafKind = 'frame' | 'consent' | 'pruned'

/** Leaf kinds as stored in byte 0 of a leaf's locator (index-store.ts: loc.bin). */
export const KIND_FRAME = 1
export const KIND_CONSENT = 2
export const KIND_PRUNED = 3

export function kindName(kind: number): LeafKind {
  return kind === KIND_FRAME ? 'frame' : kind === KIND_CONSENT ? 'consent' : 'pruned'
}

/** A leaf decoded from its record body. */
export interface DecodedLeaf {
  kind: number
  hash: Uint8Array
  /** Frame fields, for frames whole or pruned; null for consent. */
  meta: FrameMeta | null
  /** Frame t0 or consent issuedAt (ms since epoch). */
  t: number
  /** The parsed, signature-checked consent record (its `bytes` view the body); null for frames. */
  consent: ConsentRecord | null
}

/** True for record types that are leaves (frame, pruned frame, consent); blocks and witnesses are not. */
export function isLeafRecord(type: number): boolean {
  return type === RecordType.Frame || type === RecordType.PrunedFrame || type === RecordType.Consent
}

/**
 * Decodes a leaf record body: the leaf hash of a frame's exact bytes, the hash a pruned
 * frame kept, or the hash of a consent record (whose signature is checked here).
 * Undefined for records that are not leaves; throws RecordError / ConsentError if malformed.
 */
export function decodeLeafRecord(body: Buffer): DecodedLeaf | undefined {
  const type = body[0]
  if (type === RecordType.Frame || type === RecordType.PrunedFrame) {
    const f = decodeFrameLike(body)
    // A pruned hash is copied: the tree keeps leaf hashes, and a view would pin the whole segment.
    const hash = type === RecordType.Frame ? leafHashFast(f.data) : new Uint8Array(f.data)
    return { kind: type === RecordType.Frame ? KIND_FRAME : KIND_PRUNED, hash, meta: f, t: f.t0, consent: null }
  }
  if (type === RecordType.Consent) {
    const c = decodeConsentRecord(body)
    const rec = parseConsent(c.record)
    return { kind: KIND_CONSENT, hash: leafHashFast(c.record), meta: null, t: rec.issuedAt, consent: rec }
  }
  return undefined
}

/** RFC 6962 leaf hash of a frame's exact bytes, hex: the ledger's identity for a frame. */
export function leafHashHex(frameBytes: Uint8Array): string {
  return toHex(leafHashFast(frameBytes))
}
