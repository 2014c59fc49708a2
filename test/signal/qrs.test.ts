import t from 'tap'
import { join } from 'node:path'
import { readRecord, readAnnotations, BEAT_CODES } from '../../datasets/wfdb.ts'
import { QrsDetector } from '../../signal/qrs.ts'
import { EcgMonitor } from '../../signal/ecg.ts'
import { scoreBeats, vfEpisodes } from '../../signal/score.ts'
import { mixNoise } from '../../hardware-sim/signals/noise.ts'
import { dataDir as sharedData } from './data.ts'

const mitdb = join(sharedData, 'ecg', 'mitdb')
const RECORDS = ['100', '101', '103', '105']

function refBeats(path: string): number[] {
  return readAnnotations(path).filter((a) => BEAT_CODES.has(a.code)).map((a) => a.sample)
}

function run(samples: ArrayLike<number>, fs: number): number[] {
  const out: number[] = []
  const d = new QrsDetector({ fs, onBeat: (r) => out.push(r) })
  for (let i = 0; i < samples.length; i++) d.push(samples[i])
  d.finish()
  return out
}

t.test('MIT-BIH 100, 101, 103, 105: Se and +P >= 98.5% per record and >= 99.5% gross (EC57, 150 ms, whole record)', async (t) => {
  let tp = 0, fn = 0, fp = 0
  for (const rec of RECORDS) {
    const path = join(mitdb, rec)
    const r = readRecord(path)
    const s = scoreBeats(refBeats(path), run(r.samples[0], r.fs), { tolerance: Math.round(0.15 * r.fs) })
    // 105 (the noisiest record) is at 98.65 % +P: noise bursts 0.36-0.5 s after a beat count as beats.
    t.ok(s.se >= 0.985, `${rec} Se ${(100 * s.se).toFixed(2)}% (TP ${s.tp} FN ${s.fn})`)
    t.ok(s.ppv >= 0.985, `${rec} +P ${(100 * s.ppv).toFixed(2)}% (TP ${s.tp} FP ${s.fp})`)
    tp += s.tp; fn += s.fn; fp += s.fp
  }
  t.ok(tp / (tp + fn) >= 0.995, `gross Se ${((100 * tp) / (tp + fn)).toFixed(2)}%`)
  t.ok(tp / (tp + fp) >= 0.995, `gross +P ${((100 * tp) / (tp + fp)).toFixed(2)}%`)
})

/** The 25 records of ../shared/data/ecg/mitdb: 100, 103, 105 and the DS1 half of the inter-patient split (de Chazal 2004). */
const DS1 = ['100', '101', '103', '105', '106', '108', '109', '112', '114', '115', '116', '118', '119', '122', '124', '201', '203', '205', '207', '208', '209', '215', '220', '223', '230']

t.test('DS1 (bigeminy, trigeminy, runs of PVCs, aberrated and paced beats): gross Se and +P >= 99.5% (EC57: 150 ms, VF episodes excluded), no record below 93 %', async (t) => {
  let tp = 0, fn = 0, fp = 0
  for (const rec of DS1) {
    const path = join(mitdb, rec)
    const r = readRecord(path)
    const ann = readAnnotations(path)
    const s = scoreBeats(ann.filter((a) => BEAT_CODES.has(a.code)).map((a) => a.sample), run(r.samples[0], r.fs), {
      tolerance: Math.round(0.15 * r.fs), exclude: vfEpisodes(ann, r.samples[0].length),
    })
    t.ok(s.se >= 0.93 && s.ppv >= 0.93, `${rec} Se ${(100 * s.se).toFixed(2)}% +P ${(100 * s.ppv).toFixed(2)}% (TP ${s.tp} FN ${s.fn} FP ${s.fp})`)
    tp += s.tp; fn += s.fn; fp += s.fp
  }
  t.ok(tp / (tp + fn) >= 0.995, `gross Se ${((100 * tp) / (tp + fn)).toFixed(2)}% (TP ${tp} FN ${fn})`)
  t.ok(tp / (tp + fp) >= 0.995, `gross +P ${((100 * tp) / (tp + fp)).toFixed(2)}% (FP ${fp})`)
})

