import t from 'tap'
import { openLedger } from '../../ledger/ledger.ts'
import { verifyLedger } from '../../ledger/verify.ts'
import { repairLedger } from '../../ledger/repair.ts'
import { checkProof } from '../../ledger/proof-check.ts'
import { sha256, ed25519Verify } from '../../ledger/crypto.ts'
import { encodeAlarmEvent, parseAlarmEvent, type AlarmEvent } from '../../ledger/alarm-record.ts'
import { decodeLeafRecord, KIND_ALARM } from '../../ledger/leaf.ts'
import { encodeAlarmRecord, RecordError } from '../../ledger/records.ts'
import { toHex } from '../../ledger/merkle.ts'
import { tmp, producerKey, fakeFrame, quiet } from './helpers.ts'

const deps = { sha256, ed25519Verify }
const base = (dir: string, extra = {}) => ({ dir, producerKey, producerId: 'gw-test', blockIntervalMs: 60_000, ...quiet, ...extra })
const start: AlarmEvent = { v: 1, e: 'start', t: 1_700_000_000_000, id: 'a1b2c3', deviceId: 'dev-1', patientId: 'pat-1', condition: 'spo2-low', priority: 'medium', kind: 'physiological', value: 84.5 }
const ack: AlarmEvent = { v: 1, e: 'ack', t: 1_700_000_005_000, id: 'a1b2c3', deviceId: 'dev-1', patientId: 'pat-1', condition: 'spo2-low', by: 'alice' }
const limits: AlarmEvent = { v: 1, e: 'limits', t: 1_700_000_006_000, patientId: 'pat-1', by: 'root', limits: { spo2Low: 88, spo2Critical: 85, hrLow: 45.5, hrHigh: 130 } }

t.test('alarm event CBOR: deterministic, round trip, malformed refused', async (t) => {
  for (const ev of [start, ack, limits]) {
    const b = encodeAlarmEvent(ev)
    t.same(toHex(encodeAlarmEvent(parseAlarmEvent(b))), toHex(b), `${ev.e}: re-encoding gives the same bytes`)
    t.same(parseAlarmEvent(b), ev, `${ev.e}: round trip`)
  }
  t.throws(() => encodeAlarmEvent({ ...start, priority: undefined }), RecordError, 'start without priority')
  t.throws(() => encodeAlarmEvent({ ...ack, id: undefined }), RecordError, 'ack without id')
  t.throws(() => encodeAlarmEvent({ v: 1, e: 'silence', t: 1, id: 'x', deviceId: 'd', condition: 'c', seconds: 0 }), RecordError, 'silence of 0 s')
  t.throws(() => parseAlarmEvent(new Uint8Array([0xa0])), /version/, 'empty map')
  t.throws(() => parseAlarmEvent(new Uint8Array([0x01])), /map/, 'not a map')
  const body = encodeAlarmRecord(start.t + 1, encodeAlarmEvent(start))
  t.throws(() => decodeLeafRecord(body), /differs/, 'record time must match the event time')
})

t.test('alarm leaves: appended, verified, proven, replayed on reopen, kept by repair; frame queries skip them', async (t) => {
  const dir = tmp()
  const l = await openLedger(base(dir, { blockMaxLeaves: 8 }))
  const frames = []
  for (let i = 0; i < 5; i++) frames.push(await l.appendFrame(fakeFrame('dev-1', i), { deviceId: 'dev-1', seq: i, t0: start.t + i * 1000 }))
  const a1 = await l.appendAlarm(encodeAlarmEvent(start))
  for (let i = 5; i < 10; i++) frames.push(await l.appendFrame(fakeFrame('dev-1', i), { deviceId: 'dev-1', seq: i, t0: start.t + i * 1000 }))
  const a2 = await l.appendAlarm(encodeAlarmEvent(ack))
  const a3 = await l.appendAlarm(encodeAlarmEvent(limits))
  t.equal(a1.leafIndex, 5)
  t.equal(a2.leafIndex, 11)
  t.same((await l.alarmEvents()).map((x) => [x.leafIndex, x.event.e]), [[5, 'start'], [11, 'ack'], [12, 'limits']])
  t.equal((await l.frames({ deviceId: 'dev-1' })).length, 10, 'by device: frames only')
  t.equal((await l.frames({})).length, 10, 'all: frames only')
  t.equal(await l.getFrame(a1.leafHash), undefined, 'an alarm leaf is not a frame')
  const p = await l.proof(toHex(a2.leafHash))
  t.equal(p.leaf.kind, 'alarm')
  t.notOk('deviceId' in p.leaf, 'no frame fields on an alarm leaf')
  const r = checkProof(JSON.parse(JSON.stringify(p)), producerKey.publicKey, deps)
  t.equal(r.leafIndex, 11)
  t.ok(r.bytesChecked, 'the proof carries the event bytes and they hash to the leaf')
  t.same(parseAlarmEvent(Buffer.from(p.leaf.bytes!, 'base64')), ack, 'the proven bytes are the ack, by alice')
  await l.cutBlock()

  // A replica imports the blocks, alarm leaves and all, and has the same alarm log.
  const R = await openLedger({ dir: tmp(), producerPublicKey: producerKey.publicKey, producerId: 'gw-test', ...quiet })
  for (let h = 0; h <= l.height; h++) await R.importBlock((await l.exportBlock(h))!)
  t.same((await R.alarmEvents()).map((x) => [x.leafIndex, x.event.e]), [[5, 'start'], [11, 'ack'], [12, 'limits']], 'replicated')
  await t.rejects(R.appendAlarm(encodeAlarmEvent(ack)), /replica/, 'a replica does not write alarm events')
  await R.close()
  await l.close()

  const v = await verifyLedger(dir)
  t.ok(v.ok, v.problem?.message ?? 'verifies')
  t.equal(v.alarms, 3)
  t.equal(v.frames, 10)

  const l2 = await openLedger(base(dir))
  t.same((await l2.alarmEvents()).map((x) => x.event), [start, ack, limits], 'replayed after reopen')
  const a4 = await l2.appendAlarm(encodeAlarmEvent({ ...ack, e: 'end', t: ack.t + 1, by: undefined, latched: false }))
  t.equal(a4.leafIndex, 13)
  await l2.close()
  const l3 = await openLedger(base(dir))
  t.equal((await l3.alarmEvents()).length, 4, 'an unsealed alarm leaf is replayed from the segment tail')
  await l3.close()

  const rep = await repairLedger(dir, producerKey)
  t.ok(rep.verify.ok, 'repair leaves a verifying ledger')
  t.equal((await verifyLedger(dir)).alarms, 4)
  t.equal(KIND_ALARM, 4)
})
