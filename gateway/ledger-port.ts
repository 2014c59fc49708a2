/**
 * The two things the gateway needs from the ledger, as small interfaces, so the
 * broker never depends on how blocks are built. The real ledger (`ledger/`)
 * implements both; tests use a file-backed store in test/gateway/helpers.
 */

/** Where verified frames go. `appendFrame` resolves only once the frame is durable. */
export interface FrameStore {
  /**
   * Stores the exact frame bytes as received (COSE_Sign1/Mac0). Resolves after the
   * bytes are on stable storage (fsync or equivalent); the gateway sends PUBACK then.
   */
  appendFrame(frame: Uint8Array, meta: FrameMeta): Promise<{ leafIndex: number; leafHash?: Uint8Array; duplicate?: boolean }>
  /** True when (deviceId, seq) is already stored: a retransmission to acknowledge, not store. */
  hasFrame(deviceId: string, seq: number): boolean | Promise<boolean>
  /** Frames handed to appendFrame whose durability is still pending (the "ledger lag" gauge). */
  pending?(): number
  /** Why the store cannot write now (a full disk), or undefined while it can. */
  fault?(): string | undefined
  /** After a fault: tries to carry on (reopens, as after a crash); throws if it still cannot. */
  recover?(): Promise<void>
  /** Appends a patient-signed consent record (stores that hold consent, e.g. the ledger). */
  appendConsent?(record: Uint8Array): Promise<{ leafIndex: number; patientId: string; action: string }>
  close(): Promise<void>
}

/**
 * The store could not make a frame durable (a failed write or fsync: a full disk). Not the
 * frame's fault: the board must keep it and send it again, so it gets no PUBACK.
 */
export class StoreUnavailable extends Error {
  override name = 'StoreUnavailable'
}

export interface FrameMeta {
  deviceId: string
  seq: number
  t0: number
}

/** Consent records (ledger issue): who may watch which patient's live data. */
export interface ConsentPort {
  isAllowed(patientId: string, clinicianId: string, scope: string, nowMs: number): boolean
  /** Calls `listener` whenever a grant or revocation is recorded; returns an unsubscribe function. */
  onChange(listener: (change: { patientId: string; clinicianId?: string }) => void): () => void
  /** issuedAt of the newest record held for the patient (clustering uses it to fetch only newer ones). */
  lastIssuedAt?(patientId: string): number | undefined
}

/** Scope a clinician needs to subscribe to a patient's live frames. */
export const LIVE_SCOPE = 'live'

/** Consent source that allows nothing: the safe default when no ledger consent is wired. */
export const denyAllConsent: ConsentPort = {
  isAllowed: () => false,
  onChange: () => () => {},
}

/**
 * A module that opens a FrameStore, loaded by `mhealth gateway --frame-store MODULE`
 * (`export async function openFrameStore(opts)`), so the CLI can run against the real
 * ledger or a test store without the gateway importing either.
 */
export interface FrameStoreModule {
  openFrameStore(opts: { dir: string; producerKeyFile: string; producerId: string }): Promise<FrameStore & { consent?: ConsentPort }>
}
