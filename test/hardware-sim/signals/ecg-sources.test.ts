import t from 'tap'
import { join } from 'node:path'
import { EcgSynth } from '../../../hardware-sim/signals/ecg-synth.ts'
import { MitdbReplay } from '../../../hardware-sim/signals/mitdb-replay.ts'
import { readRecord, readAnnotations, BEAT_CODES } from '../../../datasets/wfdb.ts'
import { existsSync } from 'node:fs'
import { sharedData, repoRoot } from '../../helpers/cli.ts'
import type { EcgSource } from '../../../hardware-sim/signals/types.ts'

// sharedData is ../shared/data from the checkout; a git worktree under /work/wt/NAME sits one level deeper.
const mitdb = [join(sharedData, 'ecg', 'mitdb'), join(repoRoot, '..', '..', 'shared', 'data', 'ecg', 'mitdb')].find((d) => existsSync(d)) ?? join(sharedData, 'ecg', 'mitdb')

/** R peaks: local maxima above half the expected amplitude, 250 ms refractory. Returns peak times in s. */
function rPeaks(src: EcgSource, seconds: number, hz: number, threshold: number): number[] {
  const n = Math.round(seconds * hz)
  const v = new Float64Array(n)
  for (let i = 0; i < n; i++) v[i] = src.mv((i * 1000) / hz)
  const peaks: number[] = []
  for (let i = 1; i < n - 1; i++) {
    if (v[i] > threshold && v[i] >= v[i - 1] && v[i] > v[i + 1]) {
      const tS = i / hz
      if (peaks.length === 0 || tS - peaks[peaks.length - 1] > 0.25) peaks.push(tS)
    }
  }
  return peaks
}

const rrStats = (peaks: number[]) => {
  const rr = peaks.slice(1).map((p, i) => p - peaks[i])
  const mean = rr.reduce((a, b) => a + b, 0) / rr.length
  const sd = Math.sqrt(rr.reduce((a, b) => a + (b - mean) ** 2, 0) / rr.length)
  return { mean, sd, cv: sd / mean }
}

t.test('ECGSYN: R-peak rate matches the configured heart rate; R height matches amplitude', async (t) => {
  for (const hr of [50, 72, 120]) {
    const src = new EcgSynth({ seed: 7, heartRateBpm: hr, hrvStdBpm: 2, amplitudeMv: 1.2 })
    const peaks = rPeaks(src, 120, 250, 0.6)
    const bpm = 60 / rrStats(peaks).mean
    t.ok(Math.abs(bpm - hr) < hr * 0.03, `${hr} bpm configured, ${bpm.toFixed(1)} measured from ${peaks.length} R peaks`)
    t.ok(Math.abs(peaks.length - hr * 2) <= 4, `peak count ${peaks.length} ≈ ${hr * 2} in 2 min`)
    let max = 0
    for (let ms = 10_000; ms < 20_000; ms += 1) max = Math.max(max, src.mv(120_000 + ms))
    t.ok(Math.abs(max - 1.2) < 0.15, `R height ${max.toFixed(3)} mV ≈ 1.2`)
  }
})

t.test('ECGSYN: HRV follows hrvStdBpm; AF is irregular; PVCs appear at the set rate', async (t) => {
  const calm = rrStats(rPeaks(new EcgSynth({ seed: 3, hrvStdBpm: 0.5 }), 180, 250, 0.5))
  const variable = rrStats(rPeaks(new EcgSynth({ seed: 3, hrvStdBpm: 5 }), 180, 250, 0.5))
  t.ok(variable.sd > 3 * calm.sd, `RR sd ${(variable.sd * 1000).toFixed(1)} ms vs ${(calm.sd * 1000).toFixed(1)} ms`)
  const expectedSd = (60 * 5) / (72 * 72)
  t.ok(variable.sd > expectedSd * 0.5 && variable.sd < expectedSd * 1.6, `RR sd near ECGSYN's 60·σ/HR² = ${(expectedSd * 1000).toFixed(0)} ms`)
  const af = rrStats(rPeaks(new EcgSynth({ seed: 3, af: true }), 180, 250, 0.5))
  t.ok(af.cv > 0.1, `AF RR coefficient of variation ${af.cv.toFixed(3)}`)
  const pvc = new EcgSynth({ seed: 4, pvcRate: 0.1 })
  pvc.mv(300_000)
  const v = pvc.beatKinds.filter((k) => k === 'V').length
  t.ok(v > pvc.beatKinds.length * 0.05 && v < pvc.beatKinds.length * 0.16, `${v} PVCs in ${pvc.beatKinds.length} beats`)
})