t.test('works at the board rate: record 100 resampled to 250 Hz keeps Se and +P >= 99.5%', async (t) => {
  const path = join(mitdb, '100')
  const r = readRecord(path)
  const x = r.samples[0]
  const fs2 = 250
  const n2 = Math.floor((x.length - 1) * fs2 / r.fs)
  const y = new Int16Array(n2)
  for (let i = 0; i < n2; i++) {
    const pos = (i * r.fs) / fs2
    const k = Math.floor(pos)
    y[i] = Math.round(x[k] + (x[k + 1] - x[k]) * (pos - k))
  }
  const ref = refBeats(path).map((s) => Math.round((s * fs2) / r.fs)).filter((s) => s < n2)
  const s = scoreBeats(ref, run(y, fs2), { tolerance: Math.round(0.15 * fs2) })
  t.ok(s.se >= 0.995 && s.ppv >= 0.995, `Se ${(100 * s.se).toFixed(2)}% +P ${(100 * s.ppv).toFixed(2)}%`)
})

t.test('R peaks are refined to the raw signal: median |detection - reference| on record 100 is under 10 ms', async (t) => {
  const path = join(mitdb, '100')
  const r = readRecord(path)
  const det = run(r.samples[0], r.fs)
  const ref = refBeats(path)
  const errs: number[] = []
  let j = 0
  for (const a of ref) {
    while (j + 1 < det.length && Math.abs(det[j + 1] - a) < Math.abs(det[j] - a)) j++
    if (Math.abs(det[j] - a) <= 54) errs.push(Math.abs(det[j] - a))
  }
  errs.sort((a, b) => a - b)
  t.ok(errs[errs.length >> 1] <= 0.01 * r.fs, `median error ${errs[errs.length >> 1]} samples`)
})

t.test('NSTDB ma and bw noise at 6 dB (nst protocol) on record 103: detector still finds >= 98% of beats', async (t) => {
  const path = join(mitdb, '103')
  const r = readRecord(path)
  const ref = refBeats(path)
  for (const nz of ['ma', 'bw']) {
    const noise = readRecord(join(sharedData, 'ecg', 'nstdb', nz))
    const m = mixNoise(r.samples[0], noise.samples[0], { fs: r.fs, snrDb: 6, beats: ref, cleanGain: r.signals[0].gain, noiseGain: noise.signals[0].gain })
    // over the whole record (continuous protocol) the added noise power is S / 10^(6/10)
    const c = mixNoise(r.samples[0], noise.samples[0], { fs: r.fs, snrDb: 6, beats: ref, protocol: 'continuous' })
    const added = c.samples.reduce((acc, v, i) => acc + (v - r.samples[0][i]) ** 2, 0)
    const snr = 10 * Math.log10(c.signalPower / (added / c.samples.length / (200 * 200)))
    t.ok(Math.abs(snr - 6) < 0.2, `${nz}: measured SNR ${snr.toFixed(2)} dB`)
    const s = scoreBeats(ref, run(m.samples, r.fs), { tolerance: 54 })
    t.ok(s.se >= 0.98 && s.ppv >= 0.98, `${nz} 6 dB: Se ${(100 * s.se).toFixed(2)}% +P ${(100 * s.ppv).toFixed(2)}%`)
  }
})

t.test('constructor rejects a missing or absurd sample rate', async (t) => {
  t.throws(() => new QrsDetector({ fs: 0 }), /expected fs between 50 and 2000 Hz, got 0/)
  t.throws(() => new QrsDetector({ fs: NaN }), /expected fs/)
  t.throws(() => new QrsDetector(undefined as never), /expected fs/)
})

