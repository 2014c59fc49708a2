/**
 * The ECG chain on what a MAX30003 delivers (issue 24): 128, 256 and 512 sps,
 * signed 18-bit counts or microvolts, values far beyond 16 bits (a large
 * electrode offset at high gain), as well as MIT-BIH's 360 Hz. Nothing in
 * signal/qrs.ts or signal/ecg.ts may assume a rate or an amplitude.
 */
import t from 'tap'
import { join } from 'node:path'
import { readRecord, readAnnotations, BEAT_CODES } from '../../datasets/wfdb.ts'
import { QrsDetector } from '../../signal/qrs.ts'
import { EcgMonitor } from '../../signal/ecg.ts'
import { scoreBeats } from '../../signal/score.ts'
import { EcgSynth } from '../../hardware-sim/signals/ecg-synth.ts'
import { countsFromMv } from '../../hardware-sim/devices/max30003-map.ts'
import { dataDir } from './data.ts'

const RATES = [128, 256, 512]

function detect(x: ArrayLike<number>, fs: number): number[] {
  const beats: number[] = []
  const d = new QrsDetector({ fs, onBeat: (i) => beats.push(i) })
  for (let i = 0; i < x.length; i++) d.push(x[i])
  d.finish()
  return beats
}

t.test('MIT-BIH 100 and 105 as MAX30003 counts (gain 80, +4 mV offset) at 128/256/512 sps score as the record does at 360 Hz', async (t) => {
  for (const rec of ['100', '105']) {
    const path = join(dataDir, 'ecg', 'mitdb', rec)
    const r = readRecord(path)
    const x = r.samples[0]
    const { gain, baseline } = r.signals[0]
    const ref = readAnnotations(path).filter((a) => BEAT_CODES.has(a.code)).map((a) => a.sample)
    const native = scoreBeats(ref, detect(x, r.fs), { tolerance: Math.round(0.15 * r.fs) })
    for (const fs of RATES) {
      const n = Math.floor(((x.length - 1) * fs) / r.fs)
      const c = new Int32Array(n)
      for (let i = 0; i < n; i++) {
        const pos = (i * r.fs) / fs
        const k = Math.floor(pos)
        const mv = (x[k] + (x[k + 1] - x[k]) * (pos - k) - baseline) / gain
        c[i] = countsFromMv(mv + 4, 80) // about 42,000 counts of offset: outside 16 bits
      }
      const peak = c.reduce((a, b) => (b > a ? b : a), 0)
      t.ok(peak > 32767, `${rec} at ${fs} sps: samples reach ${peak} counts`)
      const s = scoreBeats(ref.map((a) => Math.round((a * fs) / r.fs)).filter((a) => a < n), detect(c, fs), { tolerance: Math.round(0.15 * fs) })
      // 128 sps is coarser for the noisy 105 (and the resampling here has no anti-alias filter): allow 0.5 points
      t.ok(s.se >= native.se - 0.005 && s.ppv >= native.ppv - 0.005 && s.se >= 0.99 && s.ppv >= 0.985,
        `${rec} at ${fs} sps: Se ${(100 * s.se).toFixed(2)}% +P ${(100 * s.ppv).toFixed(2)}% (360 Hz: ${(100 * native.se).toFixed(2)}%, ${(100 * native.ppv).toFixed(2)}%)`)
    }
  }
})

t.test('EcgMonitor heart rate from synthetic ECG in microvolts at every MAX30003 rate, rates 50 to 180 /min', async (t) => {
  for (const fs of RATES) {
    for (const bpm of [50, 72, 120, 180]) {
      const synth = new EcgSynth({ seed: 11, heartRateBpm: bpm, hrvStdBpm: 1, amplitudeMv: 0.8, baselineWanderMv: 0.2 })
      const m = new EcgMonitor({ fs, adcMin: -50000, adcMax: 50000 })
      for (let i = 0; i < fs * 15; i++) m.push(Math.round(synth.mv((i * 1000) / fs) * 1000), false)
      const hr = m.heartRate()
      t.ok(hr !== undefined && Math.abs(hr - bpm) < 0.02 * bpm + 0.5, `${fs} sps, ${bpm} /min: HR ${hr}, quality ${m.quality()}`)
    }
  }
})

t.test('a signed front end: negative samples are signal, only the ends of the range saturate', async (t) => {
  const fs = 256
  const synth = new EcgSynth({ seed: 2, heartRateBpm: 66, hrvStdBpm: 1, amplitudeMv: 1 })
  // -3 mV offset at gain 80: every sample is negative
  const signed = new EcgMonitor({ fs, adcMin: -131072, adcMax: 131071 })
  const unsigned = new EcgMonitor({ fs, adcMax: 131071 })
  for (let i = 0; i < fs * 12; i++) {
    const c = countsFromMv(synth.mv((i * 1000) / fs) - 3, 80)
    signed.push(c, false)
    unsigned.push(c, false)
  }
  t.ok(Math.abs(signed.heartRate()! - 66) < 1.5, `HR ${signed.heartRate()}`)
  t.equal(signed.flags & 8, 0, 'not saturated')
  t.equal(unsigned.flags & 8, 8, 'read as an unsigned ADC the same samples look stuck at 0')
  const pinned = new EcgMonitor({ fs, adcMin: -131072, adcMax: 131071 })
  for (let i = 0; i < fs; i++) pinned.push(-131072, false)
  t.equal(pinned.flags & 8, 8, 'pinned at negative full scale: saturated')
  t.throws(() => new EcgMonitor({ fs, adcMin: 10, adcMax: 10 }), /expected adcMin < adcMax, got 10, 10/)
})

t.test('fractional samples do not drift the integer low-pass', async (t) => {
  const fs = 128
  const synth = new EcgSynth({ seed: 4, heartRateBpm: 80, hrvStdBpm: 1, amplitudeMv: 1 })
  const exact = new QrsDetector({ fs })
  const frac = new QrsDetector({ fs })
  const a: number[] = []
  const b: number[] = []
  const e2 = new QrsDetector({ fs, onBeat: (r) => a.push(r) })
  const f2 = new QrsDetector({ fs, onBeat: (r) => b.push(r) })
  for (let i = 0; i < fs * 30; i++) {
    const uv = synth.mv((i * 1000) / fs) * 1000 + 0.37
    exact.push(Math.trunc(uv))
    frac.push(uv)
    e2.push(Math.trunc(uv))
    f2.push(uv)
  }
  t.same(b, a, 'a fractional sample counts as what the ring keeps (truncated), beat for beat')
  t.ok(a.length >= 38, `${a.length} beats in 30 s at 80 /min`)
})
