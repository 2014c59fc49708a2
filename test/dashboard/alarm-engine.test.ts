import t from 'tap'
import { AlarmEngine, AlarmError, stateOf, type AlarmChange, type FrameInput } from '../../dashboard/alarm-engine.ts'
import { CONDITIONS, PHYSIOLOGICAL, TECHNICAL } from '../../dashboard/alarm-conditions.ts'
import { FLAG_FINGER_OFF, FLAG_LEAD_OFF, FLAG_TIME_UNSYNCED } from '../../protocol/portable/frame.ts'
import type { EcgFindings, FrameVitals } from '../../dashboard/vitals.ts'
import type { RhythmLabel } from '../../signal/rhythm.ts'

const T0 = 1_700_000_000_000
const dev = 'dev-1'
const pat = 'pat-1'
const v = (value: number, quality = 90) => ({ value, quality, source: 'device' as const })
const ecg = (rhythm: RhythmLabel | null): EcgFindings => ({ rhythm, pvcPerMin: 0, windowS: 60, quality: 90, at: 0 })
const frame = (vitals: FrameVitals, flags = 0, batteryMv = 3900): FrameInput => ({ deviceId: dev, patientId: pat, vitals, flags, batteryMv })
const normal: FrameVitals = { hr: v(72), spo2: v(97), ecg: ecg(null) }

/** Feeds one frame a second from second `from` to `to` (exclusive); returns every change, with the second it came at. */
function run(e: AlarmEngine, from: number, to: number, f: (s: number) => FrameInput): (AlarmChange & { s: number })[] {
  const out: (AlarmChange & { s: number })[] = []
  for (let s = from; s < to; s++) for (const c of e.frame(T0 + s * 1000, f(s))) out.push({ ...c, s })
  return out
}
const summary = (cs: (AlarmChange & { s: number })[]) => cs.map((c) => `${c.s}:${c.event.e}:${c.alarm.condition}${c.event.priority ? ':' + c.event.priority : ''}`)

t.test('the condition table covers every condition of the issue with a priority, a delay and latching for high physiological only', async (t) => {
  t.equal(PHYSIOLOGICAL.length + TECHNICAL.length, 17)
  for (const [c, s] of Object.entries(CONDITIONS)) {
    t.equal(s.latching, s.kind === 'physiological' && s.priority === 'high', `${c}: latching`)
    if (s.kind === 'technical') t.not(s.priority, 'high', `${c}: technical alarms are low or medium (INOP)`)
  }
  for (const c of ['asystole', 'vf', 'vt'] as const) t.equal(CONDITIONS[c].priority, 'high', `${c} is high priority (IEC 60601-2-27)`)
})

t.test('spo2-low: 10 s delay, hysteresis, escalation to high below the critical limit, then latching', async (t) => {
  const e = new AlarmEngine()
  t.same(run(e, 0, 5, () => frame(normal)), [], 'normal vitals: nothing')
  // 9 s below the limit, then back up: shorter than the delay, no alarm
  t.same(run(e, 5, 14, () => frame({ ...normal, spo2: v(88) })), [])
  t.same(run(e, 14, 15, () => frame(normal)), [])
  // below the limit for 10 s: starts at the 11th frame (t - since >= 10 s), medium
  const on = run(e, 15, 30, () => frame({ ...normal, spo2: v(88) }))
  t.same(summary(on), ['25:start:spo2-low:medium'])
  const id = on[0].alarm.id
  // 91 % is above the limit but inside the 2 % hysteresis: stays on
  t.same(run(e, 30, 35, () => frame({ ...normal, spo2: v(91) })), [], 'hysteresis holds it')
  // a bad-quality reading is not trusted: nothing changes
  t.same(run(e, 35, 36, () => frame({ ...normal, spo2: v(99, 10) })), [], 'low quality neither ends nor starts')
  // below the critical limit: escalates to high at once
  t.same(summary(run(e, 36, 38, () => frame({ ...normal, spo2: v(82) }))), ['36:escalate:spo2-low:high'])
  t.equal(e.get(id)!.priority, 'high')
  // recovers: the condition ends, but a high physiological alarm latches until acknowledged
  const end = run(e, 38, 39, () => frame({ ...normal, spo2: v(96) }))
  t.same(summary(end), ['38:end:spo2-low'])
  t.equal(end[0].event.latched, true)
  t.equal(stateOf(e.get(id)!, T0 + 39_000), 'active', 'latched: still active after the condition ended')
  t.equal(e.list(T0 + 39_000).length, 1)
  const ack = e.acknowledge(T0 + 40_000, id, 'alice')
  t.same([ack.event.e, ack.event.by], ['ack', 'alice'])
  t.equal(stateOf(e.get(id)!, T0 + 40_000), 'resolved', 'acknowledged after the end: resolved')
  t.equal(e.list(T0 + 40_000).length, 0)
  t.equal(e.list(T0 + 40_000, { all: true }).length, 1)
  t.throws(() => e.acknowledge(T0 + 41_000, id, 'bob'), AlarmError, 'a resolved alarm cannot be acknowledged again')
})