t.test('flat line and constant offset produce no beats; reset forgets everything', async (t) => {
  t.same(run(new Int16Array(360 * 20).fill(1024), 360), [])
  const d = new QrsDetector({ fs: 360 })
  const r = readRecord(join(mitdb, '100'))
  for (let i = 0; i < 360 * 10; i++) d.push(r.samples[0][i])
  t.ok(d.beats > 5)
  d.reset()
  t.equal(d.beats, 0)
  t.equal(d.n, 0)
  t.equal(d.lastR, -1)
})

t.test('EcgMonitor: heart rate, RR, quality; lead-off withholds the rate and restarts detection', async (t) => {
  const path = join(mitdb, '100')
  const r = readRecord(path)
  const x = r.samples[0]
  const beats: number[] = []
  const m = new EcgMonitor({ fs: r.fs, adcMax: 2047, onBeat: (i) => beats.push(i) })
  t.equal(m.heartRate(), undefined, 'no rate before any beat')
  const n1 = 60 * r.fs
  for (let i = 0; i < n1; i++) m.push(x[i], false)
  // reference: 74 beats in the first minute of 100 (100s.atr) → about 75 bpm
  const hr = m.heartRate()
  t.ok(hr !== undefined && hr > 60 && hr < 90, `heart rate ${hr}`)
  t.ok(m.quality() >= 50, `quality ${m.quality()}`)
  const rr = m.lastRrMs()
  t.ok(rr !== undefined && rr > 600 && rr < 1100, `last RR ${rr} ms`)
  // 5 s with the leads off: nothing is detected, no rate, flag bit 0
  const before = beats.length
  for (let i = n1; i < n1 + 5 * r.fs; i++) m.push(x[i], true)
  t.equal(beats.length - before <= 1, true, 'at most the held-back beat after lead-off')
  t.equal(m.heartRate(), undefined)
  t.equal(m.quality(), 0)
  t.equal(m.flags & 1, 1)
  // leads back on: relearns, beats come back with record-relative indices
  const back = n1 + 5 * r.fs
  for (let i = back; i < back + 30 * r.fs; i++) m.push(x[i], false)
  t.equal(m.flags & 1, 0)
  const after = beats.filter((b) => b > back)
  t.ok(after.length > 25, `${after.length} beats after re-attach`)
  const ref = refBeats(path).filter((b) => b > back + r.fs && b < back + 29 * r.fs)
  const s = scoreBeats(ref, after, { tolerance: 54, from: back + r.fs, to: back + 29 * r.fs })
  t.ok(s.se >= 0.99 && s.ppv >= 0.99, `after re-attach Se ${s.se} +P ${s.ppv} (indices are absolute)`)
  t.ok(m.heartRate() !== undefined)
})

t.test('EcgMonitor flags a saturated input and reports no rate', async (t) => {
  const m = new EcgMonitor({ fs: 250, adcMax: 4095 })
  for (let i = 0; i < 250 * 5; i++) m.push(4095, false)
  t.equal(m.flags & 8, 8)
  t.equal(m.heartRate(), undefined)
  t.equal(m.quality(), 0)
})

t.test('EcgMonitor: a NaN sample is a gap (lead-off), not poison', async (t) => {
  const r = readRecord(join(mitdb, '100'))
  const x = r.samples[0]
  const beats: number[] = []
  const m = new EcgMonitor({ fs: r.fs, onBeat: (i) => beats.push(i) })
  for (let i = 0; i < 30 * r.fs; i++) m.push(i === 10 * r.fs ? NaN : x[i], false)
  m.finish()
  const ref = refBeats(join(mitdb, '100')).filter((b) => b > 12 * r.fs && b < 29 * r.fs)
  const s = scoreBeats(ref, beats, { tolerance: 54, from: 12 * r.fs, to: 29 * r.fs })
  t.ok(s.se >= 0.99 && s.ppv >= 0.99, `after the NaN: Se ${s.se} +P ${s.ppv}`)
  t.ok(m.heartRate() !== undefined && Number.isFinite(m.heartRate()!))
})
