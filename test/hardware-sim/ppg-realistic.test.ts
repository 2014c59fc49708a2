/**
 * The realistic PPG recording (hardware-sim/signals/ppg-realistic.ts): deterministic per seed,
 * each artefact present at its stated magnitude, the MAX30102 front end (LED current, range,
 * resolution, clipping) and the ground truth carried.
 */
import t from 'tap'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { realisticRecording, scenario, SCENARIOS, recordingCsv, writeRecordingCsv, truthPerSecond, type Recording, type RecordingOptions } from '../../hardware-sim/signals/ppg-realistic.ts'
import { modelRatio } from '../../hardware-sim/signals/ppg.ts'

const base = { seconds: 30, fs: 100, seed: 11 }
const mean = (a: ArrayLike<number>, i0 = 0, i1 = a.length): number => {
  let s = 0
  for (let i = i0; i < i1; i++) s += a[i]!
  return s / (i1 - i0)
}
const median = (a: number[]): number => a.slice().sort((x, y) => x - y)[a.length >> 1]!

/** PI per true beat: peak-to-trough above the foot-to-foot line, over the beat's mean; the median. */
function measuredPi(r: Recording, x: Float64Array): number {
  const out: number[] = []
  const b = r.truth.beats
  for (let k = 1; k + 1 < b.length; k++) {
    const i0 = Math.round(b[k]! * r.fs)
    const i1 = Math.round(b[k + 1]! * r.fs)
    let lo = Infinity
    let hi = -Infinity
    for (let i = i0; i <= i1; i++) {
      const v = x[i]! - (x[i0]! + ((x[i1]! - x[i0]!) * (i - i0)) / (i1 - i0))
      if (v < lo) lo = v
      if (v > hi) hi = v
    }
    out.push((hi - lo) / mean(x, i0, i1))
  }
  return median(out)
}

/** Amplitude of the component at f Hz (one DFT bin). */
function amplitudeAt(x: Float64Array, fs: number, f: number): number {
  let re = 0
  let im = 0
  const m = mean(x)
  for (let i = 0; i < x.length; i++) {
    re += (x[i]! - m) * Math.cos((2 * Math.PI * f * i) / fs)
    im += (x[i]! - m) * Math.sin((2 * Math.PI * f * i) / fs)
  }
  return (2 * Math.hypot(re, im)) / x.length
}

const only = (artefacts: RecordingOptions['artefacts'], extra: Partial<RecordingOptions> = {}): RecordingOptions => ({ ...base, spo2: 97, pulseRate: 72, artefacts, ...extra })

t.test('deterministic by seed; every scenario builds', async (t) => {
  for (const name of SCENARIOS) {
    const a = realisticRecording(scenario(name, base))
    const b = realisticRecording(scenario(name, base))
    t.same([a.t, a.red, a.ir], [b.t, b.red, b.ir], `${name}: same seed, same recording`)
    const c = realisticRecording(scenario(name, { ...base, seed: 12 }))
    t.not(a.ir.join(), c.ir.join(), `${name}: another seed, another recording`)
    t.equal(a.t.length, 3000)
  }
  t.throws(() => scenario('nope' as never, base), /scenario: expected one of clean, motion/)
})

t.test('ground truth: SpO2 and pulse rate per sample and per second; the hypoxia ramp 98 -> 70 %', async (t) => {
  const r = realisticRecording(scenario('hypoxia-ramp', { ...base, seconds: 60 }))
  t.equal(r.truth.spo2[0], 98)
  t.ok(Math.abs(r.truth.spo2[r.t.length - 1]! - 70) < 0.1, `ends at 70 % (${r.truth.spo2[r.t.length - 1]})`)
  const ps = truthPerSecond(r)
  t.equal(ps.length, 60)
  t.ok(ps.every((s, i) => i === 0 || s.spo2 < ps[i - 1]!.spo2), 'falls every second')
  const clean = realisticRecording(scenario('clean', { ...base, seconds: 60 }))
  const rate = mean(clean.truth.pulseRate)
  t.ok(Math.abs(rate - 72) < 3, `true pulse rate ~72 bpm (${rate.toFixed(1)})`)
  const beats = clean.truth.beats.length
  t.ok(beats >= 68 && beats <= 76, `${beats} true beats in 60 s`)
})

t.test('perfusion: PI measured on the output is what was asked, down to 0.2 %', async (t) => {
  const low = realisticRecording(scenario('low-perfusion', base))
  const pi = measuredPi(low, low.ir) * 100
  t.ok(pi > 0.15 && pi < 0.27, `low-perfusion scenario: PI ${pi.toFixed(3)} % ~ 0.2 %`)
  const clean = realisticRecording(scenario('clean', base))
  const pc = measuredPi(clean, clean.ir) * 100
  t.ok(pc > 1.3 && pc < 1.7, `clean: PI ${pc.toFixed(2)} % ~ 1.5 %`)
  const rr = measuredPi(clean, clean.red) / measuredPi(clean, clean.ir)
  t.ok(Math.abs(rr - modelRatio(0.97)) < 0.06, `ratio of ratios ${rr.toFixed(3)} ~ R(97 %) = ${modelRatio(0.97).toFixed(3)}`)
})

