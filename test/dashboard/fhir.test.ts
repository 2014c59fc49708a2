/**
 * FHIR R4 export: the Bundle is JSON with the fields a FHIR server requires
 * (checked structurally here, resource by resource), deterministic, and
 * refuses bad options with a message naming the field.
 */
import t from 'tap'
import { buildFhirBundle, LOINC, UCUM, type ExportFrame } from '../../dashboard/fhir.ts'
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

t.test('bad options are refused by name', async (t) => {
  t.throws(() => buildFhirBundle(frames, { ...opts, patientId: '' }), /patientId: expected a non-empty string/)
  t.throws(() => buildFhirBundle(frames, { ...opts, fromMs: NaN }), /fromMs\/toMs: expected finite numbers/)
  t.throws(() => buildFhirBundle(frames, { ...opts, toMs: T0 - 1 }), /before fromMs/)
  t.throws(() => buildFhirBundle(frames, { ...opts, type: 'batch' as 'collection' }), /type: expected 'collection' or 'transaction'/)
  const empty = buildFhirBundle([], opts)
  t.equal(empty.entry.length, 1, 'no frames: just the Patient')
})
