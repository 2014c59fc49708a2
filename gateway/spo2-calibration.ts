/**
 * A calibration file (CAL.json): one sensor model's, or one device's, R→SpO2
 * curve with how it was fitted. Its ID is a hash of what decides a reading
 * (format, sensor, device, curve), so the same ID always means the same
 * numbers: a SpO2 that names it can be recomputed from the signed raw samples.
 * Editing the curve in the file without a new ID is refused on load.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { SpO2Calibration } from '../signal/ppg.ts'
import { monotonicProblem, type CalibrationFit } from '../signal/ppg-calibration.ts'

export const CALIBRATION_FORMAT = 'mhealth-spo2-calibration/1'

export interface CalibrationFile {
  format: typeof CALIBRATION_FORMAT
  /** sha256 of the canonical {format, sensor, device, curve}, 16 hex digits, prefixed. */
  id: string
  /** The sensor model it belongs to (e.g. "MAX30102"), or null when it belongs to one device. */
  sensor: string | null
  /** The device it belongs to, or null for a whole sensor model. */
  device: string | null
  curve: SpO2Calibration
  /** How it was fitted (signal/ppg-calibration.ts), rounded. */
  fit: Omit<CalibrationFit, 'curve'>
  createdAt: string
}

export class CalibrationFileError extends Error {}

export function calibrationId(format: string, sensor: string | null, device: string | null, curve: SpO2Calibration): string {
  const canon = JSON.stringify({ format, sensor, device, curve: { a: curve.a, b: curve.b, c: curve.c } })
  return 'spo2cal-' + createHash('sha256').update(canon).digest('hex').slice(0, 16)
}

export function makeCalibrationFile(fit: CalibrationFit, owner: { sensor: string | null; device: string | null }, now = new Date()): CalibrationFile {
  if ((owner.sensor === null) === (owner.device === null)) throw new CalibrationFileError('a calibration belongs to a sensor model or to one device (exactly one of them)')
  const r = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d
  const curve = { a: r(fit.curve.a, 6), b: r(fit.curve.b, 6), c: r(fit.curve.c, 6) }
  return {
    format: CALIBRATION_FORMAT,
    id: calibrationId(CALIBRATION_FORMAT, owner.sensor, owner.device, curve),
    sensor: owner.sensor,
    device: owner.device,
    curve,
    fit: {
      degree: fit.degree,
      n: fit.n,
      arms: r(fit.arms, 3),
      looArms: r(fit.looArms, 3),
      bias: r(fit.bias, 3),
      spo2Range: fit.spo2Range,
      ratioRange: [r(fit.ratioRange[0], 4), r(fit.ratioRange[1], 4)],
    },
    createdAt: now.toISOString(),
  }
}

/** Checks a parsed calibration file; `what` names it in errors. */
export function checkCalibrationFile(j: unknown, what: string): CalibrationFile {
  const c = j as CalibrationFile
  if (!c || typeof c !== 'object' || c.format !== CALIBRATION_FORMAT) throw new CalibrationFileError(`${what}: not a calibration file (expected "format": "${CALIBRATION_FORMAT}")`)
  const cv = c.curve
  if (!cv || ![cv.a, cv.b, cv.c].every((x) => typeof x === 'number' && Number.isFinite(x))) throw new CalibrationFileError(`${what}: "curve" must hold finite numbers a, b, c`)
  if ((c.sensor === null) === (c.device === null) || (c.sensor !== null && typeof c.sensor !== 'string') || (c.device !== null && typeof c.device !== 'string')) {
    throw new CalibrationFileError(`${what}: exactly one of "sensor" and "device" must be set`)
  }
  const id = calibrationId(c.format, c.sensor, c.device, cv)
  if (c.id !== id) throw new CalibrationFileError(`${what}: its id ${String(c.id)} does not match its curve (expected ${id}); was the file edited? Fit it again with mhealth ppg calibrate`)
  const rr = c.fit && Array.isArray(c.fit.ratioRange) ? c.fit.ratioRange : null
  const mono = rr ? monotonicProblem(cv, rr[0], rr[1]) : null
  if (mono) throw new CalibrationFileError(`${what}: ${mono}`)
  return c
}

export async function readCalibrationFile(path: string): Promise<CalibrationFile> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    throw new CalibrationFileError(`cannot read calibration ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
  }
  let j: unknown
  try {
    j = JSON.parse(text)
  } catch {
    throw new CalibrationFileError(`${path}: not JSON`)
  }
  return checkCalibrationFile(j, path)
}
