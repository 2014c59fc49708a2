/**
 * FHIR R4 export: a Bundle of Observations built from decoded frames (and the patient's
 * alarms, alarm-fhir.ts). Pure (no
 * I/O, no clock): the same frames and options always give the same bytes, and
 * resource IDs are name-based UUIDs derived from what they describe, so
 * exporting twice and POSTing both as transactions does not invent new ids.
 *
 * Codes (R4, checked against the spec's examples and the vital-signs profile):
 *   heart rate      LOINC 8867-4  "Heart rate"                              /min
 *   pulse rate      LOINC 8889-8  "Heart rate by Pulse oximetry"            /min
 *   SpO2            LOINC 2708-6 + 59408-5 (the vital-signs profile requires
 *                   2708-6; 59408-5 says "by pulse oximetry")               %
 *   ECG             MDC 131328 MDC_ECG_ELEC_POTL (system urn:oid:2.16.840.1.113883.6.24),
 *                   the code HL7's own R4 SampledData example uses; our boards
 *                   record one unspecified lead (AD8232 or MAX30003), not a 12-lead study,
 *                   so LOINC 11524-6 "EKG study" would overstate it. Category
 *                   'procedure' as in that example: a waveform is not a vital sign.
 *   PVC rate        MDC 148066 MDC_ECG_V_P_C_RATE (partition 2, term 16994; what bedside
 *                   monitors send in HL7 v2 OBX), /min; effectivePeriod = the window counted.
 *   ECG rhythm      LOINC 8884-9 "Heart rate rhythm" (as US Core's example); the value is a
 *                   code of our own system ECG_RHYTHM_SYSTEM (the labels of signal/rhythm.ts,
 *                   'none' when none applies), plus SNOMED CT where a concept matches
 *                   (RHYTHM_SNOMED). No MDC code is used for the rhythm: we found no published
 *                   numeric MDC term for a rhythm call or for these rhythms to cite.
 *   Both come from the gateway's ECG chain (EcgFindings, dashboard/vitals.ts), category
 *   'procedure' (ECG analysis, not a vital sign).
 *
 * References use `urn:uuid:` fullUrls, which resolve inside a collection and
 * which a server rewrites to its own ids when it processes a transaction.
 *
 * ECG scale: version-1 frames carry 12-bit AD8232 ADC codes (the options'
 * ecgMvPerCount and ecgBaselineCount describe that board); version-2 frames
 * carry signed MAX30003 counts and say their own scale (ecgUvPerLsb, from the
 * chip's gain), so their factor is ecgUvPerLsb / 1000 mV per count around 0 and
 * the limits are the chip's full scale. Samples the MAX30003 tagged as
 * fast-recovery are written as "E" (SampledData's error value). Where a frame
 * lost samples (gap records), the waveform is split: one Observation per
 * contiguous run, each starting at its own time, never a filled-in stretch.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { toHex, utf8Encode } from '../protocol/portable/bytes.ts'
import type { FramePayload } from '../protocol/portable/frame.ts'
import { FLAG_FINGER_OFF, FLAG_LEAD_OFF, LANE_ECG } from '../protocol/portable/frame.ts'
import type { EcgFindings, RhythmLabel } from './vitals.ts'
import type { AlarmView } from './alarm-service.ts'
import { alarmObservation } from './alarm-fhir.ts'

export const LOINC = 'http://loinc.org'
export const UCUM = 'http://unitsofmeasure.org'
export const MDC = 'urn:oid:2.16.840.1.113883.6.24'
export const OBS_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category'
export const ID_SYSTEM_PATIENT = 'urn:mhealth:patient-id'
export const ID_SYSTEM_DEVICE = 'urn:mhealth:device-id'
export const ID_SYSTEM_FRAME = 'urn:mhealth:frame-sha256'
export const SNOMED = 'http://snomed.info/sct'
/** Local code system of the rhythm calls (signal/rhythm.ts labels, and 'none'). */
export const ECG_RHYTHM_SYSTEM = 'urn:mhealth:ecg-rhythm'

