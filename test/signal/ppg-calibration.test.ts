/**
 * The calibration fit (signal/ppg-calibration.ts): least squares that recovers a known curve,
 * leave-one-out accuracy, and every reason a fit is refused.
 */
import t from 'tap'
import { fitCalibration, leastSquares, monotonicProblem, applyCurve, CalibrationRefused } from '../../signal/ppg-calibration.ts'

const curve = { a: 112, b: -30, c: 2 }
const points = (n: number, noise = 0) => Array.from({ length: n }, (_, i) => {
  const ratio = 0.45 + (i * 1.0) / (n - 1)
  return { ratio, spo2: applyCurve(curve, ratio) + noise * Math.sin(i * 2.3) }
})

t.test('least squares recovers an exact curve; leave-one-out is zero on it', async (t) => {
  const fit = fitCalibration(points(16), 2)
  t.ok(Math.abs(fit.curve.a - 112) < 1e-6 && Math.abs(fit.curve.b + 30) < 1e-6 && Math.abs(fit.curve.c - 2) < 1e-6, JSON.stringify(fit.curve))
  t.ok(fit.arms < 1e-6 && fit.looArms < 1e-6)
  t.equal(fit.n, 16)
  const lin = fitCalibration(points(12, 1), 1)
  t.equal(lin.curve.c, 0, 'degree 1: no R^2 term')
  t.ok(lin.looArms >= lin.arms, `leave-one-out ${lin.looArms.toFixed(3)} is never better than the fit's ${lin.arms.toFixed(3)}`)
  t.equal(leastSquares([{ ratio: 1, spo2: 90 }, { ratio: 1, spo2: 80 }], 1), null, 'singular: every R the same')
})

t.test('refusals name every reason', async (t) => {
  const few = () => fitCalibration(points(6), 1)
  try {
    few()
  } catch (e) {
    t.ok(e instanceof CalibrationRefused && e.reasons.length === 1, 'a CalibrationRefused with its reasons')
  }
  t.throws(few, /6 usable points; at least 10 are needed for a degree-1 fit/)
  t.throws(() => fitCalibration(points(12), 2), /at least 15 are needed for a degree-2 fit/)
  const narrow = points(12).map((p, i) => ({ ratio: p.ratio, spo2: 95 + (i % 3) }))
  t.throws(() => fitCalibration(narrow, 1), /spans only 95-97 %/)
  const rising = points(12).map((p) => ({ ratio: p.ratio, spo2: 60 + 30 * p.ratio }))
  t.throws(() => fitCalibration(rising, 1), /does not fall as R rises/)
  const bad = points(12).concat([{ ratio: NaN, spo2: 90 }, { ratio: -1, spo2: 90 }])
  t.equal(fitCalibration(bad, 1).n, 12, 'non-finite or non-positive R left out')
  t.equal(monotonicProblem({ a: 100, b: -20, c: 12 }, 0.5, 0.8), null, 'falls over 0.5-0.8')
  t.match(monotonicProblem({ a: 100, b: -20, c: 12 }, 0.5, 1.2), /does not fall/, 'turns up before 1.2')
})
