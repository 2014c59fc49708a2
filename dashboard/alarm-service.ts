/**
 * The alarm engine at work in the gateway: fed with each stored frame's vitals, the
 * gateway's rejected-frame counts and its storage state, ticked once a second; every
 * change is appended to the ledger as an alarm-event leaf (ledger/alarm-record.ts), then
 * announced to listeners (the dashboard's event stream) and on MQTT (`mhealth/alarms/<P>`,
 * `mhealth/gateway/alarms`; ACL in gateway/acl.ts). On start the engine is rebuilt from the
 * alarm leaves already in the ledger, so a restart loses no alarm. docs/alarms.md.
 *
 * Events are written in the order they happen, one after the other. While the ledger
 * cannot write (a full disk), they wait in memory and are written once it can again; the
 * alarms themselves go out at once, with leafIndex null until then.
 */
import type { Ledger } from '../ledger/ledger.ts'
import { encodeAlarmEvent, type AlarmEvent } from '../ledger/alarm-record.ts'
import type { FramePayload } from '../protocol/portable/frame.ts'
import { AlarmEngine, stateOf, type Alarm, type AlarmChange, type AlarmState } from './alarm-engine.ts'
import type { AlarmLimits, EngineSettings } from './alarm-conditions.ts'
import type { FrameVitals } from './vitals.ts'

/** An alarm as the API shows it (docs/alarms.md): times in ms since epoch. */
export interface AlarmView {
  id: string
  deviceId: string
  patientId: string | null
  condition: string
  priority: 'high' | 'medium' | 'low'
  kind: 'physiological' | 'technical'
  state: AlarmState
  startedAt: number
  endedAt: number | null
  leafIndex: number | null
}

/** One change as it goes out live: what happened, to which alarm, and its ledger leaf. */
export interface AlarmNotice {
  change: AlarmEvent['e']
  at: number
  by?: string
  alarm: AlarmView
  /** The leaf of this event (not the start's), null while the ledger cannot write. */
  eventLeafIndex: number | null
}

export interface AlarmServiceOptions {
  ledger: Ledger | null
  /** Publishes on the gateway's broker (QoS 1). */
  publish(topic: string, payload: Buffer): void
  now(): number
  /** Why the ledger cannot write, or undefined. */
  storageFault(): string | undefined
  settings?: Partial<EngineSettings>
  /** Tick period (default 1 s); 0: no timer (tests tick by hand). */
  tickMs?: number
  log?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void
}

export function viewOf(a: Alarm, t: number): AlarmView {
  return { id: a.id, deviceId: a.deviceId, patientId: a.patientId, condition: a.condition, priority: a.priority, kind: a.kind, state: stateOf(a, t), startedAt: a.startedAt, endedAt: a.endedAt, leafIndex: a.leafIndex }
}

export const alarmTopicOf = (patientId: string | null): string => (patientId === null ? 'mhealth/gateway/alarms' : `mhealth/alarms/${patientId}`)

export class AlarmService {
  readonly engine: AlarmEngine
  readonly ready: Promise<void>
  private readonly listeners = new Set<(n: AlarmNotice) => void>()
  /** Events not yet in the ledger (it could not write), oldest first. */
  private backlog: AlarmEvent[] = []
  private writing: Promise<unknown> = Promise.resolve()
  private timer: NodeJS.Timeout | null = null
  private closed = false

  constructor(private readonly o: AlarmServiceOptions) {
    this.engine = new AlarmEngine(o.settings)
    this.ready = this.replay()
    const every = o.tickMs ?? 1000
    if (every > 0) {
      this.timer = setInterval(() => this.tick(), every)
      this.timer.unref()
    }
  }

  /** One stored frame and its vitals. */
  frame(patientId: string, p: FramePayload, vitals: FrameVitals): void {
    this.emit(this.engine.frame(this.o.now(), { deviceId: p.deviceId, patientId, vitals, flags: p.flags, batteryMv: p.batteryMv }))
  }

  rejected(deviceId: string, patientId: string): void {
    this.emit(this.engine.rejected(this.o.now(), deviceId, patientId))
  }

  tick(): void {
    if (this.closed) return
    const t = this.o.now()
    this.emit([...this.engine.storage(t, this.o.storageFault()), ...this.engine.tick(t)])
    if (this.backlog.length && !this.o.storageFault()) this.flush()
  }

  forget(deviceId: string): void {
    this.engine.forget(deviceId)
  }

