/**
 * Version-2 frames (MAX30003/MAX30102 FIFO bytes) downstream of the decoder:
 * gateway vitals at 128, 256 and 512 sps, gap records and fast-recovery
 * samples restarting the detectors instead of stitching signal across them,
 * and the FHIR export's scale, timing and split at gaps.
 */
import t from 'tap'
import { VitalsTracker } from '../../dashboard/vitals.ts'
import { buildFhirBundle, UCUM } from '../../dashboard/fhir.ts'
import { decodeFrame } from '../../protocol/node/decode.ts'
import { generateKey } from '../../protocol/node/keys.ts'
import { signFrame, signFrameV2, type DeviceSigningKey } from '../../protocol/node/sign.ts'
import { syntheticPayload } from '../../protocol/node/synthetic.ts'
import { FLAG_GAP, LANE_ECG, LANE_PPG, type FramePayload, type FramePayloadV2 } from '../../protocol/portable/frame.ts'
import { ETAG, fifoWord } from '../../hardware-sim/devices/max30003-map.ts'
import { V2Stream, wordBytes } from '../protocol/helpers/v2-synth.ts'

const key = generateKey('hmac') as Extract<DeviceSigningKey, { type: 'hmac' }>
const T0 = Date.UTC(2026, 11, 7, 9, 0, 0)
const decoded = (p: FramePayloadV2): FramePayload => decodeFrame(signFrameV2(key, p)).payload

t.test('heart rate from version-2 ECG at 128, 256 and 512 sps matches the synthetic rate', async (t) => {
  for (const ecgHz of [128, 256, 512] as const) {
    for (const [bpm, gain] of [[72, 80], [110, 20], [55, 160]] as const) {
      const s = new V2Stream({ deviceId: key.id, ecgHz, gain, hrBpm: bpm, t0: T0 })
      const v = new VitalsTracker()
      let last
      for (let seq = 0; seq < 14; seq++) last = v.add('p', decoded(s.next(seq)))
      t.equal(last!.hr?.source, 'gateway', `${ecgHz} sps ${bpm} /min gain ${gain}: computed on the gateway`)
      t.ok(last!.hr && Math.abs(last!.hr.value - bpm) < 1.5, `${ecgHz} sps ${bpm} /min gain ${gain}: HR ${last!.hr?.value} (quality ${last!.hr?.quality})`)
      t.ok(last!.pr && Math.abs(last!.pr.value - bpm) < 3, `pulse rate ${last!.pr?.value} from the MAX30102 bytes`)
    }
  }
})

t.test('a gap record restarts the ECG detector: no beat is measured across lost samples', async (t) => {
  const run = (gapAt: number | null, record: boolean) => {
    // ECG only: with a PPG lane beside it, a hidden loss would not even decode (the lanes disagree)
    const s = new V2Stream({ deviceId: key.id, ecgHz: 256, hrBpm: 72, t0: T0, ppgHz: record ? 100 : 0 })
    const v = new VitalsTracker()
    const out = []
    for (let seq = 0; seq < 18; seq++) {
      let p = s.next(seq, seq === 10 && gapAt !== null ? { ecgLost: 90, ecgLostAt: gapAt } : {})
      if (!record && p.gaps) {
        // a board that hid the loss: samples missing, no record, no flag
        const { gaps: _g, ...rest } = p
        p = { ...rest, flags: 0 }
      }
      out.push(v.add('p', decoded(p)).hr)
    }
    return out
  }
  const clean = run(null, true)
  t.ok(clean.slice(8).every((h) => h && Math.abs(h.value - 72) < 1.5), 'without a gap: HR in every frame once warm')
  const gap = run(100, true)
  t.ok(gap[9], 'HR before the gap')
  t.equal(gap[10], undefined, 'the frame with the gap: the detector started over at the gap, no rate')
  t.equal(gap[11], undefined, 'nor in the next frame: the detector is still relearning')
  t.ok(gap.slice(15).every((h) => h && Math.abs(h.value - 72) < 1.5), `back once relearned (2 s of learning, then four beats): ${gap.slice(11).map((h) => h?.value)}`)
  const hidden = run(100, false)
  t.ok(hidden[10], 'the same loss hidden by an ECG-only board is stitched over (which is why boards must record it)')
  const both = new V2Stream({ deviceId: key.id, ecgHz: 256, t0: T0 }).next(0, { ecgLost: 90 })
  const { gaps: _g, ...hiddenBoth } = both
  t.throws(() => decoded({ ...hiddenBoth, flags: 0 }), /ECG covers 0\.65 s but PPG covers 1\.00 s/, 'beside a PPG lane the decoder refuses a hidden loss')
  const atEnd = run(256 - 90, true)
  t.ok(atEnd[10], 'a gap after the last sample (at = n): this frame still has its rate...')
  t.equal(atEnd[11], undefined, '...and the next frame starts over')
})

