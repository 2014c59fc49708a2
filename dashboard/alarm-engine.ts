/**
 * The alarm engine: verified vitals and technical events in, alarm-condition changes out.
 * Pure and clock-injected: every call carries the gateway time `t` (ms since epoch), and
 * nothing happens between calls, so tests drive it with synthetic vitals and no timers.
 *
 * Per (device, condition) the engine keeps whether the condition holds now (with the
 * hysteresis of an alarm already on) and since when; an alarm starts once it has held for the
 * condition's delay (alarm-conditions.ts) and ends when it no longer holds. A value the engine
 * cannot trust (quality below `minQuality`, the lead or probe off, a NOISE rhythm) neither
 * starts nor ends anything. A latching alarm (high-priority physiological) whose condition
 * ended stays until acknowledged; the others resolve when their condition ends.
 *
 * The state of an alarm is derived (`stateOf`): resolved once its condition ended and it is
 * not latched or was acknowledged; acknowledged; silenced until the silence runs out; active.
 * Every change is an AlarmEvent (ledger/alarm-record.ts) the caller writes to the ledger;
 * `apply` replays them, so the engine after a restart is the fold of the log.
 */
import { createHash } from 'node:crypto'
import { FLAG_FINGER_OFF, FLAG_LEAD_OFF, FLAG_TIME_UNSYNCED } from '../protocol/portable/frame.ts'
import type { AlarmEvent } from '../ledger/alarm-record.ts'
import type { FrameVitals, Vital } from './vitals.ts'
import { CONDITIONS, DEFAULT_LIMITS, DEFAULT_SETTINGS, checkLimits, type AlarmKind, type AlarmLimits, type AlarmPriority, type Condition, type EngineSettings } from './alarm-conditions.ts'

export type AlarmState = 'active' | 'acknowledged' | 'silenced' | 'resolved'

export interface Alarm {
  id: string
  deviceId: string
  /** null for the gateway's own alarms (storage). */
  patientId: string | null
  condition: Condition
  priority: AlarmPriority
  kind: AlarmKind
  startedAt: number
  /** When the condition ended (ms since epoch), null while it holds. */
  endedAt: number | null
  /** The ledger leaf of the alarm's start event; null until written (or if the ledger could not write). */
  leafIndex: number | null
  latched: boolean
  acknowledgedBy: string | null
  acknowledgedAt: number | null
  silencedBy: string | null
  silencedUntil: number | null
  /** The value that crossed the limit at start (or at the last escalation). */
  value: number | null
}

/** One change: the event to log, and the alarm after it. */
export interface AlarmChange {
  event: AlarmEvent
  alarm: Alarm
}

export class AlarmError extends Error {
  override name = 'AlarmError'
  constructor(message: string, readonly code: 'not-found' | 'conflict' | 'invalid') {
    super(message)
  }
}

/** One frame's inputs: the verified vitals and the frame's own technical fields. */
export interface FrameInput {
  deviceId: string
  patientId: string
  vitals: FrameVitals
  flags: number
  batteryMv?: number
}

/** Resolved alarms kept for `state=all` (the ledger keeps them all). */
const KEEP_RESOLVED = 2000
const MAX_SILENCE_S = 600
export const GATEWAY_DEVICE = 'gateway'

export function stateOf(a: Alarm, t: number): AlarmState {
  if (a.endedAt !== null && (!a.latched || a.acknowledgedAt !== null)) return 'resolved'
  if (a.acknowledgedAt !== null) return 'acknowledged'
  if (a.silencedUntil !== null && a.silencedUntil > t) return 'silenced'
  return 'active'
}

const alarmId = (deviceId: string, condition: string, startedAt: number): string =>
  createHash('sha256').update(`${deviceId}\n${condition}\n${startedAt}`).digest('hex').slice(0, 20)

const trusted = (v: Vital | undefined, minQ: number): number | null => (v && v.quality >= minQ ? v.value : null)

export class AlarmEngine {
  readonly settings: EngineSettings
  private readonly alarms = new Map<string, Alarm>()
  /** The alarm whose condition holds now, by device|condition. */
  private readonly open = new Map<string, Alarm>()
  /** Since when a condition without an alarm yet has held, by device|condition. */
  private readonly since = new Map<string, number>()
  private readonly limits = new Map<string, AlarmLimits>()
  private readonly lastFrame = new Map<string, { t: number; patientId: string }>()
  private readonly rejects = new Map<string, { patientId: string; at: number[] }>()
  private readonly lastAfStart = new Map<string, number>()

  constructor(settings: Partial<EngineSettings> = {}) {
    this.settings = { ...DEFAULT_SETTINGS, ...settings }
  }

