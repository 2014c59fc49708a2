/**
 * Gateway-side vitals from raw samples (signal/), device-reported values
 * preferred, flags respected, restarts on gaps, trends bounded in time.
 */
import t from 'tap'
import { VitalsTracker } from '../../dashboard/vitals.ts'
import { syntheticPayload } from '../../protocol/node/synthetic.ts'
import { FLAG_FINGER_OFF, FLAG_LEAD_OFF, type FramePayload } from '../../protocol/portable/frame.ts'

const DEV = 'aaaaaaaaaaaaaaaaa'
const frame = (seq: number, over: Partial<FramePayload> = {}): FramePayload => ({ ...syntheticPayload(DEV, { seconds: 1, seq, seed: 7, t0: 1_000_000 + seq * 1000 }), ...over })

t.test('HR, pulse rate and SpO2 computed from raw samples', async (t) => {
  const v = new VitalsTracker()
  const out = []
  for (let s = 0; s < 14; s++) out.push(v.add('p', frame(s)))
  t.notOk(out[0].hr, 'no HR before the detector has seen enough beats')
  const last = out[13]
  t.equal(last.hr!.source, 'gateway')
  t.ok(Math.abs(last.hr!.value - 72) < 1, `HR ${last.hr!.value}`)
  t.ok(last.hr!.quality >= 50)
  t.ok(Math.abs(last.pr!.value - 72) < 2, `PR ${last.pr!.value}`)
  t.ok(last.spo2!.value > 85 && last.spo2!.value <= 100, `SpO2 ${last.spo2!.value}`)
  const tr = v.range('p', 0, Infinity)
  t.equal(tr.hr.length, out.filter((o) => o.hr).length, 'one trend point per frame with a value')
  t.same(v.range('other', 0, Infinity), { hr: [], pr: [], spo2: [], pvcPerMin: [], rhythm: [] })
})

t.test('device-reported values win; flags blank what they invalidate', async (t) => {
  const v = new VitalsTracker()
  for (let s = 0; s < 12; s++) v.add('p', frame(s))
  const dev = v.add('p', frame(12, { hr: { value: 100, quality: 77 }, spo2: { value: 88, quality: 60 } }))
  t.same(dev.hr, { value: 100, quality: 77, source: 'device' })
  t.same(dev.spo2, { value: 88, quality: 60, source: 'device' })
  t.equal(dev.pr!.source, 'gateway', 'what the board left out still comes from the gateway')
  const finger = v.add('p', frame(13, { flags: FLAG_FINGER_OFF, spo2: { value: 50, quality: 5 } }))
  t.notOk(finger.spo2, 'finger off: no SpO2, even one the board sent')
  t.notOk(finger.pr)
  const lead = v.add('p', frame(14, { flags: FLAG_LEAD_OFF }))
  t.notOk(lead.hr, 'lead off: no HR')
})

t.test('a gap restarts the monitors instead of splicing signals', async (t) => {
  const v = new VitalsTracker()
  for (let s = 0; s < 8; s++) v.add('p', frame(s))
  t.ok(v.add('p', frame(8)).hr, 'contiguous: HR')
  t.notOk(v.add('p', frame(20)).hr, 'after a sequence jump the detector starts over')
  t.notOk(v.add('p', frame(21, { boot: 2, seq: 21 })).hr, 'a reboot too')
})

t.test('trends keep only keepMs', async (t) => {
  const v = new VitalsTracker({ keepMs: 5000 })
  for (let s = 0; s < 20; s++) v.add('p', frame(s))
  const tr = v.range('p', 0, Infinity)
  // Every frame from the fourth on has an HR; kept: those stamped within 5 s of the last (19 s), bounds included.
  t.same(tr.hr.map((p) => (p.t - 1_000_000) / 1000), [14, 15, 16, 17, 18, 19], 'the points of the last 5 s only')
})