t.test('respiration: DC modulation at 0.25 Hz of the stated depth; drift: slow wander of ~1 % of DC', async (t) => {
  const plain = realisticRecording(only({}, { seconds: 60 }))
  const resp = realisticRecording(only({ respiration: true }, { seconds: 60 }))
  const dc = mean(resp.ir)
  const aResp = amplitudeAt(resp.ir, 100, 0.25) / dc
  const aPlain = amplitudeAt(plain.ir, 100, 0.25) / dc
  t.ok(aResp > 0.002 && aResp < 0.004, `0.25 Hz component ${(aResp * 100).toFixed(2)} % of DC (0.3 % set)`)
  t.ok(aPlain < 0.0005, `absent without respiration (${(aPlain * 100).toFixed(3)} %)`)
  const drift = realisticRecording(only({ drift: true }, { seconds: 60 }))
  const secMeans: number[] = []
  for (let k = 0; k < 60; k++) secMeans.push(mean(drift.ir, k * 100, (k + 1) * 100) / mean(plain.ir, k * 100, (k + 1) * 100) - 1)
  const span = Math.max(...secMeans) - Math.min(...secMeans)
  t.ok(span > 0.003 && span < 0.025, `1-s means wander by ${(span * 100).toFixed(2)} % of DC`)
})

t.test('motion bursts: 1-5 s, ~10 % of DC, at the venous red/IR ratio, not the arterial one', async (t) => {
  const r = realisticRecording(scenario('motion', { ...base, seconds: 120 }))
  const runs: number[] = []
  let len = 0
  for (let i = 0; i <= r.t.length; i++) {
    if (i < r.t.length && r.truth.motion[i]) len++
    else if (len) {
      runs.push(len / r.fs)
      len = 0
    }
  }
  t.ok(runs.length >= 4, `${runs.length} bursts in 2 min (6/min asked)`)
  t.ok(runs.every((s) => s >= 0.99 && s <= 5.01), `each 1-5 s: ${runs.map((s) => s.toFixed(1)).join(', ')}`)
  const calm = realisticRecording(only({}, { seconds: 120 }))
  // excursion over the motionless twin (same seed: same pulse and noise)
  let peak = 0
  const lr: number[] = []
  const li: number[] = []
  for (let i = 0; i < r.t.length; i++) {
    if (!r.truth.motion[i]) continue
    const di = Math.log(r.ir[i]! / calm.ir[i]!)
    const dr = Math.log(r.red[i]! / calm.red[i]!)
    if (Math.abs(di) > peak) peak = Math.abs(di)
    li.push(di)
    lr.push(dr)
  }
  t.ok(peak > 0.05 && peak < 0.25, `peak excursion ${(peak * 100).toFixed(1)} % of DC`)
  const slope = li.reduce((s, x, i) => s + x * lr[i]!, 0) / li.reduce((s, x) => s + x * x, 0)
  const vR = modelRatio(0.7)
  const expected = (vR - 0.5) / 0.5 // venous absorbance plus the common path-length term
  t.ok(Math.abs(slope - expected) < 0.1, `motion red/IR log ratio ${slope.toFixed(2)} ~ ${expected.toFixed(2)}`)
  t.ok(Math.abs(slope - modelRatio(0.97)) > 0.2, 'different from the arterial R, so motion biases SpO2')
})

t.test('ambient: flicker at twice the mains, mostly cancelled, the residual shown', async (t) => {
  const withAmb = realisticRecording(only({ ambient: { na: 2000, flicker: 0.5, mainsHz: 60, slowDepth: 0 } }))
  const without = realisticRecording(only({}))
  const d = new Float64Array(withAmb.t.length)
  for (let i = 0; i < d.length; i++) d[i] = withAmb.ir[i]! - without.ir[i]!
  const residualNa = (mean(d) / 262144) * 4096
  t.ok(residualNa > 8 && residualNa < 12, `mean residual ${residualNa.toFixed(1)} nA = 0.5 % of 2000 nA`)
  // 120 Hz sampled at 100 Hz aliases to 20 Hz
  const flick = (amplitudeAt(d, 100, 20) / 262144) * 4096
  t.ok(flick > 3 && flick < 7, `flicker residual ${flick.toFixed(1)} nA at the 20 Hz alias of 120 Hz`)
})