  // ------------------------------------------------------------------ inputs

  /** One stored frame of a device at gateway time t. */
  frame(t: number, f: FrameInput): AlarmChange[] {
    const out: AlarmChange[] = []
    const { deviceId: d, patientId: p, vitals: v } = f
    const S = this.settings
    const L = this.limitsOf(p)
    this.lastFrame.set(d, { t, patientId: p })
    this.observe(out, t, d, p, 'device-offline', false)
    const leadOff = (f.flags & FLAG_LEAD_OFF) !== 0
    const probeOff = (f.flags & FLAG_FINGER_OFF) !== 0
    this.observe(out, t, d, p, 'lead-off', leadOff)
    this.observe(out, t, d, p, 'probe-off', probeOff)
    this.observe(out, t, d, p, 'clock-bad', (f.flags & FLAG_TIME_UNSYNCED) !== 0)
    const mv = f.batteryMv
    this.observe(out, t, d, p, 'battery-low', mv === undefined ? null : mv < S.batteryLowMv + (this.isOpen(d, 'battery-low') ? S.batteryHysteresisMv : 0))

    const spo2 = probeOff ? null : trusted(v.spo2, S.minQuality)
    const spo2On = this.isOpen(d, 'spo2-low')
    this.observe(out, t, d, p, 'spo2-low', spo2 === null ? null : spo2 < L.spo2Low + (spo2On ? S.spo2Hysteresis : 0), spo2, spo2 !== null && spo2 < L.spo2Critical ? 'high' : 'medium')

    const hr = trusted(v.hr, S.minQuality) ?? trusted(v.pr, S.minQuality)
    this.observe(out, t, d, p, 'hr-low', hr === null ? null : hr < L.hrLow + (this.isOpen(d, 'hr-low') ? S.hrHysteresis : 0), hr)
    this.observe(out, t, d, p, 'hr-high', hr === null ? null : hr > L.hrHigh - (this.isOpen(d, 'hr-high') ? S.hrHysteresis : 0), hr)

    // Rhythm calls: unknown with the leads off or without findings; NOISE means no other call is made.
    const ecg = leadOff ? undefined : v.ecg
    const noisy = ecg ? ecg.rhythm === 'NOISE' : null
    this.observe(out, t, d, p, 'signal-noise', noisy)
    const call = (label: string): boolean | null => (!ecg || noisy ? null : ecg.rhythm === label)
    this.observe(out, t, d, p, 'asystole', call('ASYSTOLE'))
    this.observe(out, t, d, p, 'vf', call('VF'))
    this.observe(out, t, d, p, 'vt', call('VT'), hr)
    this.observe(out, t, d, p, 'af', call('AF'))
    this.observe(out, t, d, p, 'brady', call('BRADY'), hr)
    this.observe(out, t, d, p, 'tachy', call('TACHY'), hr)
    return out
  }

  /** `count` frames of a device rejected by verification at time t (the gateway's NACKs). */
  rejected(t: number, deviceId: string, patientId: string, count = 1): AlarmChange[] {
    const r = this.rejects.get(deviceId) ?? { patientId, at: [] }
    r.patientId = patientId
    for (let i = 0; i < count; i++) r.at.push(t)
    this.rejects.set(deviceId, r)
    const out: AlarmChange[] = []
    this.checkRejects(out, t, deviceId)
    return out
  }

  /** The ledger's write state at time t: a fault message while it cannot write, undefined when it can. */
  storage(t: number, fault: string | undefined): AlarmChange[] {
    const out: AlarmChange[] = []
    this.observe(out, t, GATEWAY_DEVICE, null, 'storage', fault !== undefined)
    return out
  }

  /** Time passes: devices gone silent, rejection windows that ran out, delays that ran out. */
  tick(t: number): AlarmChange[] {
    const out: AlarmChange[] = []
    for (const [d, f] of this.lastFrame) this.observe(out, t, d, f.patientId, 'device-offline', t - f.t >= this.settings.offlineMs)
    for (const d of this.rejects.keys()) this.checkRejects(out, t, d)
    return out
  }

  /** A device left the ward (revoked, moved): it is no longer expected to send. */
  forget(deviceId: string): void {
    this.lastFrame.delete(deviceId)
    this.rejects.delete(deviceId)
  }

  // ------------------------------------------------------------------ people

  acknowledge(t: number, id: string, by: string): AlarmChange {
    const a = this.live(id, t)
    if (a.acknowledgedAt !== null) throw new AlarmError(`alarm ${id} was already acknowledged by ${a.acknowledgedBy}`, 'conflict')
    a.acknowledgedAt = t
    a.acknowledgedBy = by
    return { event: this.ev(a, 'ack', t, { by }), alarm: { ...a } }
  }