/** Rhythm call → display, and the SNOMED CT concept where one matches (from HL7/IHE value sets). */
export const RHYTHM_CODES: Record<RhythmLabel | 'none', { display: string; snomed?: [string, string] }> = {
  VF: { display: 'Ventricular fibrillation', snomed: ['71908006', 'Ventricular fibrillation'] },
  ASYSTOLE: { display: 'Asystole', snomed: ['397829000', 'Asystole'] },
  VT: { display: 'Ventricular tachycardia (run of 3 or more fast V beats)' },
  NOISE: { display: 'Signal too noisy to judge the rhythm', snomed: ['251143007', 'Electrocardiogram artifact'] },
  AF: { display: 'Atrial fibrillation (irregular RR)', snomed: ['49436004', 'Atrial fibrillation'] },
  TACHY: { display: 'Tachycardia (rate above the limit)' },
  BRADY: { display: 'Bradycardia (rate below the limit)' },
  none: { display: 'None of the analysed rhythms' },
}

export interface FhirExportOptions {
  patientId: string
  patientName?: string
  fromMs: number
  toMs: number
  /** 'collection' (default) or 'transaction' (entries carry POST requests). */
  type?: 'collection' | 'transaction'
  /** ECG ADC scale. Default: 12-bit ADC at 3.3 V behind the AD8232's gain of 100 → 3300/4096/100 mV per count. */
  ecgMvPerCount?: number
  /** ADC count of 0 mV (the AD8232 output rides at mid-supply). Default 2048. */
  ecgBaselineCount?: number
  /** The patient's alarms: those that started in the range go in, one Observation each (alarm-fhir.ts). */
  alarms?: readonly AlarmView[]
}