  list(o: { all?: boolean; patientId?: string } = {}): AlarmView[] {
    const t = this.o.now()
    return this.engine.list(t, o).map((a) => viewOf(a, t))
  }

  get(id: string): AlarmView | undefined {
    const a = this.engine.get(id)
    return a && viewOf(a, this.o.now())
  }

  /** Acknowledges; resolves once the ack is in the ledger (eventLeafIndex null if it could not be written yet). */
  acknowledge(id: string, by: string): Promise<AlarmNotice> {
    return this.emitOne(this.engine.acknowledge(this.o.now(), id, by))
  }

  silence(id: string, by: string, seconds: number): Promise<AlarmNotice> {
    return this.emitOne(this.engine.silence(this.o.now(), id, by, seconds))
  }

  limits(patientId: string): AlarmLimits {
    return this.engine.limitsOf(patientId)
  }

  async setLimits(patientId: string, limits: unknown, by: string): Promise<{ limits: AlarmLimits; leafIndex: number | null }> {
    const r = this.engine.setLimits(this.o.now(), patientId, limits, by)
    return { limits: r.limits, leafIndex: await this.write(r.event) }
  }

  onChange(listener: (n: AlarmNotice) => void): () => void {
    this.listeners.add(listener)
    return () => void this.listeners.delete(listener)
  }

  close(): void {
    this.closed = true
    if (this.timer) clearInterval(this.timer)
    this.listeners.clear()
  }

  // ------------------------------------------------------------------

  private async replay(): Promise<void> {
    if (!this.o.ledger) return
    const events = await this.o.ledger.alarmEvents()
    for (const { leafIndex, event } of events) this.engine.apply(event, event.e === 'start' ? leafIndex : null)
    this.engine.replayed(this.o.now())
    if (events.length) this.o.log?.('info', 'alarms rebuilt from the ledger', { events: events.length, active: this.engine.list(this.o.now()).length })
  }

  private emit(changes: AlarmChange[]): void {
    for (const c of changes) void this.emitOne(c)
  }

  private async emitOne(c: AlarmChange): Promise<AlarmNotice> {
    const leaf = await this.write(c.event)
    if (c.event.e === 'start' && leaf !== null) this.engine.setLeaf(c.alarm.id, leaf)
    const t = this.o.now()
    const a = this.engine.get(c.alarm.id) ?? c.alarm
    const n: AlarmNotice = { change: c.event.e, at: c.event.t, ...(c.event.by ? { by: c.event.by } : {}), alarm: viewOf(a, t), eventLeafIndex: leaf }
    if (this.closed) return n
    for (const l of [...this.listeners]) {
      try {
        l(n)
      } catch (err) {
        this.o.log?.('warn', 'alarm listener failed', { error: (err as Error).message })
      }
    }
    try {
      this.o.publish(alarmTopicOf(n.alarm.patientId), Buffer.from(JSON.stringify(n)))
    } catch (err) {
      this.o.log?.('warn', 'alarm publish failed', { error: (err as Error).message })
    }
    return n
  }

  /** Appends in order after the writes before it; the leaf index, or null (queued for later) if the ledger cannot write. */
  private write(ev: AlarmEvent): Promise<number | null> {
    const bytes = encodeAlarmEvent(ev)
    const ledger = this.o.ledger
    const p = this.writing.then(async () => {
      if (!ledger) return null
      if (this.backlog.length) {
        this.backlog.push(ev) // keep the log in order behind what is waiting
        return null
      }
      try {
        return (await ledger.appendAlarm(bytes)).leafIndex
      } catch (err) {
        this.o.log?.('warn', 'alarm event not written to the ledger yet', { event: ev.e, id: ev.id, error: (err as Error).message })
        this.backlog.push(ev)
        return null
      }
    })
    this.writing = p.catch(() => {})
    return p
  }

  /** Writes the waiting events, in order, once the ledger can write again. */
  private flush(): void {
    const ledger = this.o.ledger
    if (!ledger) return
    this.writing = this.writing.then(async () => {
      while (this.backlog.length) {
        const ev = this.backlog[0]
        try {
          const { leafIndex } = await ledger.appendAlarm(encodeAlarmEvent(ev))
          if (ev.e === 'start') this.engine.setLeaf(ev.id!, leafIndex)
          this.backlog.shift()
        } catch {
          return
        }
      }
    })
  }
}
