/**
 * Hours of stored frames in seconds, for load tests and benchmarks: signed synthetic
 * frames (1 s each: ECG 250 Hz, PPG 2 × 100 Hz, as the boards send) appended straight to
 * a gateway's ledger, many appends in flight so they share fsyncs. No MQTT: the point is
 * what is stored, not how it arrived. The dashboard's live tap never sees these frames,
 * so add them after mounting it (its backfill would otherwise read them all at start).
 */
import type { Ledger } from '../ledger/ledger.ts'
import type { LedgerFrameStore } from '../gateway/ledger-store.ts'
import type { Gateway } from '../gateway/gateway.ts'
import { signFrame, type DeviceSigningKey } from '../protocol/node/sign.ts'
import { syntheticPayload } from '../protocol/node/synthetic.ts'
import type { FramePayload } from '../protocol/portable/frame.ts'

export interface FillOptions {
  /** t0 of the first frame, ms since epoch. */
  fromMs: number
  count: number
  /** Between frames' t0 (default 1000 ms: back to back). */
  periodMs?: number
  firstSeq?: number
  /** Appends in flight at once (default 256). */
  inFlight?: number
}

/** The gateway's ledger (it must store frames in one). */
export function ledgerOf(gw: Gateway): Ledger {
  const l = (gw.store as Partial<LedgerFrameStore>).ledger
  if (!l) throw new Error('ledgerOf: expected a gateway that stores frames in its ledger, got another store')
  return l
}

// 72 beats a minute: a minute of signal repeats seamlessly, so 60 payloads serve any length.
const CYCLE = 60

/** Appends `count` signed frames of `key`'s board; resolves once all are durable. */
export async function fillLedger(ledger: Ledger, key: DeviceSigningKey, o: FillOptions): Promise<void> {
  const period = o.periodMs ?? 1000
  const first = o.firstSeq ?? 0
  const cycle: FramePayload[] = Array.from({ length: CYCLE }, (_, s) => syntheticPayload(key.id, { seconds: 1, seq: s, seed: 7, t0: 0, hrBpm: 72 }))
  const inFlight = o.inFlight ?? 256
  for (let i = 0; i < o.count; i += inFlight) {
    const batch: Promise<unknown>[] = []
    for (let j = i; j < Math.min(o.count, i + inFlight); j++) {
      const seq = first + j
      const t0 = o.fromMs + j * period
      batch.push(ledger.appendFrame(signFrame(key, { ...cycle[j % CYCLE], seq, t0 }), { deviceId: key.id, seq, t0 }))
    }
    await Promise.all(batch)
  }
}