t.test('ADC: LED current scales DC and AC; clipping at full scale; fewer bits at short pulse widths', async (t) => {
  const a = realisticRecording(only({}, { adc: { led2Pa: 0x24 } }))
  const b = realisticRecording(only({}, { adc: { led2Pa: 0x48 } }))
  const ratio = mean(b.ir) / mean(a.ir)
  t.ok(Math.abs(ratio - 2) < 0.01, `twice the IR LED current, twice the DC (${ratio.toFixed(3)})`)
  t.ok(Math.abs(measuredPi(b, b.ir) / measuredPi(a, a.ir) - 1) < 0.05, 'and the AC in proportion: PI unchanged')
  t.equal(a.truth.clipped, 0, 'no clipping at 7.2 mA in 4096 nA')
  const hot = realisticRecording(only({}, { adc: { rangeNa: 2048, led1Pa: 0xff, led2Pa: 0xff } }))
  t.ok(hot.truth.clipped >= hot.t.length, `51 mA into 2048 nA clips (${hot.truth.clipped})`)
  t.equal(Math.max(...hot.ir), 262143, 'at full scale')
  const r8 = realisticRecording(only({}, { adc: { rangeNa: 8192 } }))
  t.ok(Math.abs(mean(r8.ir) / mean(a.ir) - 0.5) < 0.01, 'twice the range, half the counts')
  const short = realisticRecording(only({}, { adc: { pulseWidthUs: 69 } }))
  t.ok(short.ir.every((v) => v % 8 === 0), '69 us: 15 bits, steps of 8 counts')
  const steps = new Set(Array.from(short.ir.subarray(0, 500), (v) => v % 64))
  t.ok(steps.size > 2, 'quantised, not constant')
  t.ok(a.ir.some((v) => v % 2 === 1), '411 us: 18 bits, odd counts occur')
  t.ok(realisticRecording(only({}, { adc: { pulseWidthUs: 118 } })).ir.every((v) => v % 4 === 0), '118 us: 16 bits')
})

t.test('timestamps: jitter on t, always increasing; exact without it', async (t) => {
  const j = realisticRecording(only({ jitter: { sdMs: 2 } }))
  const d: number[] = []
  for (let i = 1; i < j.t.length; i++) d.push(j.t[i]! - j.t[i - 1]!)
  t.ok(d.every((x) => x > 0), 't strictly increasing')
  const sd = Math.sqrt(d.reduce((s, x) => s + (x - 0.01) * (x - 0.01), 0) / d.length)
  t.ok(sd > 0.002 && sd < 0.0036, `interval SD ${(sd * 1000).toFixed(2)} ms ~ 2.8 ms (2 ms per stamp)`)
  const e = realisticRecording(only({}))
  t.ok(e.t.every((x, i) => Math.abs(x - i / 100) < 1e-12), 'no jitter: t = i / fs')
})

t.test('finger-off and poor contact', async (t) => {
  const r = realisticRecording(scenario('finger-off', base))
  const onLevel = mean(r.ir, 0, 800)
  const offLevel = mean(r.ir, 1000, 2000)
  t.ok(offLevel < 0.02 * onLevel, `finger off: IR ${Math.round(offLevel)} vs ${Math.round(onLevel)} counts`)
  t.equal(mean(r.truth.fingerOn, 1000, 2000), 0, 'truth says off')
  const p = realisticRecording(scenario('poor-contact', base))
  const pi = measuredPi(p, p.ir) * 100
  t.ok(pi > 0.5 && pi < 0.65, `shunted light dilutes the PI: ${pi.toFixed(2)} % from 0.8 % (0.8 / 1.36 with 36 % of the IR DC shunted)`)
})

t.test('CSV: header t,red,ir, seconds and raw counts; bad options refused', async (t) => {
  const r = realisticRecording(scenario('clean', { ...base, seconds: 3 }))
  const csv = recordingCsv(r)
  const lines = csv.trim().split('\n')
  t.equal(lines[0], 't,red,ir')
  t.equal(lines.length, 301)
  const [tt, red, ir] = lines[5]!.split(',').map(Number)
  t.ok(Math.abs(tt! - r.t[4]!) < 1e-6 && red === r.red[4] && ir === r.ir[4])
  const dir = mkdtempSync(join(tmpdir(), 'ppgreal-'))
  writeRecordingCsv(join(dir, 'r.csv'), r)
  t.equal(readFileSync(join(dir, 'r.csv'), 'utf8'), csv)
  t.throws(() => realisticRecording({ ...base, seconds: 0, spo2: 97, pulseRate: 70 }), /seconds: expected > 0, got 0/)
  t.throws(() => realisticRecording({ ...base, fs: 5000, spo2: 97, pulseRate: 70 }), /fs: expected 1..3200 Hz, got 5000/)
  t.throws(() => realisticRecording({ ...base, spo2: 97, pulseRate: 70, adc: { rangeNa: 1000 as 2048 } }), /adc.rangeNa: expected one of 2048, 4096, 8192, 16384, got 1000/)
  t.throws(() => realisticRecording({ ...base, spo2: 97, pulseRate: 70, adc: { pulseWidthUs: 100 as 69 } }), /adc.pulseWidthUs: expected one of 69, 118, 215, 411, got 100/)
  t.throws(() => realisticRecording({ ...base, spo2: 97, pulseRate: 70, perfusion: 0 }), /perfusion: expected 0 < PI <= 20 %, got 0/)
})
