/**
 * Checks on what the dashboard's requests carry (body fields, query times,
 * patient IDs): each answers the value or throws a 400 that says what was expected.
 */
import { HttpError } from '../http/errors.ts'

const PATIENT_ID_RE = /^[A-Za-z0-9._-]{1,64}$/

/** A string field of 1..max characters. */
export function stringField(b: Record<string, unknown>, key: string, max = 256): string {
  const v = b[key]
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new HttpError(400, `${key}: expected a string of 1..${max} characters, got ${v === undefined ? 'nothing' : typeof v}`)
  return v
}

/** A time in the query (ms since epoch or ISO 8601), `dflt` when absent. */
function timeParam(q: URLSearchParams, key: string, dflt: number): number {
  const v = q.get(key)
  if (v === null || v === '') return dflt
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v)
  if (!Number.isFinite(n)) throw new HttpError(400, `${key}: expected ms since epoch or an ISO 8601 time, got '${v}'`)
  return n
}

/** The query's [from, to] (default: the hour up to now), refused when it runs backwards. */
export function timeRange(q: URLSearchParams, nowMs: number): { fromMs: number; toMs: number } {
  const toMs = timeParam(q, 'to', nowMs)
  const fromMs = timeParam(q, 'from', toMs - 3600_000)
  if (toMs < fromMs) throw new HttpError(400, `to (${toMs}) is before from (${fromMs})`)
  return { fromMs, toMs }
}

/** A patient ID (already percent-decoded). */
export function patientParam(p: string): string {
  if (!PATIENT_ID_RE.test(p)) throw new HttpError(400, `patient ID: expected 1-64 characters [A-Za-z0-9._-], got '${p.slice(0, 70)}'`)
  return p
}
