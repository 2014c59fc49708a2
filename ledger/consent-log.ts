/**
 * Consent records as ledger leaves: appending one (producer), checking a batch of them
 * before any is applied (replica import), and applying them to the consent state that
 * gateway and dashboard ask (see consent.ts for the records and the state's rules).
 */
import { leafHashFast } from './crypto.ts'
import { ConsentError, parseConsent, type ConsentChange, type ConsentRecord, type ConsentState } from './consent.ts'
import { encodeConsentRecord } from './records.ts'
import { KIND_CONSENT } from './leaf.ts'
import { addLeaf } from './leaf-index.ts'
import { cutIfFull } from './chain.ts'
import { LedgerError } from './types.ts'
import { checkOpen, type LedgerState } from './state.ts'

/**
 * Appends a patient-signed consent record (see consent.ts). Validates signature and
 * ordering first; resolves when durable, after the change listeners have run.
 */
export async function appendConsent(s: LedgerState, recordBytes: Uint8Array): Promise<{ leafIndex: number; leafHash: Uint8Array; change: ConsentChange }> {
  checkOpen(s)
  if (!s.key) throw new LedgerError('replica: consent arrives only through synced blocks', 'readonly')
  const rec = parseConsent(recordBytes)
  s.consent.check(rec)
  const h = leafHashFast(recordBytes)
  const w = s.store.append(encodeConsentRecord(rec.issuedAt, recordBytes))
  const leafIndex = addLeaf(s, KIND_CONSENT, h, null, w.seg, w.offset, rec.issuedAt)
  // State changes at once (a revoke must take effect before anyone else reads it).
  const change = applyConsent(s, rec, leafIndex)
  s.consentListeners.emit(change)
  cutIfFull(s)
  await w.durable
  return { leafIndex, leafHash: h, change }
}

/**
 * Applies consent leaf `leafIndex` (appended, replayed on open or imported) to the state
 * and queues its record for the index, from which the state is rebuilt on the next open.
 */
export function applyConsent(s: LedgerState, rec: ConsentRecord, leafIndex: number): ConsentChange {
  s.tailConsent.push([leafIndex, new Uint8Array(rec.bytes)])
  return s.consent.apply(rec, leafIndex)
}

/** Checks a sequence of consent records against a state without changing it. */
export class ConsentStaging {
  private last = new Map<string, number>()
  constructor(private readonly base: ConsentState) {}
  check(rec: ConsentRecord): void {
    const l = this.last.get(rec.patientId)
    if (l !== undefined && rec.issuedAt <= l) throw new ConsentError(`consent for ${rec.patientId}: issuedAt not increasing`)
    if (l === undefined) this.base.check(rec)
    this.last.set(rec.patientId, rec.issuedAt)
  }
}
