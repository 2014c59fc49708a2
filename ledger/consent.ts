/**
 * Consent records: a patient grants or revokes a clinician's access to a scope.
 *
 * Record bytes = deterministic CBOR array [body, signature] where body is the
 * deterministic CBOR map {0: "grant"|"revoke", 1: patientPublicKey (32 bytes),
 * 2: clinicianId, 3: scope, 4: expiresAt ms (0 = never), 5: issuedAt ms} and
 * signature = Ed25519(patient key, "mhealth-consent-v1\0" || body). The record carries the
 * patient's public key and the patient ID is derived from it (patientIdFromPublicKey),
 * so anyone can check a record with no registry. issuedAt must strictly increase per
 * patient, so an old grant cannot be replayed after a revoke.
 */
import { encodeCbor, decodeCbor } from './cbor.ts'
import { ed25519Sign, ed25519Verify, ed25519PrivateKey, sha256 } from './crypto.ts'

export type ConsentAction = 'grant' | 'revoke'
export interface ConsentBody {
  action: ConsentAction
  patientKey: Uint8Array
  clinicianId: string
  scope: string
  expiresAt: number
  issuedAt: number
}
export interface ConsentRecord extends ConsentBody {
  patientId: string
  bytes: Uint8Array
}
export interface ConsentChange {
  action: ConsentAction
  patientId: string
  clinicianId: string
  scope: string
  expiresAt: number
  issuedAt: number
  leafIndex: number
}

export class ConsentError extends Error {
  override name = 'ConsentError'
}

const CONTEXT = new TextEncoder().encode('mhealth-consent-v1\0')
const B32 = 'abcdefghijklmnopqrstuvwxyz234567'

