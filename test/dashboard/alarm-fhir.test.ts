import t from 'tap'
import { buildFhirBundle, FhirBundleAssembler, SNOMED, type ExportFrame } from '../../dashboard/fhir.ts'
import { ALARM_CONDITION_SYSTEM, ALARM_SYSTEM } from '../../dashboard/alarm-fhir.ts'
import type { AlarmView } from '../../dashboard/alarm-service.ts'
import { syntheticPayload } from '../../protocol/node/synthetic.ts'

const DEV = 'aaaaaaaaaaaaaaaaa'
const T0 = Date.UTC(2026, 10, 24, 10, 0, 0)
const frames: ExportFrame[] = [0, 1].map((seq) => ({ payload: { ...syntheticPayload(DEV, { seconds: 1, seq, seed: 3, t0: T0 + seq * 1000 }), hr: { value: 72, quality: 90 } }, frameHash: seq.toString(16).padStart(64, '0') }))
const alarm = (over: Partial<AlarmView>): AlarmView => ({ id: '0123456789abcdef0123', deviceId: DEV, patientId: 'pt-abc', condition: 'asystole', priority: 'high', kind: 'physiological', state: 'active', startedAt: T0 + 2000, endedAt: null, leafIndex: 7, ...over })
const alarms = [
  alarm({}),
  alarm({ id: '1123456789abcdef0123', condition: 'lead-off', priority: 'medium', kind: 'technical', state: 'resolved', startedAt: T0 + 3000, endedAt: T0 + 8000, leafIndex: 9 }),
  alarm({ id: '2123456789abcdef0123', condition: 'spo2-low', startedAt: T0 + 99_000 }), // outside the range
]
const opts = { patientId: 'pt-abc', fromMs: T0, toMs: T0 + 10_000, alarms }
type Res = Record<string, any>

t.test('alarms in the FHIR export: one Observation each, with kind, priority, state and ledger leaf; validated like the others', async (t) => {
  const b = JSON.parse(JSON.stringify(buildFhirBundle(frames, opts))) as Res
  const resources = (b.entry as Res[]).map((e) => {
    t.equal(e.fullUrl, `urn:uuid:${e.resource.id}`)
    return e.resource as Res
  })
  const patientRef = `urn:uuid:${resources.find((r) => r.resourceType === 'Patient')!.id}`
  const deviceRef = `urn:uuid:${resources.find((r) => r.resourceType === 'Device')!.id}`
  const obs = resources.filter((r) => r.resourceType === 'Observation' && r.code.coding.some((c: Res) => c.system === ALARM_CONDITION_SYSTEM))
  t.equal(obs.length, 2, 'the alarm outside the range is left out')
  const [asys, lead] = obs
  for (const o of obs) {
    t.ok(['registered', 'preliminary', 'final', 'amended'].includes(o.status), 'an R4 Observation status')
    t.same(o.subject, { reference: patientRef })
    t.same(o.device, { reference: deviceRef }, 'the board that raised it, one Device entry for frames and alarms')
    t.match(o.effectivePeriod.start, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    t.same(o.category[0].coding[0].code, 'procedure')
    for (const c of o.component) {
      t.ok(c.code.coding[0].system === ALARM_SYSTEM && c.code.coding[0].code, 'component code')
      t.ok(c.valueCodeableConcept || Number.isInteger(c.valueInteger), 'component value[x]')
    }
  }
  const comp = (o: Res, name: string) => o.component.find((c: Res) => c.code.coding[0].code === name)
  t.equal(asys.status, 'preliminary', 'not resolved yet')
  t.notOk(asys.effectivePeriod.end, 'still on: no end')
  t.ok(asys.code.coding.some((c: Res) => c.system === SNOMED && c.code === '397829000'), 'asystole: SNOMED CT beside our code')
  t.equal(comp(asys, 'priority').valueCodeableConcept.coding[0].code, 'high')
  t.equal(comp(asys, 'kind').valueCodeableConcept.coding[0].code, 'physiological')
  t.equal(comp(asys, 'ledger-leaf').valueInteger, 7)
  t.equal(lead.status, 'final')
  t.equal(lead.effectivePeriod.end, new Date(T0 + 8000).toISOString())
  t.equal(comp(lead, 'state').valueCodeableConcept.coding[0].code, 'resolved')
  t.equal(comp(lead, 'kind').valueCodeableConcept.coding[0].code, 'technical')
  const ids = resources.map((r) => r.id)
  t.equal(new Set(ids).size, ids.length, 'ids are unique')
  t.not(buildFhirBundle(frames, opts).id, buildFhirBundle(frames, { ...opts, alarms: [] }).id, 'the Bundle id names the alarms too')
  t.same(buildFhirBundle(frames, opts), buildFhirBundle(frames, opts), 'deterministic')
  // streaming and in-one-go give the same entries
  const a = new FhirBundleAssembler(opts)
  const streamed = [a.patientEntry(), ...a.frameEntries(frames), ...a.alarmEntries(alarms)]
  t.same(streamed, buildFhirBundle(frames, opts).entry)
})
