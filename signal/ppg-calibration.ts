/**
 * Fitting a sensor's R→SpO2 curve from spot checks with a reference SpO2 (a
 * co-oximeter or a reference finger oximeter), and refusing a fit that would
 * not be a calibration: too few points, too narrow a range of saturation,
 * or a curve that does not fall as R rises (more red absorbed relative to IR
 * is always less oxygenated blood: Beer–Lambert with the extinction
 * coefficients of Hb and HbO2 at 660 and 880-940 nm).
 *
 * The fit is least squares in SpO2, linear by default (SpO2 = a + b·R: the
 * form most vendors calibrate with, and all that ten or twenty points
 * support), quadratic on request. Its accuracy is given as ISO 80601-2-61
 * asks, as Arms (root mean square of reading minus reference), both on the
 * points it was fitted to and by leave-one-out (each point predicted by the
 * curve fitted to all the others): the second is what to expect on new data.
 */
import type { SpO2Calibration } from './ppg.ts'

export interface CalibrationPoint {
  ratio: number
  spo2: number
}

/** At least this many points. */
export const MIN_POINTS = 10
/** The reference SpO2 must span at least this many points of saturation. */
export const MIN_SPAN = 10

export interface CalibrationFit {
  curve: SpO2Calibration
  degree: 1 | 2
  n: number
  /** Arms over the fitted points, and leave-one-out. */
  arms: number
  looArms: number
  bias: number
  spo2Range: [number, number]
  ratioRange: [number, number]
}

export class CalibrationRefused extends Error {
  reasons: string[]
  constructor(reasons: string[]) {
    super('calibration refused: ' + reasons.join('; '))
    this.reasons = reasons
  }
}

/** Least squares of spo2 on [1, R, R²] (degree 2) or [1, R]; null when singular. */
export function leastSquares(points: CalibrationPoint[], degree: 1 | 2): SpO2Calibration | null {
  const k = degree + 1
  // normal equations (k ≤ 3), solved by Gaussian elimination with partial pivoting
  const m: number[][] = []
  for (let i = 0; i < k; i++) {
    const row: number[] = []
    for (let j = 0; j <= k; j++) row.push(0)
    m.push(row)
  }
  for (let q = 0; q < points.length; q++) {
    const p = points[q]
    const x = [1, p.ratio, p.ratio * p.ratio]
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) m[i][j] += x[i] * x[j]
      m[i][k] += x[i] * p.spo2
    }
  }
  for (let c = 0; c < k; c++) {
    let piv = c
    for (let r = c + 1; r < k; r++) if (Math.abs(m[r][c]) > Math.abs(m[piv][c])) piv = r
    if (Math.abs(m[piv][c]) < 1e-12) return null
    const tmp = m[c]
    m[c] = m[piv]
    m[piv] = tmp
    for (let r = 0; r < k; r++) {
      if (r === c) continue
      const f = m[r][c] / m[c][c]
      for (let j = c; j <= k; j++) m[r][j] -= f * m[c][j]
    }
  }
  const coef = m.map((row, i) => row[k] / row[i])
  return { a: coef[0], b: coef[1], c: degree === 2 ? coef[2] : 0 }
}

export function applyCurve(c: SpO2Calibration, ratio: number): number {
  return c.a + c.b * ratio + c.c * ratio * ratio
}

/** Why a curve is not monotonic (falling) over [lo, hi] of R, or null. */
export function monotonicProblem(c: SpO2Calibration, lo: number, hi: number): string | null {
  // d/dR = b + 2cR: linear in R, so its sign over the range is settled at the ends
  const d0 = c.b + 2 * c.c * lo
  const d1 = c.b + 2 * c.c * hi
  if (d0 < 0 && d1 < 0) return null
  return `the fitted curve does not fall as R rises over R ${lo.toFixed(3)}-${hi.toFixed(3)} (slope ${d0.toFixed(1)} to ${d1.toFixed(1)} %/unit R): not a saturation curve`
}

/** Fits and checks; throws CalibrationRefused with every reason that applies. */
export function fitCalibration(points: CalibrationPoint[], degree: 1 | 2 = 1): CalibrationFit {
  const reasons: string[] = []
  const ok = points.filter((p) => isFinite(p.ratio) && p.ratio > 0 && isFinite(p.spo2))
  const need = Math.max(MIN_POINTS, degree === 2 ? 15 : MIN_POINTS)
  if (ok.length < need) reasons.push(`${ok.length} usable point${ok.length === 1 ? '' : 's'}; at least ${need} are needed for a degree-${degree} fit`)
  let sLo = Infinity, sHi = -Infinity, rLo = Infinity, rHi = -Infinity
  for (let q = 0; q < ok.length; q++) {
    const p = ok[q]
    sLo = Math.min(sLo, p.spo2)
    sHi = Math.max(sHi, p.spo2)
    rLo = Math.min(rLo, p.ratio)
    rHi = Math.max(rHi, p.ratio)
  }
  if (ok.length > 0 && sHi - sLo < MIN_SPAN) reasons.push(`reference SpO2 spans only ${sLo}-${sHi} %; at least ${MIN_SPAN} points of saturation are needed (ISO 80601-2-61 calibrates over 70-100 %)`)
  if (reasons.length > 0) throw new CalibrationRefused(reasons)
  const curve = leastSquares(ok, degree)
  if (!curve) throw new CalibrationRefused(['every point has the same R: nothing to fit a curve to'])
  const mono = monotonicProblem(curve, rLo, rHi)
  if (mono) throw new CalibrationRefused([mono])
  let se = 0, bias = 0, loo = 0
  for (let i = 0; i < ok.length; i++) {
    const e = applyCurve(curve, ok[i].ratio) - ok[i].spo2
    se += e * e
    bias += e
    const rest = ok.slice(0, i).concat(ok.slice(i + 1))
    const c = leastSquares(rest, degree)
    const el = c ? applyCurve(c, ok[i].ratio) - ok[i].spo2 : Infinity
    loo += el * el
  }
  return {
    curve,
    degree,
    n: ok.length,
    arms: Math.sqrt(se / ok.length),
    looArms: Math.sqrt(loo / ok.length),
    bias: bias / ok.length,
    spo2Range: [sLo, sHi],
    ratioRange: [rLo, rHi],
  }
}
