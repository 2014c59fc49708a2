import t from 'tap'
import { join } from 'node:path'
import { PpgModel, modelRatio, renderPpg, type PpgModelOptions } from '../../hardware-sim/signals/ppg.ts'
import { PpgMonitor, DEFAULT_CALIBRATION, type PpgReading, type PpgOptions } from '../../signal/ppg.ts'
import { readBidmcSignals, readBidmcNumerics } from '../../datasets/bidmc.ts'
import { dataDir } from './data.ts'

const FS = 100

function simulate(model: PpgModelOptions, seconds: number, mon: Partial<PpgOptions> = {}): { readings: PpgReading[]; model: PpgModel } {
  const m = new PpgModel(model)
  const s = renderPpg(m, { fs: FS, seconds, noiseSeed: model.seed })
  const readings: PpgReading[] = []
  const p = new PpgMonitor({ fs: FS, ...mon, onReading: (r) => readings.push(r) })
  for (let i = 0; i < s.ir.length; i++) p.push(s.red[i], s.ir[i])
  return { readings, model: m }
}

/** The true rate over the same 8 s the reading covers. */
const trueRate = (m: PpgModel, r: PpgReading): number => m.trueRate(((r.at - 8 * FS) * 1000) / FS, (r.at * 1000) / FS)!

function sweep(motion: PpgModelOptions['motion']): { arms: number; spo2N: number; total: number; pulseMaxErr: number; pulseN: number } {
  let se = 0, spo2N = 0, total = 0, pulseMaxErr = 0, pulseN = 0
  for (const spo2 of [70, 75, 80, 85, 90, 95, 100]) {
    for (const bpm of [40, 60, 90, 120, 150, 180]) {
      const { readings, model } = simulate({ seed: spo2 * 1000 + bpm, spo2, bpm, motion }, 45)
      for (const r of readings) {
        if (r.at < 15 * FS) continue // 2 s filter settling + 8 s window + margin
        total++
        if (r.spo2 !== undefined) {
          se += (r.spo2 - spo2) ** 2
          spo2N++
        }
        if (r.pulseRate !== undefined) {
          pulseN++
          pulseMaxErr = Math.max(pulseMaxErr, Math.abs(r.pulseRate - trueRate(model, r)))
        }
      }
    }
  }
  return { arms: Math.sqrt(se / spo2N), spo2N, total, pulseMaxErr, pulseN }
}

t.test('model physics: R from Beer–Lambert extinction coefficients; default calibration inverts it within 0.1 %', async (t) => {
  t.ok(modelRatio(1) < modelRatio(0.9) && modelRatio(0.9) < modelRatio(0.7), 'R rises as saturation falls')
  t.ok(Math.abs(modelRatio(0.97) - 0.5) < 0.02, `R(97 %) = ${modelRatio(0.97).toFixed(3)}`)
  for (let s = 70; s <= 100; s += 2.5) {
    const R = modelRatio(s / 100)
    const back = DEFAULT_CALIBRATION.a + DEFAULT_CALIBRATION.b * R + DEFAULT_CALIBRATION.c * R * R
    t.ok(Math.abs(back - s) < 0.1, `${s} % → R ${R.toFixed(3)} → ${back.toFixed(2)} %`)
  }
})

t.test('model is deterministic given its seed, and checks time order', async (t) => {
  const a = renderPpg(new PpgModel({ seed: 7, spo2: 95, bpm: 70 }), { fs: FS, seconds: 5 })
  const b = renderPpg(new PpgModel({ seed: 7, spo2: 95, bpm: 70 }), { fs: FS, seconds: 5 })
  const c = renderPpg(new PpgModel({ seed: 8, spo2: 95, bpm: 70 }), { fs: FS, seconds: 5 })
  t.same(a.ir, b.ir)
  t.notSame(a.ir, c.ir)
  const m = new PpgModel({ seed: 1, spo2: 95, bpm: 70 })
  m.light(100)
  t.throws(() => m.light(50), /expected non-decreasing time, got 50 after 100/)
  t.throws(() => new PpgModel(undefined as never), /expected options with a numeric seed/)
  // perfusion index as configured: IR peak-to-peak / DC about 2 %
  let lo = Infinity, hi = -Infinity, sum = 0
  const x = renderPpg(new PpgModel({ seed: 3, spo2: 98, bpm: 60, respDepth: 0, hrv: 0, rsa: 0 }), { fs: FS, seconds: 4, noiseCounts: 0 }).ir
  for (const v of x) { lo = Math.min(lo, v); hi = Math.max(hi, v); sum += v }
  const pi = (hi - lo) / (sum / x.length)
  t.ok(pi > 0.017 && pi < 0.023, `PI ${(100 * pi).toFixed(2)} %`)
})