t.test('ECGSYN: deterministic by seed, independent of the sampling pattern', async (t) => {
  const a = new EcgSynth({ seed: 11 })
  const b = new EcgSynth({ seed: 11 })
  const c = new EcgSynth({ seed: 12 })
  const va: number[] = []
  const vb: number[] = []
  const vc: number[] = []
  for (let ms = 0; ms < 20_000; ms += 4) {
    va.push(a.mv(ms))
    vc.push(c.mv(ms))
  }
  for (let ms = 0; ms < 20_000; ms += 1) {
    const v = b.mv(ms)
    if (ms % 4 === 0) vb.push(v)
  }
  t.same(vb, va, 'same seed: same signal at 250 Hz and 1 kHz reads')
  t.notSame(vc, va)
  t.throws(() => a.mv(1000), /behind the latest sample/)
  t.throws(() => new EcgSynth({ heartRateBpm: 5 }), /heartRateBpm: expected 20..250/)
  t.throws(() => new EcgSynth({ leadOff: [[5, 1]] }), /leadOff/)
  const lo = new EcgSynth({ leadOff: [[1000, 2000]] })
  t.same([lo.leadOff(999), lo.leadOff(1000), lo.leadOff(1999), lo.leadOff(2000)], [false, true, true, false])
})

t.test('MIT-BIH 100: native-rate reads reproduce (adu - baseline) / gain exactly for the whole record', async (t) => {
  const rec = readRecord(join(mitdb, '100'))
  const src = new MitdbReplay({ record: rec, loop: false })
  const adu = rec.samples[0]
  const { baseline, gain } = rec.signals[0]
  let mismatches = 0
  let first = -1
  for (let i = 0; i < adu.length; i++) {
    const v = src.mv((i * 1000) / 360)
    if (v !== (adu[i] - baseline) / gain) {
      mismatches++
      if (first < 0) first = i
    }
  }
  t.equal(mismatches, 0, `all ${adu.length} samples exact (first mismatch at ${first})`)
  // channel 1 (V5) with a start offset, also exact
  const v5 = new MitdbReplay({ record: rec, channel: 1, startSec: 60 })
  let v5Mismatches = 0
  let v5First = -1
  for (let i = 0; i < 36000; i++) {
    if (v5.mv((i * 1000) / 360) !== (rec.samples[1][21600 + i] - rec.signals[1].baseline) / rec.signals[1].gain) {
      v5Mismatches++
      if (v5First < 0) v5First = i
    }
  }
  t.equal(v5Mismatches, 0, `channel 1 from 60 s exact for 100 s (first mismatch at ${v5First})`)
})

t.test('MIT-BIH: resampling to 250 Hz, looping or ending, R peaks line up with the annotations', async (t) => {
  const rec = readRecord(join(mitdb, '100'))
  const src = new MitdbReplay({ record: rec })
  const a = src.sampleMv(0)
  const b = src.sampleMv(1)
  t.ok(Math.abs(src.mv(1000 / 720) - (a + b) / 2) < 1e-12, 'halfway between samples: linear')
  const len = rec.samples[0].length
  const endMs = (len * 1000) / 360
  t.equal(src.mv(endMs), src.sampleMv(0), 'loops to the first sample')
  t.equal(src.leadOff(endMs + 5), false)
  const once = new MitdbReplay({ record: rec, loop: false })
  t.equal(once.mv(endMs + 10), 0)
  t.equal(once.leadOff(endMs + 10), true, 'after the end the leads read off')
  t.equal(once.leadOff(endMs - 10), false)
  // Beats in the first 60 s: peaks of the 250 Hz replay near annotated beats.
  const ann = readAnnotations(join(mitdb, '100')).filter((x) => BEAT_CODES.has(x.code) && x.sample < 360 * 60)
  const peaks = rPeaks(new MitdbReplay({ record: rec }), 60, 250, 0.5)
  let matched = 0
  for (const x of ann) if (peaks.some((p) => Math.abs(p - x.sample / 360) < 0.1)) matched++
  t.ok(matched >= ann.length - 2, `${matched} of ${ann.length} annotated beats have an R peak within 100 ms`)
  t.throws(() => new MitdbReplay({ record: rec, channel: 2 }), /channel: expected 0..1/)
  t.throws(() => new MitdbReplay({ record: join(mitdb, 'nope') }), /cannot read WFDB header/)
  t.throws(() => new MitdbReplay({ record: rec, startSec: 1e6 }), /startSec/)
  t.throws(() => src.mv(-1), /expected a finite time >= 0/)
})
