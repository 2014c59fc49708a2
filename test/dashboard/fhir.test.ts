/**
 * FHIR R4 export: the Bundle is JSON with the fields a FHIR server requires
 * (checked structurally here, resource by resource), deterministic, and
 * refuses bad options with a message naming the field.
 */
import t from 'tap'
import { buildFhirBundle, ECG_RHYTHM_SYSTEM, LOINC, MDC, SNOMED, UCUM, type ExportFrame } from '../../dashboard/fhir.ts'
import { syntheticPayload } from '../../protocol/node/synthetic.ts'
import { FLAG_FINGER_OFF, FLAG_LEAD_OFF, type FramePayload } from '../../protocol/portable/frame.ts'

const DEV = 'aaaaaaaaaaaaaaaaa'
const T0 = Date.UTC(2026, 10, 24, 10, 0, 0)

function frame(seq: number, over: Partial<FramePayload> = {}): ExportFrame {
  const p = { ...syntheticPayload(DEV, { seconds: 1, seq, seed: 3, t0: T0 + seq * 1000 }), ...over }
  return { payload: p, frameHash: seq.toString(16).padStart(64, '0') }
}

const frames = [
  frame(0, { hr: { value: 72.04, quality: 90 }, pr: { value: 71, quality: 80 }, spo2: { value: 97, quality: 85 } }),
  frame(1, { hr: { value: 73, quality: 91 }, spo2: { value: 96.5, quality: 80 } }),
  frame(2, { flags: FLAG_FINGER_OFF, spo2: { value: 50, quality: 10 } }),
  frame(3, { flags: FLAG_LEAD_OFF }),
  frame(99, { hr: { value: 80, quality: 90 } }), // outside the range
]
const opts = { patientId: 'pt-abc', patientName: 'Patient A', fromMs: T0, toMs: T0 + 10_000 }

// Resources are checked as untyped JSON, the way a FHIR server receives them.
type Res = Record<string, any>

