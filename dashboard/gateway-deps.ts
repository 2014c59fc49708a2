/**
 * DashboardDeps over a running gateway (in process): its registry and user
 * logins, its ConsentPort (the ledger's consent state), its ledger (frames,
 * proofs), and a tap on the broker.
 *
 * The tap is an in-process Aedes subscription to the topics the gateway already
 * publishes: `mhealth/patient/+/frames` (stored frames only: the pipeline fans a
 * frame out after the ledger made it durable) and `mhealth/dev/+/control` (NACKs
 * give rejected-frame counts per device and reason). No gateway code changes.
 *
 * Policy is the gateway's: a clinician sees a patient's data only while the
 * patient's consent (scope `live`) holds, re-checked at every frame, as the
 * broker does for MQTT subscribers; roles do not bypass consent. Consent itself
 * is changed only through patient-signed records; the demo holds the patients'
 * keys (`patientKeys`) and signs on their behalf when an admin uses the consent
 * page, standing in for the patient's own app (which would POST /api/consent).
 */
import type { PublishPacket } from 'aedes'
import type { Gateway } from '../gateway/gateway.ts'
import type { LedgerFrameStore } from '../gateway/ledger-store.ts'
import { registerDevice } from '../gateway/devices.ts'
import { protocolCodec } from '../gateway/protocol-codec.ts'
import { RegistryError, patientSpans, type Device, type PatientSpan } from '../gateway/registry.ts'
import { LIVE_SCOPE } from '../gateway/ledger-port.ts'
import { LoginThrottled } from '../gateway/login-backoff.ts'
import { signConsent, ConsentError } from '../ledger/consent.ts'
import type { Ledger } from '../ledger/ledger.ts'
import { decodeFrame } from '../protocol/node/decode.ts'
import type { FramePayload } from '../protocol/portable/frame.ts'
import {
  DashboardError,
  type Actor,
  type ConsentState,
  type DashboardDeps,
  type AlarmDeps,
  type DeviceSummary,
  type FrameRow,
  type LiveFrame,
  type PatientSummary,
} from './deps.ts'
import { VitalsTracker } from './vitals.ts'
import type { Spo2CalibrationSource } from '../gateway/spo2-calibration-dir.ts'
import { leafHashOf } from './leaf-hash.ts'
import { ledgerFramePages } from './ledger-pages.ts'
import { AlarmService } from './alarm-service.ts'
import { alarmDeps } from './alarm-deps.ts'
import type { EngineSettings } from './alarm-conditions.ts'

export interface PatientKey {
  privateKey: Uint8Array
  publicKey: Uint8Array
}

export interface GatewayDepsOptions {
  /** Display names and bed labels by patient ID. */
  patients?: Record<string, { name?: string; location?: string }>
  /** Patients' Ed25519 consent keys held by this process (demo only), by patient ID. */
  patientKeys?: Record<string, PatientKey>
  /** Frames per patient replayed to a new live subscriber (default 6: the waveform window plus one). */
  replayFrames?: number
  /** Trend history kept in memory (default 1 h). */
  trendMs?: number
  /** The R->SpO2 calibrations by device (default: the simulator's curve for every device). */
  spo2Calibrations?: Spo2CalibrationSource
  /** Alarm engine settings (alarm-conditions.ts DEFAULT_SETTINGS); alarmTickMs 0: tick by hand (tests). */
  alarmSettings?: Partial<EngineSettings>
  alarmTickMs?: number
  now?: () => number
}

export interface GatewayDashboardDeps extends DashboardDeps {
  /** Resolves once the trends are backfilled from the ledger, the alarms rebuilt from it, and the tap is live. */
  ready: Promise<void>
  alarms: AlarmDeps
  /** The engine at work (fed from the tap; also for tests and the figures script). */
  alarmService: AlarmService
  close(): void
}

