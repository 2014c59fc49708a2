/**
 * What the dashboard needs from the rest of the system, and nothing more.
 *
 * The gateway implements this over its registry, its broker's fan-out and the
 * ledger; the tests implement it in memory. The dashboard never touches a
 * database, a broker or a ledger directly, so its routes stay testable and the
 * gateway stays the single place where policy (roles, consent) is decided.
 *
 * Every method may throw a `DashboardError` (code 'forbidden', 'not-found',
 * 'invalid', 'conflict', 'unavailable') to refuse; the routes turn it into
 * 403/404/400/409/503 with its message.
 */

import type { FramePayload } from '../protocol/portable/frame.ts'
import type { FrameVitals, Trends } from './vitals.ts'
import type { Spo2CalibrationSource } from '../gateway/spo2-calibration-dir.ts'
import type { AlarmNotice, AlarmView } from './alarm-service.ts'
import type { AlarmLimits } from './alarm-conditions.ts'

export type { TrendPoint, Trends, RhythmPoint, EcgFindings, FrameVitals } from './vitals.ts'

export type Role = 'clinician' | 'admin'

/** The person behind a session, as the deps authenticated them. */
export interface Actor {
  userId: string
  role: Role
}

export class DashboardError extends Error {
  override name = 'DashboardError'
  /** 'throttled': try again after `retryAfterMs`. */
  constructor(message: string, readonly code: 'forbidden' | 'not-found' | 'invalid' | 'conflict' | 'unavailable' | 'throttled', readonly retryAfterMs?: number) {
    super(message)
  }
}

export interface PatientSummary {
  patientId: string
  /** Display name; the patient ID when the registry has none. */
  name: string
  /** Bed or room label shown on the tile, if known. */
  location?: string
  deviceIds: string[]
  /** Whether this actor may see the patient's data now (live scope consent). */
  consented: boolean
}

export interface DeviceSummary {
  deviceId: string
  profile: 'se' | 'bare'
  patientId: string
  status: 'active' | 'revoked' | 'deleted'
  /** ms since epoch of the last accepted frame, null if never. */
  lastSeenMs: number | null
  online: boolean
  acceptedFrames: number
  /** Rejected frames by reason code ('signature', 'schema', 'replay', ...). */
  rejected: Record<string, number>
}

export interface DeviceRegistration {
  patientId: string
  profile: 'se' | 'bare'
  /** SE: uncompressed P-256 public key, hex (130 chars). */
  publicKey?: string
  /** Bare: the device ID and its 32-byte HMAC secret, hex. */
  deviceId?: string
  secret?: string
}

/** 'sealed': in a signed block (a proof exists now); 'pending': durable, waiting for the next block. */
export type FrameVerification = 'sealed' | 'pending'

export interface FrameRow {
  /** The ledger leaf hash of the frame (RFC 6962: SHA-256(0x00 || frame bytes)), hex. */
  leafHash: string
  deviceId: string
  seq: number
  t0: number
  /** Every stored frame passed signature/MAC verification at ingest; this says whether a block seals it yet. */
  state: FrameVerification
  /** Block height once sealed. */
  block?: number
}

export interface ConsentGrant {
  clinicianId: string
  scope: string
  /** ms since epoch, null for no expiry. */
  expiresMs: number | null
  grantedMs: number
}

export interface ConsentState {
  patientId: string
  grants: ConsentGrant[]
}

/** One frame as the dashboard streams it to a browser: decoded, with derived vitals. */
export interface LiveFrame {
  patientId: string
  leafHash: string
  /** Gateway receive time, ms since epoch. */
  receivedMs: number
  payload: FramePayload
  vitals: FrameVitals
}

/**
 * A patient's stored frames for an export, handed out a page at a time as the export asks
 * for them, so a day of frames is never held (or read) at once. Oldest first by t0, as
 * `frames`; a page never splits frames that share a t0 (their order is settled inside one).
 */
