/**
 * Alarms in the FHIR R4 export: one Observation per alarm. R4 has no alarm resource
 * (DeviceAlert arrives in R6), so the Observation carries what R6 DeviceAlert and IHE PCD
 * ACM (Alert Communication Management) say about an alarm, as components of codes of our
 * own system ALARM_SYSTEM: the alarm's kind (DeviceAlert.category: physiological /
 * technical), its IEC 60601-1-8 priority (DeviceAlert.priority, ACM's PH/PM/PL), its
 * inactivation state (ACM's alert state / inactivation state: active, acknowledged,
 * silenced, resolved) and the ledger leaf of its start, so the record can be proven.
 * effectivePeriod is the alarm condition's occurrence (DeviceAlert.occurrence[x]); status
 * 'final' once resolved, 'preliminary' while it is not. The condition is a code of
 * ALARM_CONDITION_SYSTEM (the table of docs/alarms.md), with SNOMED CT beside it where a
 * concept matches. docs/alarms.md "FHIR" says why this mapping.
 */
import type { AlarmView } from './alarm-service.ts'

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
const SNOMED = 'http://snomed.info/sct'

export const ALARM_SYSTEM = 'urn:mhealth:alarm'
export const ALARM_CONDITION_SYSTEM = 'urn:mhealth:alarm-condition'
const CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category'

const SNOMED_OF: Record<string, [string, string]> = {
  asystole: ['397829000', 'Asystole'],
  vf: ['71908006', 'Ventricular fibrillation'],
  vt: ['25569003', 'Ventricular tachycardia'],
  af: ['49436004', 'Atrial fibrillation'],
  brady: ['48867003', 'Bradycardia'],
  tachy: ['3424008', 'Tachycardia'],
}

const DISPLAY: Record<string, string> = {
  'hr-low': 'Heart rate below the low limit', 'hr-high': 'Heart rate above the high limit', 'spo2-low': 'SpO2 below the low limit',
  asystole: 'Asystole', vf: 'Ventricular fibrillation', vt: 'Ventricular tachycardia', af: 'Atrial fibrillation, new onset', brady: 'Bradycardia', tachy: 'Tachycardia',
  'lead-off': 'ECG lead off', 'probe-off': 'SpO2 probe off', 'device-offline': 'Device offline', 'signal-noise': 'ECG signal too noisy to analyse',
  'battery-low': 'Device battery low', 'clock-bad': 'Device clock not synchronised', 'frames-rejected': 'Frames failing verification', storage: 'Gateway storage cannot write',
}

const code = (c: string): { system: string; code: string; display: string } => ({ system: ALARM_SYSTEM, code: c, display: c })
const iso = (ms: number): string => new Date(ms).toISOString()

/** The Observation of one alarm, with resource id `id`; `subject` and `device` are references inside the Bundle. */
export function alarmObservation(a: AlarmView, id: string, subject: { reference: string }, device: { reference: string } | null): { resourceType: string; id: string; [k: string]: Json } {
  const snomed = SNOMED_OF[a.condition]
  return {
    resourceType: 'Observation',
    id,
    identifier: [{ system: 'urn:mhealth:alarm-id', value: a.id }],
    status: a.state === 'resolved' ? 'final' : 'preliminary',
    category: [{ coding: [{ system: CATEGORY, code: 'procedure', display: 'Procedure' }] }],
    code: {
      coding: [{ system: ALARM_CONDITION_SYSTEM, code: a.condition, display: DISPLAY[a.condition] ?? a.condition }, ...(snomed ? [{ system: SNOMED, code: snomed[0], display: snomed[1] }] : [])],
      text: `Alarm: ${DISPLAY[a.condition] ?? a.condition}`,
    },
    subject,
    ...(device ? { device } : {}),
    effectivePeriod: { start: iso(a.startedAt), ...(a.endedAt !== null ? { end: iso(a.endedAt) } : {}) },
    component: [
      { code: { coding: [code('kind')] }, valueCodeableConcept: { coding: [code(a.kind)] } },
      { code: { coding: [code('priority')] }, valueCodeableConcept: { coding: [code(a.priority)] } },
      { code: { coding: [code('state')] }, valueCodeableConcept: { coding: [code(a.state)] } },
      ...(a.leafIndex !== null ? [{ code: { coding: [code('ledger-leaf')] }, valueInteger: a.leafIndex }] : []),
    ],
  }
}
