/**
 * The real ledger (`ledger/`) as the gateway's FrameStore and ConsentPort.
 *
 * - `appendFrame` resolves when the ledger says the frame is durable (its group
 *   commit fsynced), so the broker's PUBACK follows durability.
 * - Duplicates: the ledger indexes (deviceId, seq) on disk (SQLite, with the
 *   unindexed tail in memory), derived from its segment files, so `hasFrame` also
 *   catches a retransmission after a restart.
 * - Consent: the ledger's consent state answers `isAllowed`; its change
 *   notifications (called synchronously inside `appendConsent`) feed the broker.
 *
 * The ledger lives in `<dataDir>/ledger`, signed with the gateway's Ed25519 key
 * (`<dataDir>/gateway.key`), producer ID = the gateway's principal ID.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { openLedger, LedgerError, StorageError, type Ledger } from '../ledger/ledger.ts'
import { StoreUnavailable, type ConsentPort, type FrameMeta, type FrameStore } from './ledger-port.ts'

export interface LedgerStoreOptions {
  /** Ledger directory (created if missing). */
  dir: string
  /** Gateway key file (JSON, type ed25519, hex publicKey / privateKey seed). */
  keyFile: string
  producerId: string
  blockIntervalMs?: number
  blockMaxLeaves?: number
  retentionDays?: number
  log?: (msg: string) => void
}

export interface LedgerFrameStore extends FrameStore {
  ledger: Ledger
  consent: ConsentPort
  /** Appends a patient-signed consent record; listeners (live subscriptions) see it before this resolves. */
  appendConsent(record: Uint8Array): Promise<{ leafIndex: number; patientId: string; action: string }>
}

/** The gateway key file as the ledger wants it (32-byte seed + 32-byte public key). */
export function readProducerKey(keyFile: string): { privateKey: Uint8Array; publicKey: Uint8Array } {
  const k = JSON.parse(readFileSync(keyFile, 'utf8')) as { type?: string; publicKey?: string; privateKey?: string }
  const hex = (s: unknown, name: string): Uint8Array => {
    if (typeof s !== 'string' || !/^[0-9a-fA-F]{64}$/.test(s)) throw new Error(`${keyFile}: ${name}: expected 32 bytes as hex`)
    return new Uint8Array(Buffer.from(s, 'hex'))
  }
  if (k.type !== 'ed25519') throw new Error(`${keyFile}: expected an ed25519 key, got ${JSON.stringify(k.type)}`)
  return { privateKey: hex(k.privateKey, 'privateKey'), publicKey: hex(k.publicKey, 'publicKey') }
}

export const ledgerDirOf = (dataDir: string): string => join(dataDir, 'ledger')

export async function openLedgerStore(o: LedgerStoreOptions): Promise<LedgerFrameStore> {
  const ledger = await openLedger({
    dir: o.dir,
    producerKey: readProducerKey(o.keyFile),
    producerId: o.producerId,
    blockIntervalMs: o.blockIntervalMs,
    blockMaxLeaves: o.blockMaxLeaves,
    retentionDays: o.retentionDays,
    log: o.log,
  })
  let pending = 0
  const consent: ConsentPort = {
    isAllowed: (patientId, clinicianId, scope, nowMs) => ledger.consent.isAllowed(patientId, clinicianId, scope, nowMs),
    onChange: (listener) => ledger.onConsent((c) => listener({ patientId: c.patientId, clinicianId: c.clinicianId })),
    lastIssuedAt: (patientId) => ledger.consent.lastIssuedAt(patientId),
  }
  return {
    ledger,
    consent,
    async appendFrame(frame: Uint8Array, meta: FrameMeta) {
      pending++
      try {
        return await ledger.appendFrame(frame, meta)
      } catch (err) {
        // The pipeline claims (deviceId, seq) before appending, so this only happens if
        // another writer got there first: the frame is held, the device may have its PUBACK.
        if (err instanceof LedgerError && err.code === 'duplicate') return { leafIndex: -1, duplicate: true }
        if (err instanceof StorageError) throw new StoreUnavailable(`ledger: ${err.message}`)
        throw err
      } finally {
        pending--
      }
    },
    hasFrame: (deviceId, seq) => {
      try {
        return ledger.hasFrame(deviceId, seq)
      } catch (err) {
        if (err instanceof StorageError) throw new StoreUnavailable(`ledger: ${err.message}`)
        throw err
      }
    },
    fault: () => ledger.storageFault,
    recover: () => ledger.recover(),
    pending: () => pending,
    async appendConsent(record) {
      const r = await ledger.appendConsent(record)
      return { leafIndex: r.leafIndex, patientId: r.change.patientId, action: r.change.action }
    },
    close: () => ledger.close(),
  }
}