export interface FramePages {
  /** About `max` frames' bytes (more when a t0 is shared), or null after the last. */
  next(max: number): Promise<Uint8Array[] | null>
  /** Stops early (the client went away): nothing more is read. */
  close(): void
}

export interface LiveSubscription {
  close(): void
}

/** The alarms as one actor may see and act on them (consent applied by the implementation). */
export interface AlarmDeps {
  list(actor: Actor, o: { all: boolean; patientId?: string }): Promise<AlarmView[]>
  get(actor: Actor, id: string): Promise<AlarmView>
  acknowledge(actor: Actor, id: string): Promise<AlarmNotice>
  silence(actor: Actor, id: string, seconds: number): Promise<AlarmNotice>
  limits(actor: Actor, patientId: string): Promise<AlarmLimits>
  setLimits(actor: Actor, patientId: string, limits: unknown): Promise<{ limits: AlarmLimits; leafIndex: number | null }>
  /** Every change this actor may see, as it happens; returns the unsubscribe. */
  subscribe(actor: Actor, listener: (n: AlarmNotice) => void): () => void
}

export interface DashboardDeps {
  /**
   * Password check; null when the user is unknown or the password wrong. `source` is the
   * client's address: one that keeps guessing at an account gets DashboardError 'throttled'.
   */
  authenticateUser(username: string, password: string, source?: string): Promise<Actor | null>
  listPatients(actor: Actor): Promise<PatientSummary[]>
  listDevices(actor: Actor): Promise<DeviceSummary[]>
  registerDevice(actor: Actor, reg: DeviceRegistration): Promise<DeviceSummary>
  revokeDevice(actor: Actor, deviceId: string): Promise<void>
  /** HR/PR/SpO2, PVC/min and rhythm derived from the patient's stored frames in [fromMs, toMs]. */
  trends(actor: Actor, patientId: string, fromMs: number, toMs: number): Promise<Trends>
  /** Most recent first. */
  recentFrames(actor: Actor, patientId: string, limit: number): Promise<FrameRow[]>
  /** Raw frame bytes in [fromMs, toMs) by t0, oldest first (for export). */
  frames(actor: Actor, patientId: string, fromMs: number, toMs: number): Promise<Uint8Array[]>
  /** The same frames as `frames`, for a streaming export: consent is checked before the first page and again before each. */
  framePages(actor: Actor, patientId: string, fromMs: number, toMs: number): Promise<FramePages>
  /** The ledger's self-contained inclusion proof (JSON-serialisable) for a frame hash. */
  proof(actor: Actor, frameHash: string): Promise<unknown>
  /** The ledger producer's Ed25519 public key, hex: the browser's trust anchor for proofs. */
  producerPublicKey(): Promise<string>
  consentState(actor: Actor, patientId: string): Promise<ConsentState>
  grantConsent(actor: Actor, patientId: string, clinicianId: string, scope: string, expiresMs: number | null): Promise<void>
  revokeConsent(actor: Actor, patientId: string, clinicianId: string, scope: string): Promise<void>
  /** Clinicians a patient may grant access to. */
  listClinicians(actor: Actor): Promise<string[]>
  /**
   * Live frames of one patient for this actor, under the same consent rule as
   * the broker's patient topic: refuse (DashboardError 'forbidden') without
   * consent, and call `onEnd('consent-revoked')` the moment consent goes.
   */
  subscribeLive(actor: Actor, patientId: string, onFrame: (f: LiveFrame) => void, onEnd: (reason: string) => void): Promise<LiveSubscription>
  /** Calls `listener` after every consent change (grant or revoke); returns the unsubscribe function. */
  onConsentChange(listener: (c: { patientId: string; clinicianId?: string }) => void): () => void
  /** The R->SpO2 calibrations the gateway computes SpO2 with (for the export; default: the simulator's curve). */
  spo2Calibrations?: Spo2CalibrationSource
  /** The alarm system (docs/alarms.md), where there is one: its changes go out on the live stream too. */
  alarms?: AlarmDeps
}
