/**
 * Topic rules, as pure functions of (principal, topic). The broker hooks call these;
 * consent is looked up by the caller and passed in, so this file does no I/O.
 *
 *   device D   publish   mhealth/dev/D/frames          (QoS 1 frames)
 *              subscribe mhealth/dev/D/control         (time, nack, config)
 *   user U     subscribe mhealth/patient/P/frames      (only if P consented to U; no wildcards)
 *              subscribe mhealth/alarms/P              (alarms of patient P, docs/alarms.md: an admin
 *                                                       (the paging system's account), or a clinician
 *                                                       P consented to; re-checked per message)
 *              subscribe mhealth/gateway/alarms        (the gateway's own alarms: admins only)
 *              publish   nothing
 *   anyone     $SYS/... refused; wildcards only where a rule says so (none here)
 */

export type Principal =
  | { kind: 'device'; deviceId: string; patient: string }
  | { kind: 'user'; username: string; role: 'clinician' | 'admin' }
  | { kind: 'anonymous' }

export const framesTopic = (deviceId: string): string => `mhealth/dev/${deviceId}/frames`
export const controlTopic = (deviceId: string): string => `mhealth/dev/${deviceId}/control`
export const patientTopic = (patientId: string): string => `mhealth/patient/${patientId}/frames`

export const alarmsTopic = (patientId: string): string => `mhealth/alarms/${patientId}`
export const GATEWAY_ALARMS_TOPIC = 'mhealth/gateway/alarms'
const ALARMS_RE = /^mhealth\/alarms\/([^/+#]+)$/

/** Patient ID named by an alarms topic, or null. */
export function patientOfAlarmsTopic(topic: string): string | null {
  const m = ALARMS_RE.exec(topic)
  return m ? m[1]! : null
}

const FRAMES_RE = /^mhealth\/dev\/([^/+#]+)\/frames$/
const PATIENT_RE = /^mhealth\/patient\/([^/+#]+)\/frames$/

/** Device ID named by a frames topic, or null. */
export function deviceOfFramesTopic(topic: string): string | null {
  const m = FRAMES_RE.exec(topic)
  return m ? m[1]! : null
}

export function patientOfTopic(topic: string): string | null {
  const m = PATIENT_RE.exec(topic)
  return m ? m[1]! : null
}

/** Topics of the clinical namespace (frames, control, patient feeds). */
export const CLINICAL = 'mhealth/'

export type Decision = { ok: true } | { ok: false; reason: string }
const allow: Decision = { ok: true }
const deny = (reason: string): Decision => ({ ok: false, reason })

export function canPublish(p: Principal, topic: string): Decision {
  if (topic.startsWith('$')) return deny('reserved-topic') // [MQTT-4.7.2-1] $-topics belong to the server
  if (p.kind === 'anonymous') return topic.startsWith(CLINICAL) ? deny('anonymous-clinical-namespace') : allow
  if (p.kind === 'device') return topic === framesTopic(p.deviceId) ? allow : deny('not-own-frames-topic')
  return deny('users-may-not-publish')
}

export function canSubscribe(p: Principal, filter: string, consented: (patientId: string) => boolean): Decision {
  // Conformance testing only; $SYS is still not matched by '#' [MQTT-4.7.2-1]. Anonymous
  // clients never touch patient data or device control, even in that mode.
  if (p.kind === 'anonymous') return filter.startsWith(CLINICAL) ? deny('anonymous-clinical-namespace') : allow
  if (filter.startsWith('$')) return deny('reserved-topic')
  if (filter.includes('#') || filter.includes('+')) return deny('wildcard-not-allowed')
  if (p.kind === 'device') return filter === controlTopic(p.deviceId) ? allow : deny('not-own-control-topic')
  if (filter === GATEWAY_ALARMS_TOPIC) return p.role === 'admin' ? allow : deny('admins-only')
  const alarmsOf = patientOfAlarmsTopic(filter)
  if (alarmsOf !== null) return p.role === 'admin' || consented(alarmsOf) ? allow : deny('no-consent')
  const patient = patientOfTopic(filter)
  if (patient === null) return deny('not-a-patient-topic')
  return consented(patient) ? allow : deny('no-consent')
}