t.test('clean signals, SpO2 70–100 %, pulse 40–180 bpm: Arms <= 2 % and pulse within 3 bpm', async (t) => {
  const r = sweep(undefined)
  t.ok(r.arms <= 2, `Arms ${r.arms.toFixed(2)} % over ${r.spo2N} readings`)
  t.ok(r.spo2N / r.total >= 0.85, `SpO2 reported in ${((100 * r.spo2N) / r.total).toFixed(0)} % of windows`)
  t.ok(r.pulseMaxErr <= 3, `pulse max |error| ${r.pulseMaxErr.toFixed(2)} bpm over ${r.pulseN} readings`)
  t.ok(r.pulseN / r.total >= 0.9, `pulse reported in ${((100 * r.pulseN) / r.total).toFixed(0)} % of windows`)
})

t.test('motion artefacts (simulator model): numbers that are reported stay within Arms 2 % and 5 bpm', async (t) => {
  // bursts of strong motion (as large as the pulse) 10 s in every 30 s; the venous blood the
  // motion moves at 50 % (this older model moves it at the arterial saturation below 70 %,
  // where no red/IR measure can tell the two apart: the realistic model ties it to arterial)
  const bursts: Array<[number, number]> = []
  for (let s = 10; s < 45; s += 30) bursts.push([s * 1000, (s + 10) * 1000])
  const r = sweep({ amplitude: 0.02, intervals: bursts, venousSpo2: 0.5 })
  t.ok(r.arms <= 2, `bursts: Arms ${r.arms.toFixed(2)} % over ${r.spo2N} readings (${((100 * r.spo2N) / r.total).toFixed(0)} % of windows)`)
  t.ok(r.spo2N > 0, 'some windows are clean enough')
  // worst single reading; oximeters state pulse-rate accuracy under motion looser than at rest
  t.ok(r.pulseMaxErr <= 5, `bursts: pulse max |error| ${r.pulseMaxErr.toFixed(2)} bpm over ${r.pulseN} readings`)
  // continuous motion as large as the pulse: no SpO2 at all, and the field is absent, not a sentinel
  const { readings } = simulate({ seed: 5, spo2: 90, bpm: 75, motion: { amplitude: 0.02, venousSpo2: 0.5 } }, 60)
  const late = readings.filter((x) => x.at > 15 * FS)
  t.equal(late.length, 45, 'a reading every second from 15 s to 60 s')
  const shown = late.filter((x) => x.spo2 !== undefined)
  t.ok(shown.length <= 4 && shown.every((x) => Math.abs(x.spo2! - 90) <= 3), `continuous heavy motion: ${shown.length} of 45 seconds with a number, each within 3 points`)
  t.ok(late.filter((x) => !('spo2' in x)).every((x) => x.quality < 50), 'a withheld number is a quality under 50, the field omitted')
})

t.test('finger off and poor perfusion give no numbers', async (t) => {
  // minDc is per sensor and LED current: here 5 % of the 18-bit range
  const readings: PpgReading[] = []
  const fm = new PpgModel({ seed: 9, spo2: 96, bpm: 70, fingerOff: [[20000, 40000]] })
  const sig = renderPpg(fm, { fs: FS, seconds: 60 })
  let k = 0
  const mon = new PpgMonitor({ fs: FS, minDc: 13000, onReading: (r) => readings.push({ ...r, at: k + 1 }) })
  for (k = 0; k < sig.ir.length; k++) mon.push(sig.red[k], sig.ir[k])
  t.equal(mon.restarts, 2, 'restarted when the finger left and when it came back')
  const during = readings.filter((r) => r.at > 21 * FS && r.at <= 40 * FS)
  t.ok(during.length > 10)
  for (const r of during) {
    t.equal(r.spo2, undefined)
    t.equal(r.pulseRate, undefined)
  }
  t.ok(during.every((r) => !r.fingerOn || r.quality < 50), 'finger-off windows flagged')
  const before = readings.filter((r) => r.at > 15 * FS && r.at <= 20 * FS)
  t.ok(before.some((r) => r.spo2 !== undefined), 'numbers before the finger left')
  const after = readings.filter((r) => r.at > 52 * FS)
  t.ok(after.some((r) => r.spo2 !== undefined && Math.abs(r.spo2 - 96) < 2), 'numbers come back once the finger returns')
  const low = simulate({ seed: 2, spo2: 96, bpm: 70, perfusionIndex: 0.0002 }, 30).readings.filter((r) => r.at > 15 * FS)
  t.equal(low.length, 15, 'still a reading every second from 15 s to 30 s')
  t.ok(low.every((r) => r.spo2 === undefined && r.pulseRate === undefined), 'PI 0.02 %: below the 0.1 % floor, nothing reported')
})