t.test('medium alarms do not latch; ack and silence states', async (t) => {
  const e = new AlarmEngine()
  const on = run(e, 0, 11, () => frame({ ...normal, hr: v(140) }))
  t.same(summary(on), ['10:start:hr-high:medium'])
  const id = on[0].alarm.id
  const sil = e.silence(T0 + 11_000, id, 'alice', 60)
  t.same([sil.event.e, sil.event.seconds, sil.event.by], ['silence', 60, 'alice'])
  t.equal(stateOf(e.get(id)!, T0 + 30_000), 'silenced')
  t.equal(stateOf(e.get(id)!, T0 + 71_000), 'active', 'the silence runs out')
  t.throws(() => e.silence(T0, id, 'a', 0), /seconds/)
  t.throws(() => e.silence(T0, id, 'a', 601), /seconds/)
  e.acknowledge(T0 + 72_000, id, 'alice')
  t.equal(stateOf(e.get(id)!, T0 + 72_000), 'acknowledged')
  t.throws(() => e.acknowledge(T0 + 73_000, id, 'bob'), /already acknowledged by alice/)
  // HR 117 is below the limit but within the 5 bpm hysteresis; 114 ends it
  t.same(run(e, 73, 75, () => frame({ ...normal, hr: v(117) })), [])
  const end = run(e, 75, 76, () => frame({ ...normal, hr: v(114) }))
  t.same(summary(end), ['75:end:hr-high'])
  t.equal(end[0].event.latched, false)
  t.equal(stateOf(e.get(id)!, T0 + 76_000), 'resolved', 'medium: self-clearing')
  t.throws(() => e.acknowledge(T0, 'nope', 'x'), /no alarm nope/)
})

t.test('asystole, VF, VT: high priority, started with the rhythm call (asystole well within 10 s), latching', async (t) => {
  const e = new AlarmEngine()
  const cs = run(e, 0, 3, (s) => frame({ hr: v(60), ecg: ecg(s === 0 ? null : 'ASYSTOLE') }))
  t.same(summary(cs), ['1:start:asystole:high'], 'no extra delay: the detector already waited 4 s')
  const end = run(e, 3, 4, () => frame(normal))
  t.same(summary(end), ['3:end:asystole'])
  t.equal(stateOf(e.get(cs[0].alarm.id)!, T0 + 10_000), 'active', 'latched')
  // VT must hold 2 s: a 1-frame call does not alarm
  t.same(run(e, 10, 11, () => frame({ ...normal, ecg: ecg('VT') })), [])
  t.same(run(e, 11, 12, () => frame(normal)), [])
  t.same(summary(run(e, 20, 23, () => frame({ ...normal, ecg: ecg('VT') }))), ['22:start:vt:high'])
  t.same(summary(run(e, 23, 24, () => frame({ ...normal, ecg: ecg('VF') }))).sort(), ['23:end:vt', '23:start:vf:high'])
  // NOISE: no rhythm call is judged, so VF neither ends nor restarts; signal-noise after 10 s
  const noise = run(e, 24, 40, () => frame({ ...normal, ecg: ecg('NOISE') }))
  t.same(summary(noise), ['34:start:signal-noise:low'])
  // lead off: rhythm unknown too
  t.same(summary(run(e, 40, 46, () => frame({ hr: v(70) }, FLAG_LEAD_OFF))), ['45:start:lead-off:medium'], 'leads off: the noise call is unknown, not ended')
})

t.test('af: new onset only', async (t) => {
  const e = new AlarmEngine()
  const af = () => frame({ ...normal, ecg: ecg('AF') })
  const first = run(e, 0, 31, af)
  t.same(summary(first), ['30:start:af:low'], '30 s of AF: one low-priority alarm')
  t.same(run(e, 31, 200, af), [], 'AF going on: no repeat')
  t.same(summary(run(e, 200, 201, () => frame(normal))), ['200:end:af'])
  t.same(run(e, 300, 400, af), [], 'AF back within the hour: not a new onset')
  t.same(run(e, 400, 401, () => frame(normal)), [])
  t.same(summary(run(e, 4000, 4031, af)), ['4030:start:af:low'], 'AF after more than an hour without: a new onset')
})

