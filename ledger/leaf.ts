/**
 * What a leaf is: the one place a record body (frame, pruned frame, consent, alarm event) becomes a
 * leaf (kind, RFC 6962 leaf hash, frame fields, time). The ledger's replay and replica
 * import, the offline verifier and the dashboard all go through here.
 */
import { leafHashFast } from './crypto.ts'
import { RecordType, RecordError, decodeFrameLike, decodeConsentRecord, decodeAlarmRecord, type FrameMeta } from './records.ts'
import { parseAlarmEvent, type AlarmEvent } from './alarm-record.ts'
import { parseConsent, type ConsentRecord } from './consent.ts'
import { toHex } from '../protocol/portable/bytes.ts'

export type LeafKind = 'frame' | 'consent' | 'pruned' | 'alarm'

/** Leaf kinds as stored in byte 0 of a leaf's locator (index-store.ts: loc.bin). */
export const KIND_FRAME = 1
export const KIND_CONSENT = 2
export const KIND_PRUNED = 3
export const KIND_ALARM = 4

export function kindName(kind: number): LeafKind {
  return kind === KIND_FRAME ? 'frame' : kind === KIND_CONSENT ? 'consent' : kind === KIND_ALARM ? 'alarm' : 'pruned'
}

/** True for the kinds that are a device's frame (whole or pruned): those with a device, seq and t0 in the locator. */
export function isFrameKind(kind: number): boolean {
  return kind === KIND_FRAME || kind === KIND_PRUNED
}

/** A leaf decoded from its record body. */
export interface DecodedLeaf {
  kind: number
  hash: Uint8Array
  /** Frame fields, for frames whole or pruned; null for consent and alarm events. */
  meta: FrameMeta | null
  /** Frame t0, consent issuedAt or alarm event time (ms since epoch). */
  t: number
  /** The parsed, signature-checked consent record (its `bytes` view the body); null for frames. */
  consent: ConsentRecord | null
  /** The parsed alarm event; absent for other kinds. */
  alarm?: AlarmEvent
}

/** True for record types that are leaves (frame, pruned frame, consent, alarm event); blocks and witnesses are not. */
export function isLeafRecord(type: number): boolean {
  return type === RecordType.Frame || type === RecordType.PrunedFrame || type === RecordType.Consent || type === RecordType.Alarm
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
  if (type === RecordType.Alarm) {
    const a = decodeAlarmRecord(body)
    const ev = parseAlarmEvent(a.event)
    if (ev.t !== a.t) throw new RecordError(`alarm record: time ${a.t} differs from its event's ${ev.t}`)
    return { kind: KIND_ALARM, hash: leafHashFast(a.event), meta: null, t: a.t, consent: null, alarm: ev }
  }
  return undefined
}

/** RFC 6962 leaf hash of a frame's exact bytes, hex: the ledger's identity for a frame. */
export function leafHashHex(frameBytes: Uint8Array): string {
  return toHex(leafHashFast(frameBytes))
}