t.test('calibration is configurable and validated', async (t) => {
  const base = simulate({ seed: 4, spo2: 90, bpm: 70 }, 30).readings.filter((r) => r.spo2 !== undefined)
  const shifted = simulate({ seed: 4, spo2: 90, bpm: 70 }, 30, { calibration: { a: DEFAULT_CALIBRATION.a - 3, b: DEFAULT_CALIBRATION.b, c: DEFAULT_CALIBRATION.c } }).readings.filter((r) => r.spo2 !== undefined)
  t.ok(base.length > 5 && shifted.length === base.length)
  t.ok(Math.abs(base[5].spo2! - shifted[5].spo2! - 3) < 0.11, 'a shifts the curve')
  t.equal(base[5].ratio, shifted[5].ratio, 'R does not depend on the curve')
  t.throws(() => new PpgMonitor({ fs: 100, calibration: { a: 1, b: NaN, c: 0 } }), /expected calibration/)
  t.throws(() => new PpgMonitor({ fs: 10 }), /expected fs between 25 and 3200 Hz, got 10/)
  t.throws(() => new PpgMonitor({ fs: 100, minSeconds: 1 }), /expected minSeconds between 2 and 8, got 1/)
  t.throws(() => new PpgMonitor({ fs: 100, windowSeconds: 2 }), /expected windowSeconds between 4 and 30, got 2/)
})

t.test('BIDMC 01–05: pulse rate from PLETH against the monitor PULSE numerics', async (t) => {
  const dir = join(dataDir, 'ppg', 'bidmc', 'bidmc_csv')
  let sum = 0, count = 0, all = 0
  for (let rec = 1; rec <= 5; rec++) {
    const pleth = readBidmcSignals(dir, rec).columns['PLETH']
    const pulse = readBidmcNumerics(dir, rec).columns['PULSE']
    let e = 0, n = 0, windows = 0
    const mon = new PpgMonitor({
      fs: 125,
      // PLETH is normalised (about 0..1), not ADC counts: no finger-off level, no clipping
      minDc: 1,
      fullScale: Infinity,
      onReading: (r) => {
        const ref = pulse[Math.floor(r.at / 125) - 1]
        // the first 10 s fill the window; seconds without a reference rate are not scored
        if (r.at < 10 * 125 || !Number.isFinite(ref)) return
        windows++
        if (r.pulseRate === undefined) return
        e += Math.abs(r.pulseRate - ref)
        n++
      },
    })
    // PLETH is normalised and drawn volume-up; light at the photodiode is the opposite: an offset minus PLETH
    for (let i = 0; i < pleth.length; i++) mon.push(10 - pleth[i], 10 - pleth[i])
    t.ok(e / n <= 3, `bidmc ${rec}: MAE ${(e / n).toFixed(2)} bpm over ${n} of ${windows} windows`)
    t.ok(n / windows >= 0.8, `bidmc ${rec}: pulse reported in ${((100 * n) / windows).toFixed(0)} % of windows`)
    sum += e
    count += n
    all += windows
  }
  t.ok(sum / count <= 2, `BIDMC 01–05 MAE ${(sum / count).toFixed(2)} bpm (issue 17: <= 2)`)
  t.ok(count / all >= 0.9, `BIDMC 01–05: a pulse rate in ${((100 * count) / all).toFixed(1)} % of windows (issue 17: >= 90 %)`)
})

t.test('PpgMonitor: bad counts (NaN, negative) restart it instead of poisoning it', async (t) => {
  const m = new PpgModel({ seed: 11, spo2: 93, bpm: 80 })
  const sig = renderPpg(m, { fs: FS, seconds: 40 })
  const readings: PpgReading[] = []
  let k = 0
  const mon = new PpgMonitor({ fs: FS, onReading: (r) => readings.push({ ...r, at: k + 1 }) })
  for (k = 0; k < sig.ir.length; k++) mon.push(k === 5 * FS ? NaN : sig.red[k], k === 6 * FS ? -1 : sig.ir[k])
  t.equal(mon.restarts, 2)
  const late = readings.filter((r) => r.at > 25 * FS && r.spo2 !== undefined)
  t.ok(late.length > 5 && late.every((r) => Math.abs(r.spo2! - 93) < 2), 'numbers return and are right')
})
