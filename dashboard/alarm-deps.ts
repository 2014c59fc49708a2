/**
 * AlarmDeps over the gateway's AlarmService: who may see and act on which alarm. An admin
 * (the admin token, or a user with role admin) sees every alarm, the gateway's own included;
 * a clinician sees a patient's alarms only while that patient's consent (scope live) lets
 * them see the data, checked at each request and at each live change (as for the live data).
 */
import { DashboardError, type Actor, type AlarmDeps } from './deps.ts'
import type { AlarmService, AlarmView } from './alarm-service.ts'

export function alarmDeps(service: AlarmService, may: (actor: Actor, patientId: string) => boolean): AlarmDeps {
  const sees = (actor: Actor, a: { patientId: string | null }): boolean => actor.role === 'admin' || (a.patientId !== null && may(actor, a.patientId))
  const visible = (actor: Actor, id: string): AlarmView => {
    const a = service.get(id)
    // Not found and not allowed look alike to a clinician: an ID says nothing about other patients.
    if (!a) throw new DashboardError(`no alarm ${id}`, 'not-found')
    if (!sees(actor, a)) throw new DashboardError(`${actor.userId} has no consent from the patient of alarm ${id}`, 'forbidden')
    return a
  }
  const requirePatient = (actor: Actor, patientId: string): void => {
    if (actor.role !== 'admin' && !may(actor, patientId)) throw new DashboardError(`${actor.userId} has no consent from patient ${patientId} (scope live)`, 'forbidden')
  }
  return {
    async list(actor, o) {
      if (o.patientId !== undefined) requirePatient(actor, o.patientId)
      return service.list(o).filter((a) => sees(actor, a))
    },
    async get(actor, id) {
      return visible(actor, id)
    },
    async acknowledge(actor, id) {
      visible(actor, id)
      return service.acknowledge(id, actor.userId)
    },
    async silence(actor, id, seconds) {
      visible(actor, id)
      return service.silence(id, actor.userId, seconds)
    },
    async limits(actor, patientId) {
      requirePatient(actor, patientId)
      return service.limits(patientId)
    },
    async setLimits(actor, patientId, limits) {
      requirePatient(actor, patientId)
      return service.setLimits(patientId, limits, actor.userId)
    },
    subscribe(actor, listener) {
      return service.onChange((n) => {
        if (sees(actor, n.alarm)) listener(n)
      })
    },
  }
}