t.test('technical alarms self-clear: lead-off, probe-off, battery (with hysteresis), clock, offline, rejected frames, storage', async (t) => {
  const e = new AlarmEngine()
  t.same(summary(run(e, 0, 6, () => frame({ spo2: v(97) }, FLAG_LEAD_OFF))), ['5:start:lead-off:medium'])
  t.same(summary(run(e, 6, 7, () => frame(normal))), ['6:end:lead-off'])
  t.same(summary(run(e, 7, 18, () => frame({ hr: v(70), spo2: v(60) }, FLAG_FINGER_OFF))), ['17:start:probe-off:low'], 'probe off: its SpO2 is not trusted')
  t.same(summary(run(e, 18, 19, () => frame(normal))), ['18:end:probe-off'])
  t.same(summary(run(e, 20, 51, () => frame(normal, 0, 3400))), ['50:start:battery-low:low'])
  t.same(run(e, 51, 53, () => frame(normal, 0, 3550)), [], 'battery within hysteresis')
  t.same(summary(run(e, 53, 54, () => frame(normal, 0, 3700))), ['53:end:battery-low'])
  t.same(summary(run(e, 60, 91, () => frame(normal, FLAG_TIME_UNSYNCED))), ['90:start:clock-bad:low'])
  t.same(summary(run(e, 91, 92, () => frame(normal))), ['91:end:clock-bad'])
  // offline: driven by the clock tick
  t.same(e.tick(T0 + 100_000), [], '9 s of silence: nothing')
  const off = e.tick(T0 + 106_000)
  t.same(off.map((c) => `${c.event.e}:${c.alarm.condition}:${c.alarm.priority}`), ['start:device-offline:medium'])
  t.same(e.tick(T0 + 120_000), [], 'still offline: no repeat')
  t.same(summary(run(e, 121, 122, () => frame(normal))), ['121:end:device-offline'])
  // rejected frames: 3 within a minute (offline left out: the board sends no frame here)
  const rej = (cs: AlarmChange[]) => cs.filter((c) => c.alarm.condition === 'frames-rejected').map((c) => `${c.event.e}:${c.alarm.condition}`)
  t.same([...e.rejected(T0 + 130_000, dev, pat), ...e.rejected(T0 + 131_000, dev, pat)], [])
  t.same(rej(e.rejected(T0 + 132_000, dev, pat)), ['start:frames-rejected'])
  t.same(rej(e.tick(T0 + 180_000)), [], 'a rejection in the last minute: still on')
  t.same(rej(e.tick(T0 + 193_000)), ['end:frames-rejected'], 'a minute without: ends')
  run(e, 194, 195, () => frame(normal))
  // storage: gateway-wide, no patient
  const st = e.storage(T0 + 200_000, 'ENOSPC')
  t.same(st.map((c) => [c.event.e, c.alarm.condition, c.alarm.patientId]), [['start', 'storage', null]])
  t.same(e.storage(T0 + 201_000, undefined).map((c) => c.event.e), ['end'])
  t.equal(e.list(T0 + 202_000).length, 0, 'every technical alarm cleared itself')
})

t.test('per-patient limits; replay of the event log rebuilds the same alarms', async (t) => {
  const e = new AlarmEngine()
  t.throws(() => e.setLimits(T0, pat, { spo2Low: 120 }, 'root'), /spo2Low: expected a number in 50..100/)
  t.throws(() => e.setLimits(T0, pat, { hrLow: 100, hrHigh: 90 }, 'root'), /hrLow/)
  t.throws(() => e.setLimits(T0, pat, { bogus: 1 }, 'root'), /unknown field 'bogus'/)
  const lim = e.setLimits(T0, pat, { spo2Low: 94 }, 'root')
  t.same(lim.limits, { spo2Low: 94, spo2Critical: 85, hrLow: 50, hrHigh: 120 })
  const log = [{ ev: lim.event, leaf: 0 }]
  const cs = run(e, 0, 12, () => frame({ ...normal, spo2: v(92), ecg: ecg('ASYSTOLE') }))
  t.same(summary(cs), ['0:start:asystole:high', '10:start:spo2-low:medium'], '92 % is low for this patient')
  cs.forEach((c, i) => log.push({ ev: c.event, leaf: i + 1 }))
  const ack = e.acknowledge(T0 + 12_000, cs[1].alarm.id, 'alice')
  log.push({ ev: ack.event, leaf: 3 })
  const r = new AlarmEngine()
  for (const x of log) r.apply(x.ev, x.leaf)
  const now = T0 + 13_000
  t.same(r.list(now).map((a) => [a.condition, stateOf(a, now), a.leafIndex]), [['spo2-low', 'acknowledged', 2], ['asystole', 'active', 1]])
  t.same(r.limitsOf(pat).spo2Low, 94)
  // the rebuilt engine carries on: the condition ends, the asystole alarm latches
  const end = run(r, 13, 14, () => frame(normal))
  t.same(summary(end).sort(), ['13:end:asystole', '13:end:spo2-low'])
  t.same(r.list(T0 + 14_000).map((a) => a.condition), ['asystole'])
})
