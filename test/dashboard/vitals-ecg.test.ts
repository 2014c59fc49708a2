/**
 * The ECG findings the gateway derives per frame (FrameVitals.ecg: rhythm call, PVC/min,
 * quality) from a synthetic ECG (ECGSYN with PVCs or AF-like RR) fed frame after frame:
 * PVCs counted, AF called, nothing claimed before the monitor has judged, lead-off and
 * every kind of gap forgetting the rhythm rather than carrying it across missing signal.
 */
import t from 'tap'
import { VitalsTracker, type FrameVitals } from '../../dashboard/vitals.ts'
import { syntheticPayload } from '../../protocol/node/synthetic.ts'
import { FLAG_LEAD_OFF, type FramePayload } from '../../protocol/portable/frame.ts'
import type { EcgSynthOptions } from '../../hardware-sim/signals/ecg-synth.ts'
import { synthEcg } from './helpers.ts'

const DEV = 'aaaaaaaaaaaaaaaaa'
const T0 = 1_000_000

/** One-second version-1 frames whose ECG lane is the synthetic patient's (the PPG lane stays syntheticPayload's). */
function synthFrames(o: EcgSynthOptions): (seq: number, over?: Partial<FramePayload>) => FramePayload {
  const ecgOf = synthEcg(o)
  return (seq, over = {}) => ({ ...syntheticPayload(DEV, { seconds: 1, seq, seed: 7, t0: T0 + seq * 1000 }), ecg: ecgOf(seq), ...over })
}

const feed = (v: VitalsTracker, frame: (seq: number) => FramePayload, from: number, to: number): FrameVitals[] => {
  const out: FrameVitals[] = []
  for (let s = from; s < to; s++) out.push(v.add('p', frame(s)))
  return out
}

t.test('PVCs are counted per minute; a regular rhythm with PVCs calls no rhythm', async (t) => {
  const v = new VitalsTracker()
  const out = feed(v, synthFrames({ seed: 4, pvcRate: 0.1 }), 0, 75)
  t.equal(out[0].ecg, undefined, 'nothing judged in the first second: no findings, not zeros')
  const last = out[74].ecg!
  // ECGSYN (seed 4) puts 6 PVCs in the last minute; its PVC is tall but hardly wider than its
  // normal beat; the classifier (trained on MIT-BIH) calls 5 of them V and none of the normal beats
  t.ok(last.pvcPerMin >= 4 && last.pvcPerMin <= 6, `PVC/min ${last.pvcPerMin} (ECGSYN replaced 6 beats of the last minute)`)
  t.equal(last.windowS, 60, 'a full minute counted')
  t.equal(last.rhythm, null, 'isolated PVCs in a regular rhythm: none of the analysed rhythms')
  t.ok(last.quality >= 50, `quality ${last.quality}`)
  t.equal(last.at, T0 + 75 * 1000, 'the findings hold for the end of the frame')
  t.ok(out.slice(10, 20).every((o) => o.ecg && o.ecg.windowS >= 10 && o.ecg.windowS <= 20), 'the window grows with the signal before it reaches a minute')

  const tr = v.range('p', 0, Infinity)
  const withEcg = out.filter((o) => o.ecg)
  t.equal(tr.pvcPerMin.length, withEcg.length, 'one PVC/min trend point per frame with findings')
  t.equal(tr.rhythm.length, withEcg.length, 'and one rhythm point')
  t.same(tr.pvcPerMin.at(-1), { t: T0 + 74 * 1000, value: last.pvcPerMin, quality: last.quality })
  t.same(tr.rhythm.at(-1), { t: T0 + 74 * 1000, rhythm: null, quality: last.quality })
  t.equal(tr.hr.length, out.filter((o) => o.hr).length, 'the HR series is unchanged')

  const clean = feed(new VitalsTracker(), synthFrames({ seed: 5 }), 0, 60)
  t.ok(clean.slice(10).every((o) => o.ecg && o.ecg.pvcPerMin === 0 && o.ecg.rhythm === null), 'no PVCs, no rhythm call in a clean sinus-like ECG')
})

t.test('AF-like input is called AF once enough beats are in', async (t) => {
  const out = feed(new VitalsTracker(), synthFrames({ seed: 3, af: true }), 0, 60)
  const first = out.findIndex((o) => o.ecg?.rhythm === 'AF')
  t.ok(first > 10 && first <= 40, `AF called after ${first} s (24 RR intervals at least)`)
  t.ok(out.slice(first).every((o) => o.ecg?.rhythm === 'AF'), 'and held while it lasts')
  t.ok(out.slice(0, first).every((o) => !o.ecg || o.ecg.rhythm === null), 'no other call before')
})

t.test('a gap forgets the rhythm: no label carried across missing signal', async (t) => {
  const gapKinds: [string, (seq: number) => Partial<FramePayload>][] = [
    ['sequence jump', (seq) => ({ seq: seq + 10 })],
    ['reboot', () => ({ boot: 2 })],
  ]
  for (const [kind, over] of gapKinds) {
    const v = new VitalsTracker()
    const frame = synthFrames({ seed: 3, af: true })
    const before = feed(v, frame, 0, 45)
    t.equal(before.at(-1)!.ecg?.rhythm, 'AF', `${kind}: AF before the gap`)
    // Frames after the gap: the same patient, the frame numbering (or boot) says signal is missing.
    const after: FrameVitals[] = []
    for (let s = 45; s < 75; s++) after.push(v.add('p', { ...frame(s), ...over(s) }))
    t.equal(after[0].ecg, undefined, `${kind}: the first frame after the gap has no findings (the monitor started over)`)
    const firstAf = after.findIndex((o) => o.ecg?.rhythm === 'AF')
    t.ok(firstAf > 10, `${kind}: AF only called again once judged anew (${firstAf} s after the gap)`)
    const judged = after.find((o) => o.ecg)!
    t.ok(judged.ecg!.windowS < 10 && judged.ecg!.pvcPerMin === 0, `${kind}: the PVC window restarts (${judged.ecg!.windowS} s)`)
  }

  const v = new VitalsTracker()
  const frame = synthFrames({ seed: 3, af: true })
  feed(v, frame, 0, 45)
  t.equal(v.add('p', frame(45, { flags: FLAG_LEAD_OFF })).ecg, undefined, 'a lead-off frame: no findings')
  const back = feed(v, frame, 46, 50)
  t.ok(back.every((o) => o.ecg?.rhythm !== 'AF'), 'leads back on: the rhythm is judged anew, not remembered')
})

t.test('findings come from the gateway even when the board sends its own HR', async (t) => {
  const v = new VitalsTracker()
  const frame = synthFrames({ seed: 4, pvcRate: 0.1 })
  const out = feed(v, (s) => frame(s, { hr: { value: 71, quality: 90 } }), 0, 30)
  t.equal(out[29].hr!.source, 'device')
  t.ok(out[29].ecg && out[29].ecg.quality > 0, 'ECG findings still computed from the raw samples')
})