t.test('bundle shape and required fields', async (t) => {
  const b = buildFhirBundle(frames, opts)
  const text = JSON.stringify(b)
  const round = JSON.parse(text) as Res
  t.same(round, b, 'plain JSON: survives a round trip unchanged')
  t.equal(round.resourceType, 'Bundle')
  t.equal(round.type, 'collection')
  t.match(round.id, /^[A-Za-z0-9\-.]{1,64}$/)
  const resources = (round.entry as { fullUrl: string; resource: Res; request?: unknown }[]).map((e) => {
    t.match(e.fullUrl, /^urn:uuid:[0-9a-f-]{36}$/)
    t.equal(e.fullUrl, `urn:uuid:${e.resource.id}`, 'fullUrl matches the resource id')
    t.notOk(e.request, 'collection entries carry no request')
    return e.resource
  })
  const patient = resources.find((r) => r.resourceType === 'Patient')!
  t.same(patient.identifier, [{ system: 'urn:mhealth:patient-id', value: 'pt-abc' }])
  const patientRef = `urn:uuid:${patient.id}`
  const obs = resources.filter((r) => r.resourceType === 'Observation')
  for (const o of obs) {
    t.equal(o.status, 'final')
    t.same(o.subject, { reference: patientRef }, 'subject resolves inside the bundle')
    t.ok(Array.isArray(o.code.coding) && o.code.coding.length > 0, 'code.coding')
    t.match(o.device.reference, /^urn:uuid:/)
  }
  const byCode = (code: string) => obs.filter((o) => o.code.coding.some((c: Res) => c.system === LOINC && c.code === code))
  const hr = byCode('8867-4').filter((o) => !o.code.coding.some((c: Res) => c.code === '8889-8'))
  t.equal(hr.length, 2, 'one heart-rate Observation per frame with hr, none outside the range')
  for (const o of hr) {
    t.match(o.effectiveDateTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    t.same(o.category[0].coding[0], { system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs', display: 'Vital Signs' })
    t.match(o.valueQuantity, { unit: 'beats/minute', system: UCUM, code: '/min' })
  }
  t.equal(hr[0].valueQuantity.value, 72, 'rounded to one decimal')
  t.equal(hr[0].effectiveDateTime, new Date(T0).toISOString())
  const spo2 = byCode('59408-5')
  t.equal(spo2.length, 2, 'SpO2 from frames 0 and 1; the finger-off frame is left out')
  for (const o of spo2) {
    t.ok(o.code.coding.some((c: Res) => c.system === LOINC && c.code === '2708-6'), 'vital-signs profile code 2708-6 too')
    t.match(o.valueQuantity, { unit: '%', system: UCUM, code: '%' })
    t.type(o.effectiveDateTime, 'string')
  }
  t.same(spo2.map((o) => o.valueQuantity.value), [97, 96.5])
  const pr = byCode('8889-8')
  t.equal(pr.length, 1)
  const ecg = obs.filter((o) => o.valueSampledData)
  t.equal(ecg.length, 3, 'ECG for frames 0-2; the lead-off frame is left out')
  for (const o of ecg) {
    const sd = o.valueSampledData
    t.match(sd.origin, { value: 0, unit: 'mV', system: UCUM, code: 'mV' })
    t.equal(sd.period, 4, '250 Hz: 4 ms per sample')
    t.equal(sd.dimensions, 1)
    const data = (sd.data as string).split(' ')
    t.equal(data.length, 250)
    t.ok(data.every((x) => /^-?\d+$/.test(x)), 'data: decimals separated by single spaces')
    t.equal(sd.factor, 0.008056641, 'mV per count: 3.3 V over 4096 counts behind the AD8232 gain of 100')
    t.match(o.effectivePeriod, { start: /Z$/, end: /Z$/ })
  }
  const devices = resources.filter((r) => r.resourceType === 'Device')
  t.equal(devices.length, 1, 'one Device per board, referenced by every Observation')
  const ids = resources.map((r) => r.id)
  t.equal(new Set(ids).size, ids.length, 'ids are unique')
})

t.test('deterministic ids; transaction type adds POST requests', async (t) => {
  t.same(buildFhirBundle(frames, opts), buildFhirBundle([...frames].reverse(), opts), 'same frames, same bytes, in any input order')
  const tx = buildFhirBundle(frames, { ...opts, type: 'transaction' })
  t.equal(tx.type, 'transaction')
  t.equal(tx.entry.length, buildFhirBundle(frames, opts).entry.length, 'the same entries as the collection')
  t.ok(tx.entry.every((e) => e.request?.method === 'POST' && e.request.url === e.resource.resourceType), 'each with a POST to its resource type')
})

t.test('ECG findings: a PVC-rate Observation (MDC) and a rhythm Observation (LOINC 8884-9, local + SNOMED value)', async (t) => {
  const at = (seq: number) => T0 + (seq + 1) * 1000
  const withEcg = [
    { ...frame(0), ecg: { rhythm: 'AF' as const, pvcPerMin: 4, windowS: 60, quality: 88, at: at(0) } },
    { ...frame(1), ecg: { rhythm: null, pvcPerMin: 1, windowS: 12, quality: 70, at: at(1) } },
    { ...frame(2), ecg: { rhythm: 'TACHY' as const, pvcPerMin: 0, windowS: 60, quality: 90, at: at(2) } },
    { ...frame(3, { flags: FLAG_LEAD_OFF }), ecg: { rhythm: 'VT' as const, pvcPerMin: 9, windowS: 60, quality: 0, at: at(3) } },
    frame(4),
  ]
  const obs = (buildFhirBundle(withEcg, opts) as unknown as Res).entry.map((e: Res) => e.resource).filter((r: Res) => r.resourceType === 'Observation')
  const pvc = obs.filter((o: Res) => o.code.coding.some((c: Res) => c.system === MDC && c.code === '148066'))
  t.equal(pvc.length, 3, 'one per frame with findings; none for the lead-off frame or the frame without findings')
  t.same(pvc[0].code.coding[0], { system: MDC, code: '148066', display: 'MDC_ECG_V_P_C_RATE' })
  t.same(pvc[0].valueQuantity, { value: 4, unit: 'beats/minute', system: UCUM, code: '/min' })
  t.same(pvc[0].category[0].coding[0].code, 'procedure', 'ECG analysis, not a vital sign')
  t.same(pvc[1].effectivePeriod, { start: new Date(at(1) - 12_000).toISOString(), end: new Date(at(1)).toISOString() }, 'the period is the window counted')
  const rhythm = obs.filter((o: Res) => o.code.coding.some((c: Res) => c.system === LOINC && c.code === '8884-9'))
  t.equal(rhythm.length, 3)
  t.same(rhythm[0].valueCodeableConcept.coding, [
    { system: ECG_RHYTHM_SYSTEM, code: 'AF', display: 'Atrial fibrillation (irregular RR)' },
    { system: SNOMED, code: '49436004', display: 'Atrial fibrillation' },
  ])
  t.same(rhythm[1].valueCodeableConcept.coding, [{ system: ECG_RHYTHM_SYSTEM, code: 'none', display: 'None of the analysed rhythms' }], 'no call: said so, not left out')
  t.equal(rhythm[2].valueCodeableConcept.coding.length, 1, 'TACHY: local code only (no matching concept used)')
  t.equal(rhythm[0].effectiveDateTime, new Date(at(0)).toISOString())
  const ids = obs.map((o: Res) => o.id)
  t.equal(new Set(ids).size, ids.length, 'ids stay unique')
  const plain = buildFhirBundle(frames, opts)
  t.notOk(JSON.stringify(plain).includes('148066'), 'frames without findings export exactly as before')
})

t.test('bad options are refused by name', async (t) => {
  t.throws(() => buildFhirBundle(frames, { ...opts, patientId: '' }), /patientId: expected a non-empty string/)
  t.throws(() => buildFhirBundle(frames, { ...opts, fromMs: NaN }), /fromMs\/toMs: expected finite numbers/)
  t.throws(() => buildFhirBundle(frames, { ...opts, toMs: T0 - 1 }), /before fromMs/)
  t.throws(() => buildFhirBundle(frames, { ...opts, type: 'batch' as 'collection' }), /type: expected 'collection' or 'transaction'/)
  const empty = buildFhirBundle([], opts)
  t.equal(empty.entry.length, 1, 'no frames: just the Patient')
})