const PATIENT_TOPIC = /^mhealth\/patient\/([^/]+)\/frames$/
const CONTROL_TOPIC = /^mhealth\/dev\/([^/]+)\/control$/


type Listener = { actor: Actor; onFrame: (f: LiveFrame) => void; onEnd: (reason: string) => void }

export function gatewayDashboardDeps(gw: Gateway, o: GatewayDepsOptions = {}): GatewayDashboardDeps {
  const now = o.now ?? Date.now
  const ledger: Ledger | null = (gw.store as Partial<LedgerFrameStore>).ledger ?? null
  const appendConsent = gw.store.appendConsent?.bind(gw.store)
  const vitals = new VitalsTracker({ keepMs: o.trendMs, calibrations: o.spo2Calibrations })
  const accepted = new Map<string, number>()
  const rejected = new Map<string, Record<string, number>>()
  const listeners = new Map<string, Set<Listener>>()
  const lastIssued = new Map<string, number>()
  /** The last few frames per patient, replayed to a new subscriber so its waveform starts full, not blank. */
  const recent = new Map<string, LiveFrame[]>()
  const replayFrames = o.replayFrames ?? 6
  const aedes = gw.broker.aedes
  let closed = false
  const alarmService = new AlarmService({
    ledger,
    now,
    settings: o.alarmSettings,
    tickMs: o.alarmTickMs,
    storageFault: () => gw.store.fault?.(),
    publish: (topic, payload) => aedes.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false } as PublishPacket, () => {}),
  })

  const may = (actor: Actor, patientId: string): boolean => gw.consent.isAllowed(patientId, actor.userId, LIVE_SCOPE, now())
  const requireConsent = (actor: Actor, patientId: string): void => {
    if (!may(actor, patientId)) throw new DashboardError(`${actor.userId} has no consent from patient ${patientId} (scope ${LIVE_SCOPE})`, 'forbidden')
  }
  const requireAdmin = (actor: Actor): void => {
    if (actor.role !== 'admin') throw new DashboardError(`role admin required, ${actor.userId} is ${actor.role}`, 'forbidden')
  }
  const requireLedger = (): Ledger => {
    if (!ledger) throw new DashboardError('this gateway stores frames outside the ledger: no history or proofs', 'unavailable')
    return ledger
  }
  const devicesOf = (patientId: string): Device[] => gw.registry.listDevices().filter((d) => d.patient === patientId)
  /** Every stretch of time a device's frames were this patient's (a board moved between patients counts for each, in turn). */
  const spansOf = (patientId: string): PatientSpan[] => gw.registry.listDevices().flatMap((d) => patientSpans(d, gw.registry.deviceEvents(d.id))).filter((s) => s.patient === patientId)
  /** Whose the device's frame with this t0 is. */
  const patientAt = (d: Device, t0: number): string => {
    for (const s of patientSpans(d, gw.registry.deviceEvents(d.id))) if (t0 >= s.fromMs && t0 < s.toMs) return s.patient
    return d.patient
  }

  // --- the tap -------------------------------------------------------------
  let queue: { patientId: string; bytes: Uint8Array; receivedMs: number }[] | null = []

  function onStored(patientId: string, bytes: Uint8Array, receivedMs: number): void {
    let payload: FramePayload
    try {
      payload = decodeFrame(bytes).payload
    } catch {
      return // stored frames passed the strict decoder at ingest; nothing to show otherwise
    }
    accepted.set(payload.deviceId, (accepted.get(payload.deviceId) ?? 0) + 1)
    const v = vitals.add(patientId, payload)
    alarmService.frame(patientId, payload, v)
    const f: LiveFrame = { patientId, leafHash: leafHashOf(bytes), receivedMs, payload, vitals: v }
    const ring = recent.get(patientId) ?? []
    ring.push(f)
    if (ring.length > replayFrames) ring.shift()
    recent.set(patientId, ring)
    const subs = listeners.get(patientId)
    if (!subs || subs.size === 0) return
    for (const l of [...subs]) {
      // Re-checked per frame like the broker's authorizeForward: an expired grant ends the stream too.
      if (!may(l.actor, patientId)) {
        subs.delete(l)
        l.onEnd('consent-revoked')
      } else l.onFrame(f)
    }
  }

  const tapFrames = (packet: PublishPacket, cb: () => void): void => {
    const m = PATIENT_TOPIC.exec(packet.topic)
    if (m) {
      const item = { patientId: m[1], bytes: new Uint8Array(packet.payload as Buffer), receivedMs: now() }
      if (queue) queue.push(item)
      else onStored(item.patientId, item.bytes, item.receivedMs)
    }
    cb()
  }
  const tapControl = (packet: PublishPacket, cb: () => void): void => {
    const m = CONTROL_TOPIC.exec(packet.topic)
    if (m) {
      try {
        const msg = JSON.parse(String(packet.payload)) as { t?: unknown; reason?: unknown }
        if (msg.t === 'nack' && typeof msg.reason === 'string') {
          const r = rejected.get(m[1]) ?? {}
          r[msg.reason] = (r[msg.reason] ?? 0) + 1
          rejected.set(m[1], r)
          // A storage NACK is the gateway's fault, not the board's: the storage alarm covers it.
          const d = msg.reason === 'storage' ? undefined : gw.registry.getDevice(m[1])
          if (d) alarmService.rejected(d.id, d.patient)
        }
      } catch {
        // control messages are the gateway's own JSON; anything else is not ours to count
      }
    }
    cb()
  }
  const subscribed = Promise.all([
    new Promise<void>((r) => aedes.subscribe('mhealth/patient/+/frames', tapFrames, () => r())),
    new Promise<void>((r) => aedes.subscribe('mhealth/dev/+/control', tapControl, () => r())),
  ])

  // Consent changes end live streams at once (not only at the next frame).
  const unConsent = gw.consent.onChange((c) => {
    const subs = listeners.get(c.patientId)
    if (!subs) return
    for (const l of [...subs]) {
      if (!may(l.actor, c.patientId)) {
        subs.delete(l)
        l.onEnd('consent-revoked')
      }
    }
  })

  async function backfill(): Promise<void> {
    if (!ledger) return
    const from = now() - (o.trendMs ?? 3600_000)
    for (const d of gw.registry.listDevices()) {
      for (const f of await ledger.frames({ deviceId: d.id, from, limit: 10_000 })) {
        if (!f.bytes) continue
        try {
          vitals.add(patientAt(d, f.t0), decodeFrame(f.bytes).payload)
        } catch {
          // see onStored
        }
      }
    }
  }

  const ready = Promise.all([subscribed, alarmService.ready])
    .then(backfill)
    .finally(() => {
      const q = queue ?? []
      queue = null
      for (const item of q) onStored(item.patientId, item.bytes, item.receivedMs)
    })

  function deviceSummary(d: Device): DeviceSummary {
    return {
      deviceId: d.id,
      profile: d.profile,
      patientId: d.patient,
      status: d.status,
      lastSeenMs: d.lastSeenMs ?? null,
      online: Object.prototype.hasOwnProperty.call((aedes as unknown as { clients: Record<string, unknown> }).clients, d.id),
      acceptedFrames: accepted.get(d.id) ?? 0,
      rejected: { ...(rejected.get(d.id) ?? {}) },
    }
  }

  async function patientFrames(patientId: string, from: number, to: number, limit: number) {
    const l = requireLedger()
    const out = []
    for (const s of spansOf(patientId)) {
      const lo = Math.max(from, s.fromMs)
      const hi = Math.min(to, s.toMs)
      if (lo < hi) out.push(...(await l.frames({ deviceId: s.deviceId, from: lo, to: hi, limit })))
    }
    return out.sort((a, b) => a.t0 - b.t0 || a.leafIndex - b.leafIndex)
  }

  async function consentAs(actor: Actor, patientId: string, action: 'grant' | 'revoke', clinicianId: string, scope: string, expiresMs: number | null): Promise<void> {
    requireAdmin(actor)
    const key = o.patientKeys?.[patientId]
    if (!key) throw new DashboardError(`this gateway does not hold patient ${patientId}'s key: consent must come from the patient's own app (POST /api/consent)`, 'forbidden')
    if (!appendConsent) throw new DashboardError('this gateway has no consent ledger', 'unavailable')
    const issuedAt = Math.max(now(), (lastIssued.get(patientId) ?? 0) + 1)
    lastIssued.set(patientId, issuedAt)
    const record = signConsent(key, { action, clinicianId, scope, expiresAt: expiresMs ?? 0, issuedAt })
    try {
      await appendConsent(record)
    } catch (err) {
      if (err instanceof ConsentError) throw new DashboardError(err.message, 'invalid')
      throw err
    }
  }

  return {
    ready,
    spo2Calibrations: o.spo2Calibrations,
    alarmService,
    alarms: alarmDeps(alarmService, may),
    async authenticateUser(username, password, source) {
      try {
        const u = await gw.users.checkLogin(username, password, source)
        return u ? { userId: u.username, role: u.role } : null
      } catch (err) {
        // The registry bounds concurrent password hashing: a login flood gets 503, not a queue.
        if (err instanceof RegistryError && err.code === 'busy') throw new DashboardError(err.message, 'unavailable')
        if (err instanceof LoginThrottled) throw new DashboardError(err.message, 'throttled', err.retryAfterMs)
        throw err
      }
    },
    async listPatients(actor) {
      const ids = new Map<string, string[]>()
      for (const d of gw.registry.listDevices()) {
        if (d.status !== 'active') continue
        const list = ids.get(d.patient) ?? []
        list.push(d.id)
        ids.set(d.patient, list)
      }
      const out: PatientSummary[] = []
      for (const [patientId, deviceIds] of ids) {
        const consented = may(actor, patientId)
        // A clinician learns nothing about patients who have not granted access.
        if (!consented && actor.role !== 'admin') continue
        const meta = o.patients?.[patientId]
        out.push({ patientId, name: meta?.name ?? patientId, location: meta?.location, deviceIds: consented ? deviceIds : [], consented })
      }
      return out.sort((a, b) => (a.location ?? a.name).localeCompare(b.location ?? b.name))
    },
    async listDevices(actor) {
      requireAdmin(actor)
      return gw.registry.listDevices().map(deviceSummary)
    },
    async registerDevice(actor, reg) {
      requireAdmin(actor)
      try {
        const d = registerDevice(gw.registry, protocolCodec, { profile: reg.profile, publicKey: reg.publicKey, id: reg.deviceId, secret: reg.secret, patient: reg.patientId })
        return deviceSummary(d)
      } catch (err) {
        if (err instanceof RegistryError) throw new DashboardError(err.message, err.code === 'exists' ? 'conflict' : err.code === 'not-found' ? 'not-found' : 'invalid')
        throw err
      }
    },
    async revokeDevice(actor, deviceId) {
      requireAdmin(actor)
      if (!gw.registry.getDevice(deviceId)) throw new DashboardError(`device ${deviceId} is not registered`, 'not-found')
      gw.registry.revoke(deviceId)
      gw.broker.disconnectDevice(deviceId)
      vitals.forget(deviceId)
      alarmService.forget(deviceId)
    },
    async trends(actor, patientId, fromMs, toMs) {
      requireConsent(actor, patientId)
      return vitals.range(patientId, fromMs, toMs)
    },
    async recentFrames(actor, patientId, limit) {
      requireConsent(actor, patientId)
      const l = requireLedger()
      const frames = await patientFrames(patientId, now() - 3600_000, Infinity, 100_000)
      const rows: FrameRow[] = []
      for (const f of frames.slice(-limit).reverse()) {
        const b = l.blockOf(f.leafIndex)
        rows.push({ leafHash: f.leafHash, deviceId: f.deviceId, seq: f.seq, t0: f.t0, state: b >= 0 ? 'sealed' : 'pending', ...(b >= 0 ? { block: l.getBlock(b)?.header.height ?? b } : {}) })
      }
      return rows
    },
    async frames(actor, patientId, fromMs, toMs) {
      requireConsent(actor, patientId)
      const out: Uint8Array[] = []
      for (const f of await patientFrames(patientId, fromMs, toMs, 100_000)) if (f.bytes) out.push(f.bytes)
      return out
    },
    async framePages(actor, patientId, fromMs, toMs) {
      requireConsent(actor, patientId)
      const spans = spansOf(patientId).map((s) => ({ deviceId: s.deviceId, fromMs: Math.max(fromMs, s.fromMs), toMs: Math.min(toMs, s.toMs) })).filter((s) => s.fromMs < s.toMs)
      return ledgerFramePages(requireLedger(), spans, { check: () => requireConsent(actor, patientId) })
    },
    async proof(actor, leafHash) {
      const l = requireLedger()
      const f = await l.getFrame(leafHash)
      if (!f) throw new DashboardError(`no frame with leaf hash ${leafHash}`, 'not-found')
      const dev = gw.registry.getDevice(f.deviceId)
      if (!dev) throw new DashboardError(`frame's device ${f.deviceId} is not registered`, 'not-found')
      requireConsent(actor, patientAt(dev, f.t0))
      return l.proof(leafHash)
    },
    async producerPublicKey() {
      return gw.identity.publicKeyHex
    },
    async consentState(actor, patientId): Promise<ConsentState> {
      requireAdmin(actor)
      const grants = ledger ? ledger.consent.list(patientId) : []
      return {
        patientId,
        grants: grants.map((g) => ({ clinicianId: g.clinicianId, scope: g.scope, expiresMs: g.expiresAt === 0 ? null : g.expiresAt, grantedMs: g.issuedAt })),
      }
    },
    grantConsent: (actor, patientId, clinicianId, scope, expiresMs) => consentAs(actor, patientId, 'grant', clinicianId, scope, expiresMs),
    revokeConsent: (actor, patientId, clinicianId, scope) => consentAs(actor, patientId, 'revoke', clinicianId, scope, null),
    async listClinicians(actor) {
      requireAdmin(actor)
      return gw.registry.listUsers().filter((u) => u.role === 'clinician').map((u) => u.username)
    },
    async subscribeLive(actor, patientId, onFrame, onEnd) {
      if (closed) throw new DashboardError('dashboard is shutting down', 'unavailable')
      requireConsent(actor, patientId)
      const l: Listener = { actor, onFrame, onEnd }
      let set = listeners.get(patientId)
      if (!set) listeners.set(patientId, (set = new Set()))
      set.add(l)
      // After the caller has announced the subscription; only frames from the last half minute.
      const replay = (recent.get(patientId) ?? []).filter((f) => f.receivedMs > now() - 30_000)
      setImmediate(() => {
        for (const f of replay) if (listeners.get(patientId)?.has(l)) l.onFrame(f)
      })
      return { close: () => void listeners.get(patientId)?.delete(l) }
    },
    onConsentChange(listener) {
      return gw.consent.onChange(listener)
    },
    close() {
      if (closed) return
      closed = true
      unConsent()
      alarmService.close()
      aedes.unsubscribe('mhealth/patient/+/frames', tapFrames, () => {})
      aedes.unsubscribe('mhealth/dev/+/control', tapControl, () => {})
      for (const set of listeners.values()) for (const l of set) l.onEnd('shutdown')
      listeners.clear()
    },
  }
}