  silence(t: number, id: string, by: string, seconds: number): AlarmChange {
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_SILENCE_S) throw new AlarmError(`seconds: expected an integer 1..${MAX_SILENCE_S}, got ${JSON.stringify(seconds)}`, 'invalid')
    const a = this.live(id, t)
    a.silencedBy = by
    a.silencedUntil = t + seconds * 1000
    return { event: this.ev(a, 'silence', t, { by, seconds }), alarm: { ...a } }
  }

  /** Sets a patient's limits (fields left out keep their value); the event to log. Throws AlarmError 'invalid'. */
  setLimits(t: number, patientId: string, limits: unknown, by: string): { event: AlarmEvent; limits: AlarmLimits } {
    let next: AlarmLimits
    try {
      next = checkLimits(limits, this.limitsOf(patientId))
    } catch (e) {
      throw new AlarmError((e as Error).message, 'invalid')
    }
    this.limits.set(patientId, next)
    return { event: { v: 1, e: 'limits', t, patientId, by, limits: { ...next } }, limits: { ...next } }
  }

  // ------------------------------------------------------------------ reads

  limitsOf(patientId: string): AlarmLimits {
    return { ...(this.limits.get(patientId) ?? DEFAULT_LIMITS) }
  }

  get(id: string): Alarm | undefined {
    const a = this.alarms.get(id)
    return a && { ...a }
  }

  /** Alarms, newest first: those not resolved at t, or all kept. */
  list(t: number, o: { all?: boolean; patientId?: string } = {}): Alarm[] {
    const out: Alarm[] = []
    for (const a of this.alarms.values()) {
      if (o.patientId !== undefined && a.patientId !== o.patientId) continue
      if (!o.all && stateOf(a, t) === 'resolved') continue
      out.push({ ...a })
    }
    return out.sort((a, b) => b.startedAt - a.startedAt || a.id.localeCompare(b.id))
  }

  /** Records where a start event went in the ledger. */
  setLeaf(id: string, leafIndex: number): void {
    const a = this.alarms.get(id)
    if (a && a.leafIndex === null) a.leafIndex = leafIndex
  }

  // ------------------------------------------------------------------ replay

  /** Applies a logged event (oldest first) to rebuild the state after a restart. */
  apply(ev: AlarmEvent, leafIndex: number | null): void {
    if (ev.e === 'limits') {
      if (ev.patientId && ev.limits) this.limits.set(ev.patientId, { ...DEFAULT_LIMITS, ...(ev.limits as Partial<AlarmLimits>) })
      return
    }
    const cond = ev.condition as Condition
    if (ev.e === 'start') {
      const spec = CONDITIONS[cond]
      if (!spec) return // a condition this version does not know: logged, not shown
      const a: Alarm = {
        id: ev.id!, deviceId: ev.deviceId!, patientId: ev.patientId ?? null, condition: cond, priority: ev.priority!, kind: ev.kind ?? spec.kind,
        startedAt: ev.t, endedAt: null, leafIndex, latched: false, acknowledgedBy: null, acknowledgedAt: null, silencedBy: null, silencedUntil: null, value: ev.value ?? null,
      }
      this.alarms.set(a.id, a)
      this.open.set(`${a.deviceId}|${cond}`, a)
      if (cond === 'af') this.lastAfStart.set(a.deviceId, ev.t)
      // A device with an alarm on is expected to keep sending: silence from now on is device-offline.
      if (a.patientId !== null && a.deviceId !== GATEWAY_DEVICE && !this.lastFrame.has(a.deviceId)) this.lastFrame.set(a.deviceId, { t: ev.t, patientId: a.patientId })
      return
    }
    const a = this.alarms.get(ev.id!)
    if (!a) return
    if (ev.e === 'escalate') {
      a.priority = ev.priority!
      a.acknowledgedAt = a.acknowledgedBy = null
      if (ev.value !== undefined) a.value = ev.value
    } else if (ev.e === 'end') {
      a.endedAt = ev.t
      a.latched = ev.latched === true
      if (this.open.get(`${a.deviceId}|${a.condition}`) === a) this.open.delete(`${a.deviceId}|${a.condition}`)
    } else if (ev.e === 'ack') {
      a.acknowledgedAt = ev.t
      a.acknowledgedBy = ev.by ?? null
    } else if (ev.e === 'silence') {
      a.silencedBy = ev.by ?? null
      a.silencedUntil = ev.t + (ev.seconds ?? 0) * 1000
    }
    this.trim(ev.t)
  }

  /** After the replay: devices with an alarm on count as heard from at t (not at their last event). */
  replayed(t: number): void {
    for (const [d, f] of this.lastFrame) this.lastFrame.set(d, { ...f, t: Math.max(f.t, t) })
  }

  // ------------------------------------------------------------------ the core

  private isOpen(deviceId: string, c: Condition): boolean {
    return this.open.has(`${deviceId}|${c}`)
  }

  /**
   * One condition's state at t: true (holds), false (does not), null (unknown: nothing changes).
   * `priority` overrides the condition's own (spo2-low below the critical limit).
   */
  private observe(out: AlarmChange[], t: number, d: string, p: string | null, c: Condition, holds: boolean | null, value: number | null = null, priority?: AlarmPriority): void {
    if (holds === null) return
    const key = `${d}|${c}`
    const spec = CONDITIONS[c]
    const a = this.open.get(key)
    if (!holds) {
      this.since.delete(key)
      if (a) out.push(this.end(a, t))
      return
    }
    const prio = priority ?? spec.priority
    if (a) {
      // Escalation only: an alarm that reached high stays high (and latches) until it ends.
      if (rank(prio) > rank(a.priority)) {
        a.priority = prio
        a.acknowledgedAt = a.acknowledgedBy = null // a worse condition asks again
        a.silencedUntil = null
        if (value !== null) a.value = value
        out.push({ event: this.ev(a, 'escalate', t, { priority: prio, ...(value !== null ? { value } : {}) }), alarm: { ...a } })
      }
      return
    }
    const since = this.since.get(key) ?? t
    this.since.set(key, since)
    if (t - since < (this.settings.delayMs?.[c] ?? spec.delayMs)) return
    this.since.delete(key)
    if (c === 'af') {
      // New onset only: AF that comes back within afQuietMs of the last AF alarm is the same AF.
      const last = this.lastAfStart.get(d)
      this.lastAfStart.set(d, t)
      if (last !== undefined && t - last < this.settings.afQuietMs) return
    }
    const started: Alarm = {
      id: alarmId(d, c, t), deviceId: d, patientId: p, condition: c, priority: prio, kind: spec.kind, startedAt: t, endedAt: null, leafIndex: null,
      latched: false, acknowledgedBy: null, acknowledgedAt: null, silencedBy: null, silencedUntil: null, value,
    }
    this.alarms.set(started.id, started)
    this.open.set(key, started)
    this.trim(t)
    out.push({ event: this.ev(started, 'start', t, { priority: prio, kind: spec.kind, ...(value !== null ? { value } : {}) }), alarm: { ...started } })
  }

  private end(a: Alarm, t: number): AlarmChange {
    this.open.delete(`${a.deviceId}|${a.condition}`)
    a.endedAt = t
    a.latched = CONDITIONS[a.condition].kind === 'physiological' && a.priority === 'high' && a.acknowledgedAt === null
    return { event: this.ev(a, 'end', t, { latched: a.latched }), alarm: { ...a } }
  }

  private checkRejects(out: AlarmChange[], t: number, d: string): void {
    const r = this.rejects.get(d)!
    const from = t - this.settings.rejectWindowMs
    while (r.at.length && r.at[0] <= from) r.at.shift()
    const on = this.isOpen(d, 'frames-rejected')
    this.observe(out, t, d, r.patientId, 'frames-rejected', r.at.length >= (on ? 1 : this.settings.rejectCount), r.at.length)
    if (!r.at.length && !this.isOpen(d, 'frames-rejected')) this.rejects.delete(d)
  }

  /** An alarm a person may act on: known and not resolved. */
  private live(id: string, t: number): Alarm {
    const a = this.alarms.get(id)
    if (!a) throw new AlarmError(`no alarm ${id}`, 'not-found')
    if (stateOf(a, t) === 'resolved') throw new AlarmError(`alarm ${id} is resolved`, 'conflict')
    return a
  }

  private ev(a: Alarm, e: AlarmEvent['e'], t: number, extra: Partial<AlarmEvent>): AlarmEvent {
    return { v: 1, e, t, id: a.id, deviceId: a.deviceId, ...(a.patientId !== null ? { patientId: a.patientId } : {}), condition: a.condition, ...extra }
  }

  /** Forgets the oldest resolved alarms beyond KEEP_RESOLVED (the ledger has them all). */
  private trim(t: number): void {
    if (this.alarms.size <= KEEP_RESOLVED + this.open.size) return
    for (const [id, a] of this.alarms) {
      if (this.alarms.size <= KEEP_RESOLVED) break
      if (stateOf(a, t) === 'resolved') this.alarms.delete(id)
    }
  }
}

const rank = (p: AlarmPriority): number => (p === 'high' ? 2 : p === 'medium' ? 1 : 0)
