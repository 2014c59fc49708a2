/**
 * The dashboard's live view: one Server-Sent Events stream per browser tab for
 * all the patients it may see (or those it named). Events: `frame` (decoded
 * frame + vitals), `subscribed` {patientId}, `end` {patientId, reason} when
 * consent goes, `denied` {patientId}, then `ready` {patients} once the initial
 * subscriptions are made. A grant made while the stream is open subscribes the
 * patient on the spot, so a new tile appears without a reload. Where there is an alarm
 * system: `alarm` {change, at, by?, alarm, eventLeafIndex} for each alarm change the actor
 * may see (docs/alarms.md), after `alarms` {alarms} with those not resolved when it opened.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { HttpError } from '../http/errors.ts'
import { DashboardError, type Actor, type DashboardDeps, type LiveSubscription } from './deps.ts'

export interface LiveStreams {
  /** Streams to `res` until the client goes or `close()`; `patientIds` null: every consented patient. */
  open(req: IncomingMessage, res: ServerResponse, actor: Actor, patientIds: string[] | null): Promise<void>
  /** Ends every open stream and refuses new ones (before the HTTP server closes). */
  close(): void
}

const listOf = (a: ArrayLike<number> | undefined): ArrayLike<number> | undefined => (a && ArrayBuffer.isView(a) ? Array.from(a) : a)

export function liveStreams(deps: DashboardDeps, o: { keepAliveMs: number }): LiveStreams {
  const streams = new Set<() => void>()
  let closing = false

  async function open(req: IncomingMessage, res: ServerResponse, actor: Actor, ids: string[] | null): Promise<void> {
    if (closing) throw new HttpError(503, 'dashboard is shutting down')
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' })
    res.flushHeaders()
    const subs = new Map<string, LiveSubscription>()
    let closed = false
    const event = (name: string, data: unknown): void => {
      if (!closed) res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`)
    }
    const end = (): void => {
      if (closed) return
      closed = true
      clearInterval(ka)
      unConsent()
      unAlarm?.()
      streams.delete(end)
      for (const s of subs.values()) s.close()
      res.end()
    }
    // A comment now and then, so proxies keep the stream open.
    const ka = setInterval(() => !closed && res.write(': keep-alive\n\n'), o.keepAliveMs)
    streams.add(end)
    req.on('close', end)
    res.on('error', end)
    const subscribe = async (patientId: string, quiet: boolean): Promise<void> => {
      if (closed || subs.has(patientId)) return
      try {
        const s = await deps.subscribeLive(
          actor,
          patientId,
          (f) => {
            // The red channel only feeds SpO2 (already in vitals); the pleth is drawn from IR.
            const { red: _red, ...payload } = f.payload
            // Version-2 frames decode to typed arrays, which JSON would turn into objects.
            const plain = { ...payload, ecg: listOf(payload.ecg), ir: listOf(payload.ir), ecgFast: listOf(payload.ecgFast) }
            event('frame', { patientId: f.patientId, leafHash: f.leafHash, receivedMs: f.receivedMs, vitals: f.vitals, ...plain })
          },
          (reason) => {
            subs.delete(patientId)
            event('end', { patientId, reason })
          },
        )
        if (closed || subs.has(patientId)) return s.close()
        subs.set(patientId, s)
        event('subscribed', { patientId })
      } catch (err) {
        if (!(err instanceof DashboardError)) throw err
        if (!quiet) event('denied', { patientId, reason: err.code, message: err.message })
      }
    }
    const unConsent = deps.onConsentChange((c) => {
      if (closed || (c.clinicianId !== undefined && c.clinicianId !== actor.userId)) return
      if (ids && !ids.includes(c.patientId)) return
      // A grant for this user: start streaming (revocations end through subscribeLive's onEnd).
      void subscribe(c.patientId, true).catch(() => {})
    })
    const named = (patientId: string | null): boolean => !ids || patientId === null || ids.includes(patientId)
    const unAlarm = deps.alarms?.subscribe(actor, (n) => named(n.alarm.patientId) && event('alarm', n))
    if (deps.alarms) event('alarms', { alarms: (await deps.alarms.list(actor, { all: false })).filter((a) => named(a.patientId)) })
    const initial = ids ?? (await deps.listPatients(actor)).filter((p) => p.consented).map((p) => p.patientId)
    for (const patientId of initial) await subscribe(patientId, false)
    event('ready', { patients: [...subs.keys()] })
  }

  return {
    open,
    close() {
      closing = true
      for (const end of [...streams]) end()
    },
  }
}
