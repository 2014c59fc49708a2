import t from 'tap'
import { AlarmService, type AlarmNotice } from '../../dashboard/alarm-service.ts'
import { parseAlarmEvent, type AlarmEvent } from '../../ledger/alarm-record.ts'
import type { Ledger } from '../../ledger/ledger.ts'
import type { FramePayload } from '../../protocol/portable/frame.ts'

/** A ledger that keeps alarm events in memory and fails to write while `fault` is set. */
function fakeLedger(initial: AlarmEvent[] = []) {
  const leaves: AlarmEvent[] = [...initial]
  const state = { fault: undefined as string | undefined }
  const ledger = {
    async appendAlarm(bytes: Uint8Array) {
      if (state.fault) throw new Error(state.fault)
      leaves.push(parseAlarmEvent(bytes))
      return { leafIndex: leaves.length - 1, leafHash: new Uint8Array(32) }
    },
    async alarmEvents() {
      return leaves.map((event, leafIndex) => ({ leafIndex, event }))
    },
  }
  return { ledger: ledger as unknown as Ledger, leaves, state }
}

const payload = (over: Partial<FramePayload> = {}): FramePayload => ({ v: 1, deviceId: 'dev-1', seq: 0, boot: 1, t0: 0, flags: 0, dropped: 0, ...over }) as FramePayload

t.test('while the ledger cannot write: the storage alarm goes out at once (leaf null), and every event is written in order once it can', async (t) => {
  let now = 1_700_000_000_000
  const f = fakeLedger()
  const published: { topic: string; n: AlarmNotice }[] = []
  const s = new AlarmService({ ledger: f.ledger, now: () => now, tickMs: 0, storageFault: () => f.state.fault, publish: (topic, p) => published.push({ topic, n: JSON.parse(String(p)) as AlarmNotice }) })
  t.teardown(() => s.close())
  await s.ready
  const seen: AlarmNotice[] = []
  s.onChange((n) => seen.push(n))
  f.state.fault = 'ENOSPC: no space left on device'
  s.tick()
  await new Promise((r) => setImmediate(r))
  await new Promise((r) => setTimeout(r, 10))
  t.same(seen.map((n) => [n.change, n.alarm.condition, n.alarm.patientId, n.eventLeafIndex]), [['start', 'storage', null, null]])
  t.equal(published[0].topic, 'mhealth/gateway/alarms', "the gateway's own alarms on their own topic")
  // A frame's alarm meanwhile: queued behind the storage start
  for (let i = 0; i < 11; i++) {
    s.frame('pat-1', payload({ seq: i, spo2: { value: 80, quality: 95 } }), { spo2: { value: 80, quality: 95, source: 'device' } })
    now += 1000
  }
  await new Promise((r) => setTimeout(r, 10))
  t.ok(seen.some((n) => n.change === 'start' && n.alarm.condition === 'spo2-low' && n.eventLeafIndex === null), 'spo2 alarm out, not yet written')
  t.equal(published.filter((p) => p.topic === 'mhealth/alarms/pat-1').length, 1)
  t.equal(f.leaves.length, 0)
  f.state.fault = undefined
  s.tick()
  await new Promise((r) => setTimeout(r, 20))
  t.same(f.leaves.map((e) => [e.e, e.condition]), [['start', 'storage'], ['start', 'spo2-low'], ['end', 'storage']], 'written in the order they happened')
  const spo2 = s.list().find((a) => a.condition === 'spo2-low')!
  t.equal(spo2.leafIndex, 1, 'the start leaf is known once written')
  const ack = await s.acknowledge(spo2.id, 'alice')
  t.equal(ack.eventLeafIndex, 3)
  t.equal(ack.alarm.state, 'acknowledged')

  // a new service over the same log: the same alarms
  const s2 = new AlarmService({ ledger: f.ledger, now: () => now, tickMs: 0, storageFault: () => undefined, publish: () => {} })
  t.teardown(() => s2.close())
  await s2.ready
  t.same(s2.list().map((a) => [a.id, a.condition, a.state, a.leafIndex]), [[spo2.id, 'spo2-low', 'acknowledged', 1]])
})