export interface ExportFrame {
  payload: FramePayload
  /** The frame's ledger leaf hash (SHA-256(0x00 || bytes)), hex: recorded as an identifier so each Observation traces to its ledger leaf and proof. */
  frameHash: string
  /** The gateway's ECG findings after this frame (VitalsTracker): a PVC-rate and a rhythm Observation. */
  ecg?: EcgFindings
  /** The ID of the R->SpO2 calibration the gateway computed the SpO2 with (absent for a board's own SpO2). */
  spo2Calibration?: string
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
export type FhirResource = { resourceType: string; id: string; [k: string]: Json }
export interface FhirBundle {
  resourceType: 'Bundle'
  id: string
  type: 'collection' | 'transaction'
  entry: { fullUrl: string; resource: FhirResource; request?: { method: 'POST'; url: string } }[]
}

export const DEFAULT_ECG_MV_PER_COUNT = 3300 / 4096 / 100

/** Full scale of the MAX30003's signed 18-bit ECG counts. */
const ECG_COUNTS_MIN = -131072
const ECG_COUNTS_MAX = 131071

/**
 * The contiguous runs of a frame's ECG samples between gap records: samples
 * [from, to), `slot` = samples plus lost samples before `from` (its time offset
 * in sample periods from t0), `part` = its number among the non-empty runs.
 */
function ecgRuns(p: FramePayload): { from: number; to: number; slot: number; part: number }[] {
  const n = p.ecg!.length
  const gaps = (p.gaps ?? []).filter((g) => g.lane === LANE_ECG).sort((a, b) => a.at - b.at)
  const runs: { from: number; to: number; slot: number; part: number }[] = []
  let from = 0
  let lost = 0
  for (const g of [...gaps, { at: n, lost: 0 }]) {
    if (g.at > from) runs.push({ from, to: g.at, slot: from + lost, part: runs.length })
    from = g.at
    lost += g.lost
  }
  return runs
}

/** A version-5-style name-based UUID (SHA-256 truncated, RFC 9562 layout bits set). */
export function nameUuid(name: string): string {
  return uuidOfDigest(sha256(utf8Encode(NAME_PREFIX + name)))
}

const NAME_PREFIX = 'mhealth/fhir/'

function uuidOfDigest(digest: Uint8Array): string {
  const h = digest.slice(0, 16)
  h[6] = (h[6] & 0x0f) | 0x50
  h[8] = (h[8] & 0x3f) | 0x80
  const x = toHex(h)
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`
}

const iso = (ms: number): string => new Date(ms).toISOString()
/** FHIR decimals: finite JSON numbers; round away float noise so 4 stays 4, not 3.9999999. */
const dec = (v: number, digits = 6): number => Number(v.toFixed(digits))

function category(code: 'vital-signs' | 'procedure'): Json {
  return [{ coding: [{ system: OBS_CATEGORY, code, display: code === 'vital-signs' ? 'Vital Signs' : 'Procedure' }] }]
}

function checkOptions(o: FhirExportOptions): void {
  if (typeof o.patientId !== 'string' || o.patientId.length === 0) throw new TypeError(`patientId: expected a non-empty string, got ${JSON.stringify(o.patientId)}`)
  if (!Number.isFinite(o.fromMs) || !Number.isFinite(o.toMs)) throw new TypeError(`fromMs/toMs: expected finite numbers, got ${o.fromMs}, ${o.toMs}`)
  if (o.toMs < o.fromMs) throw new RangeError(`toMs ${o.toMs} is before fromMs ${o.fromMs}`)
  if (o.type !== undefined && o.type !== 'collection' && o.type !== 'transaction') throw new TypeError(`type: expected 'collection' or 'transaction', got ${String(o.type)}`)
}

type Entry = FhirBundle['entry'][number]

/**
 * A Bundle built a few frames at a time, so an export of a day of frames never holds it
 * all: the Patient entry, then the entries of each batch of frames in turn, then the
 * Bundle id (named after every frame exported, so it is known only at the end).
 * `buildFhirBundle` is this in one go; the streaming export (fhir-export.ts) writes each
 * part as it comes, and both give the same Bundle.
 */
export class FhirBundleAssembler {
  readonly type: 'collection' | 'transaction'
  private readonly mvPerCount: number
  private readonly baseline: number
  private readonly subject: { reference: string }
  private readonly patient: Entry
  private readonly deviceRefs = new Map<string, string>()
  private readonly idHash = sha256.create()
  private frameCount = 0
  private last: { t0: number; seq: number } | null = null

  constructor(private readonly o: FhirExportOptions) {
    checkOptions(o)
    this.type = o.type ?? 'collection'
    this.mvPerCount = o.ecgMvPerCount ?? DEFAULT_ECG_MV_PER_COUNT
    this.baseline = o.ecgBaselineCount ?? 2048
    this.patient = this.entry({
      resourceType: 'Patient',
      id: nameUuid(`patient/${o.patientId}`),
      identifier: [{ system: ID_SYSTEM_PATIENT, value: o.patientId }],
      ...(o.patientName ? { name: [{ text: o.patientName }] } : {}),
    })
    this.subject = { reference: this.patient.fullUrl }
    // The id names the range and every frame in it, in order: the same frames, the same id.
    this.idHash.update(utf8Encode(`${NAME_PREFIX}bundle/${o.patientId}/${o.fromMs}/${o.toMs}/${this.type}/`))
  }

  /** The first entry: the Patient. */
  patientEntry(): Entry {
    return this.patient
  }

  /**
   * Entries for the next frames: those outside [fromMs, toMs] (by t0) are left out, the
   * rest taken by t0, then seq. A batch must not go back before the previous one's last
   * frame (the Bundle would not be in order): a RangeError says so.
   */
  frameEntries(frames: readonly ExportFrame[]): Entry[] {
    const sorted = frames.filter((f) => f.payload.t0 >= this.o.fromMs && f.payload.t0 <= this.o.toMs).sort((a, b) => a.payload.t0 - b.payload.t0 || a.payload.seq - b.payload.seq)
    const first = sorted[0]?.payload
    if (first && this.last && (first.t0 < this.last.t0 || (first.t0 === this.last.t0 && first.seq < this.last.seq))) {
      throw new RangeError(`frames out of order: t0 ${first.t0} seq ${first.seq} after t0 ${this.last.t0} seq ${this.last.seq}`)
    }
    const out: Entry[] = []
    for (const f of sorted) {
      this.idHash.update(utf8Encode((this.frameCount++ > 0 ? ',' : '') + f.frameHash))
      this.addFrame(f, out)
    }
    if (sorted.length > 0) this.last = { t0: sorted[sorted.length - 1].payload.t0, seq: sorted[sorted.length - 1].payload.seq }
    return out
  }

  /**
   * Entries for the patient's alarms (alarm-fhir.ts), those that started in [fromMs, toMs],
   * oldest first; call after the last batch of frames. They are named in the Bundle id too.
   */
  alarmEntries(alarms: readonly AlarmView[]): Entry[] {
    const out: Entry[] = []
    const inRange = alarms.filter((a) => a.startedAt >= this.o.fromMs && a.startedAt <= this.o.toMs).sort((a, b) => a.startedAt - b.startedAt || a.id.localeCompare(b.id))
    for (const a of inRange) {
      this.idHash.update(utf8Encode(`;alarm/${a.id}/${a.state}`))
      const device = a.deviceId ? this.deviceRef(a.deviceId, out) : null
      out.push(this.entry(alarmObservation(a, nameUuid(`alarm/${a.id}`), this.subject, device)))
    }
    return out
  }

  /** The Bundle id, over the frames given so far (call once, after the last batch). */
  bundleId(): string {
    return uuidOfDigest(this.idHash.digest())
  }

  private entry(r: FhirResource): Entry {
    const fullUrl = `urn:uuid:${r.id}`
    return this.type === 'transaction' ? { fullUrl, resource: r, request: { method: 'POST', url: r.resourceType } } : { fullUrl, resource: r }
  }

  /** A device's reference; its Device entry goes out before the first Observation that names it. */
  private deviceRef(id: string, out: Entry[]): { reference: string } {
    let ref = this.deviceRefs.get(id)
    if (!ref) {
      const e = this.entry({
        resourceType: 'Device',
        id: nameUuid(`device/${id}`),
        identifier: [{ system: ID_SYSTEM_DEVICE, value: id }],
        deviceName: [{ name: `mhealth sensor board ${id}`, type: 'user-friendly-name' }],
        patient: this.subject,
      })
      out.push(e)
      ref = e.fullUrl
      this.deviceRefs.set(id, ref)
    }
    return { reference: ref }
  }

  private addFrame({ payload: p, frameHash, ecg: found, spo2Calibration }: ExportFrame, out: Entry[]): void {
    const add = (r: FhirResource): void => void out.push(this.entry(r))
    const { subject, mvPerCount, baseline } = this
    const device = this.deviceRef(p.deviceId, out)
    const identifier = (kind: string): Json => [{ system: ID_SYSTEM_FRAME, value: `${frameHash}#${kind}` }]
    const base = (kind: string) => ({ id: nameUuid(`obs/${frameHash}/${kind}`), identifier: identifier(kind), status: 'final', subject, device })
    const when = iso(p.t0)
    if (p.hr) {
      add({
        resourceType: 'Observation', ...base('hr'), category: category('vital-signs'),
        code: { coding: [{ system: LOINC, code: '8867-4', display: 'Heart rate' }], text: 'Heart rate (ECG)' },
        effectiveDateTime: when,
        valueQuantity: { value: dec(p.hr.value, 1), unit: 'beats/minute', system: UCUM, code: '/min' },
      })
    }
    if (p.pr && !(p.flags & FLAG_FINGER_OFF)) {
      add({
        resourceType: 'Observation', ...base('pr'), category: category('vital-signs'),
        code: { coding: [{ system: LOINC, code: '8867-4', display: 'Heart rate' }, { system: LOINC, code: '8889-8', display: 'Heart rate by Pulse oximetry' }], text: 'Pulse rate (oximeter)' },
        effectiveDateTime: when,
        valueQuantity: { value: dec(p.pr.value, 1), unit: 'beats/minute', system: UCUM, code: '/min' },
      })
    }
    if (p.spo2 && !(p.flags & FLAG_FINGER_OFF)) {
      add({
        resourceType: 'Observation', ...base('spo2'), category: category('vital-signs'),
        code: {
          coding: [
            { system: LOINC, code: '2708-6', display: 'Oxygen saturation in Arterial blood' },
            { system: LOINC, code: '59408-5', display: 'Oxygen saturation in Arterial blood by Pulse oximetry' },
          ],
          text: 'SpO2',
        },
        effectiveDateTime: when,
        valueQuantity: { value: dec(p.spo2.value, 1), unit: '%', system: UCUM, code: '%' },
        // Which curve turned the signed raw samples into this number: enough to recompute it.
        ...(spo2Calibration ? { method: { text: `pulse oximetry, gateway-computed from the raw red/IR samples with R->SpO2 calibration ${spo2Calibration}` } } : {}),
      })
    }
    if (found && !(p.flags & FLAG_LEAD_OFF)) {
      add({
        resourceType: 'Observation', ...base('pvc-rate'), category: category('procedure'),
        code: { coding: [{ system: MDC, code: '148066', display: 'MDC_ECG_V_P_C_RATE' }], text: 'PVC rate (ECG)' },
        effectivePeriod: { start: iso(found.at - found.windowS * 1000), end: iso(found.at) },
        valueQuantity: { value: found.pvcPerMin, unit: 'beats/minute', system: UCUM, code: '/min' },
      })
      const key = found.rhythm ?? 'none'
      const rc = RHYTHM_CODES[key]
      add({
        resourceType: 'Observation', ...base('rhythm'), category: category('procedure'),
        code: { coding: [{ system: LOINC, code: '8884-9', display: 'Heart rate rhythm' }], text: 'ECG rhythm call' },
        effectiveDateTime: iso(found.at),
        valueCodeableConcept: {
          coding: [{ system: ECG_RHYTHM_SYSTEM, code: key, display: rc.display }, ...(rc.snomed ? [{ system: SNOMED, code: rc.snomed[0], display: rc.snomed[1] }] : [])],
          text: rc.display,
        },
      })
    }
    if (p.ecg && p.ecgHz && p.ecg.length > 0 && !(p.flags & FLAG_LEAD_OFF) && p.ecgUvPerLsb !== undefined) {
      for (const seg of ecgRuns(p)) {
        const data: string[] = []
        for (let i = seg.from; i < seg.to; i++) data.push(p.ecgFast && p.ecgFast[i] === 1 ? 'E' : String(p.ecg[i]))
        const factor = p.ecgUvPerLsb / 1000 // exact: 25 / 2^(16+k) mV for gain 20·2^k
        const start = p.t0 + (seg.slot * 1000) / p.ecgHz
        add({
          resourceType: 'Observation', ...base(seg.part === 0 ? 'ecg' : `ecg-${seg.part + 1}`), category: category('procedure'),
          code: { coding: [{ system: MDC, code: '131328', display: 'MDC_ECG_ELEC_POTL' }], text: 'ECG, single lead' },
          effectivePeriod: { start: iso(Math.round(start)), end: iso(Math.round(start + ((seg.to - seg.from) * 1000) / p.ecgHz)) },
          valueSampledData: {
            origin: { value: 0, unit: 'mV', system: UCUM, code: 'mV' },
            period: dec(1000 / p.ecgHz),
            factor,
            lowerLimit: dec(ECG_COUNTS_MIN * factor, 6),
            upperLimit: dec(ECG_COUNTS_MAX * factor, 6),
            dimensions: 1,
            data: data.join(' '),
          },
        })
      }
    } else if (p.ecg && p.ecgHz && p.ecg.length > 0 && !(p.flags & FLAG_LEAD_OFF)) {
      const data: string[] = []
      for (let i = 0; i < p.ecg.length; i++) data.push(String(p.ecg[i] - baseline))
      add({
        resourceType: 'Observation', ...base('ecg'), category: category('procedure'),
        code: { coding: [{ system: MDC, code: '131328', display: 'MDC_ECG_ELEC_POTL' }], text: 'ECG, single lead' },
        effectivePeriod: { start: when, end: iso(p.t0 + Math.round((p.ecg.length * 1000) / p.ecgHz)) },
        valueSampledData: {
          origin: { value: 0, unit: 'mV', system: UCUM, code: 'mV' },
          period: dec(1000 / p.ecgHz),
          factor: dec(mvPerCount, 9),
          lowerLimit: dec(-baseline * mvPerCount, 4),
          upperLimit: dec((4095 - baseline) * mvPerCount, 4),
          dimensions: 1,
          data: data.join(' '),
        },
      })
    }
  }
}

/** Builds the Bundle in one go. Frames outside [fromMs, toMs] (by t0) are left out. */
export function buildFhirBundle(frames: readonly ExportFrame[], o: FhirExportOptions): FhirBundle {
  const a = new FhirBundleAssembler(o)
  const entry = [a.patientEntry(), ...a.frameEntries(frames), ...a.alarmEntries(o.alarms ?? [])]
  return { resourceType: 'Bundle', id: a.bundleId(), type: a.type, entry }
}