/** "pt-" + base32 (RFC 4648 alphabet, lower case) of the first 10 bytes of SHA-256(publicKey): 19 chars. */
export function patientIdFromPublicKey(pub: Uint8Array): string {
  const d = sha256(pub).subarray(0, 10)
  let bits = 0
  let acc = 0
  let out = 'pt-'
  for (const b of d) {
    acc = (acc << 8) | b
    bits += 8
    while (bits >= 5) {
      out += B32[(acc >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  return out
}

function tbs(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(CONTEXT.length + body.length)
  out.set(CONTEXT)
  out.set(body, CONTEXT.length)
  return out
}

function checkText(name: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 200) throw new ConsentError(`${name}: expected 1..200 characters of text, got ${JSON.stringify(v)}`)
  return v
}
function checkTime(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v >= 2 ** 48) throw new ConsentError(`${name}: expected ms since epoch, got ${String(v)}`)
  return v
}

/** Builds and signs a consent record with the patient's Ed25519 key. */
export function signConsent(patient: { privateKey: Uint8Array; publicKey: Uint8Array }, b: Omit<ConsentBody, 'patientKey'>): Uint8Array {
  if (b.action !== 'grant' && b.action !== 'revoke') throw new ConsentError(`action: expected 'grant' or 'revoke', got ${JSON.stringify(b.action)}`)
  const body = encodeCbor(
    new Map<number, string | number | Uint8Array>([
      [0, b.action],
      [1, patient.publicKey],
      [2, checkText('clinicianId', b.clinicianId)],
      [3, checkText('scope', b.scope)],
      [4, checkTime('expiresAt', b.expiresAt)],
      [5, checkTime('issuedAt', b.issuedAt)],
    ]),
  )
  const sig = ed25519Sign(ed25519PrivateKey(patient.privateKey, patient.publicKey), tbs(body))
  return encodeCbor([body, sig])
}

/** Decodes and checks a record's structure and signature. */
export function parseConsent(bytes: Uint8Array): ConsentRecord {
  let outer, m
  try {
    outer = decodeCbor(bytes)
    if (!Array.isArray(outer) || outer.length !== 2 || !(outer[0] instanceof Uint8Array) || !(outer[1] instanceof Uint8Array)) throw new ConsentError('expected a CBOR array [body bytes, signature bytes]')
    m = decodeCbor(outer[0])
  } catch (e) {
    throw e instanceof ConsentError ? e : new ConsentError(`consent record: ${(e as Error).message}`)
  }
  if (!(m instanceof Map) || m.size !== 6) throw new ConsentError('consent body: expected a CBOR map with 6 entries')
  const action = m.get(0)
  if (action !== 'grant' && action !== 'revoke') throw new ConsentError(`consent body: action expected 'grant' or 'revoke', got ${JSON.stringify(action)}`)
  const patientKey = m.get(1)
  if (!(patientKey instanceof Uint8Array) || patientKey.length !== 32) throw new ConsentError('consent body: patient public key expected 32 bytes')
  const rec: ConsentRecord = {
    action,
    patientKey,
    clinicianId: checkText('clinicianId', m.get(2)),
    scope: checkText('scope', m.get(3)),
    expiresAt: checkTime('expiresAt', m.get(4)),
    issuedAt: checkTime('issuedAt', m.get(5)),
    patientId: patientIdFromPublicKey(patientKey),
    bytes,
  }
  if (!ed25519Verify(patientKey, tbs(outer[0]), outer[1])) throw new ConsentError(`consent record: bad signature for patient ${rec.patientId}`)
  return rec
}

interface Grant {
  expiresAt: number
  issuedAt: number
  leafIndex: number
}

/** The current consent state, rebuilt from the ledger's consent leaves in order. */
export class ConsentState {
  private grants = new Map<string, Map<string, Grant>>() // patientId -> "clinician\0scope" -> grant
  private lastIssued = new Map<string, number>()

  /** Throws ConsentError if `rec` may not be applied (replayed or out-of-order issuedAt). */
  check(rec: ConsentRecord): void {
    const last = this.lastIssued.get(rec.patientId)
    if (last !== undefined && rec.issuedAt <= last) throw new ConsentError(`consent record for ${rec.patientId}: issuedAt ${rec.issuedAt} is not after the previous record (${last}); replay refused`)
  }

  /** issuedAt of the last record applied for the patient (records older than this are replays). */
  lastIssuedAt(patientId: string): number | undefined {
    return this.lastIssued.get(patientId)
  }

  apply(rec: ConsentRecord, leafIndex: number): ConsentChange {
    this.lastIssued.set(rec.patientId, rec.issuedAt)
    let g = this.grants.get(rec.patientId)
    if (!g) this.grants.set(rec.patientId, (g = new Map()))
    const key = rec.clinicianId + '\0' + rec.scope
    if (rec.action === 'grant') g.set(key, { expiresAt: rec.expiresAt, issuedAt: rec.issuedAt, leafIndex })
    else g.delete(key)
    return { action: rec.action, patientId: rec.patientId, clinicianId: rec.clinicianId, scope: rec.scope, expiresAt: rec.expiresAt, issuedAt: rec.issuedAt, leafIndex }
  }

  /** True if the clinician holds an unexpired grant for exactly `scope` or for "*". */
  isAllowed(patientId: string, clinicianId: string, scope: string, nowMs: number): boolean {
    const g = this.grants.get(patientId)
    if (!g) return false
    for (const s of [scope, '*']) {
      const x = g.get(clinicianId + '\0' + s)
      if (x && (x.expiresAt === 0 || nowMs < x.expiresAt)) return true
    }
    return false
  }

  /** Active and expired grants of a patient (expired ones until revoked, so the UI can show them). */
  list(patientId: string): { clinicianId: string; scope: string; expiresAt: number; issuedAt: number; leafIndex: number }[] {
    const g = this.grants.get(patientId)
    if (!g) return []
    return [...g.entries()].map(([k, v]) => {
      const [clinicianId, scope] = k.split('\0')
      return { clinicianId, scope, ...v }
    })
  }
}