t.test('a PPG gap restarts the pulse-rate monitor; fast-recovery ECG samples are no signal', async (t) => {
  const s = new V2Stream({ deviceId: key.id, ecgHz: 128, hrBpm: 72, t0: T0 })
  const v = new VitalsTracker()
  for (let seq = 0; seq < 12; seq++) v.add('p', decoded(s.next(seq)))
  const ppgGap = s.next(12)
  ppgGap.ppgRaw = ppgGap.ppgRaw!.subarray(0, 6 * 90)
  const withGap = v.add('p', decoded({ ...ppgGap, gaps: [{ lane: LANE_PPG, at: 50, lost: 10 }], flags: FLAG_GAP }))
  t.ok(withGap.hr, 'the ECG lane had no gap: HR continues')
  t.equal(withGap.pr, undefined, 'the PPG lane did: its pulse rate starts over')

  // Samples the MAX30003 took in fast-recovery mode (the input overloaded): the detector treats them like lead-off.
  const fast = s.next(13)
  const raw = new Uint8Array(fast.ecgRaw!)
  for (let o = 60 * 3; o < 70 * 3; o += 3) raw[o + 2] = (raw[o + 2]! & ~0x38) | (ETAG.FAST << 3)
  const f = decoded({ ...fast, ecgRaw: raw })
  t.equal(f.ecgFast!.length, 128)
  t.equal(v.add('p', f).hr, undefined, 'fast recovery: no rate until the detector relearns')
})

t.test('version-1 and version-2 boards side by side; a unit change restarts the monitor', async (t) => {
  const v = new VitalsTracker()
  const s = new V2Stream({ deviceId: key.id, ecgHz: 512, gain: 40, hrBpm: 90, t0: T0 })
  const other = generateKey('hmac') as Extract<DeviceSigningKey, { type: 'hmac' }>
  let a, b
  for (let seq = 0; seq < 12; seq++) {
    a = v.add('a', decoded(s.next(seq)))
    b = v.add('b', decodeFrame(signFrame(other, syntheticPayload(other.id, { seconds: 1, seq, seed: 7, t0: T0 + seq * 1000 }))).payload)
  }
  t.ok(Math.abs(a!.hr!.value - 90) < 1.5, `v2 board ${a!.hr!.value}`)
  t.ok(Math.abs(b!.hr!.value - 72) < 1, `v1 board ${b!.hr!.value}`)
  const regained = v.add('a', decoded(s.next(12, { over: { ecgGain: 80 } })))
  t.equal(regained.hr, undefined, 'the chip was reconfigured (gain): the detector starts over')
})

t.test('FHIR: version-2 ECG in the chip\'s own scale, split at gaps, fast-recovery samples as E', async (t) => {
  const s = new V2Stream({ deviceId: key.id, ecgHz: 128, gain: 40, t0: T0 })
  const p0 = decoded(s.next(0))
  const p1 = decoded(s.next(1, { ecgLost: 16, ecgLostAt: 40 }))
  const words = [fifoWord(1000, ETAG.VALID), fifoWord(-2000, ETAG.FAST), fifoWord(3, ETAG.FAST_EOF), fifoWord(4, ETAG.VALID)]
  const p2 = decoded({ ...s.next(2), ecgRaw: wordBytes(words), ppgRaw: undefined, ppgHz: undefined })
  const frames = [p0, p1, p2].map((payload, i) => ({ payload, frameHash: String(i).repeat(64) }))
  const b = buildFhirBundle(frames, { patientId: 'pt', fromMs: T0, toMs: T0 + 10_000 })
  const ecg = b.entry.map((e) => e.resource as Record<string, any>).filter((r) => r.valueSampledData)
  t.equal(ecg.length, 4, 'one Observation per contiguous run: 1 + 2 + 1')
  const factor = 1e3 / (131072 * 40)
  for (const o of ecg) {
    const sd = o.valueSampledData
    t.match(sd.origin, { value: 0, unit: 'mV', system: UCUM, code: 'mV' })
    t.equal(sd.period, 7.8125, '128 sps: 7.8125 ms')
    t.equal(sd.factor, factor, 'mV per count: ecgUvPerLsb / 1000, exact')
    t.equal(sd.lowerLimit, -25, 'full scale -VREF/gain')
    t.equal(sd.upperLimit, Number((131071 * factor).toFixed(6)))
  }
  const first = (ecg[0].valueSampledData.data as string).split(' ').map(Number)
  t.equal(first.length, 128)
  const peakMv = Math.max(...first) * factor
  t.ok(peakMv > 0.9 && peakMv < 1.5, `counts × factor give the 1.2 mV R peak: ${peakMv.toFixed(3)} mV`)
  const [a, c] = [ecg[1], ecg[2]]
  t.equal(a.valueSampledData.data.split(' ').length, 40, 'run before the gap')
  t.equal(c.valueSampledData.data.split(' ').length, 128 - 16 - 40, 'run after the gap')
  t.equal(a.effectivePeriod.start, new Date(p1.t0).toISOString())
  t.equal(c.effectivePeriod.start, new Date(Math.round(p1.t0 + ((40 + 16) * 1000) / 128)).toISOString(), 'the second run starts after the lost samples')
  t.not(a.id, c.id, 'distinct, deterministic ids')
  t.equal(ecg[3].valueSampledData.data, '1000 E E 4', 'fast-recovery samples are errors, not values')
  t.equal(a.identifier[0].value, `${'1'.repeat(64)}#ecg`)
  t.equal(c.identifier[0].value, `${'1'.repeat(64)}#ecg-2`)
  void LANE_ECG
})
