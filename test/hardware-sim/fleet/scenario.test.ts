/**
 * Fault-script parsing and patient scenarios. The scenarios run on real firmware through the
 * recorder (no gateway): a falling SpO2 trajectory shows in the SpO2 that the project's own
 * PPG monitor computes from the frames' red/IR samples; AF makes the R-R intervals in the
 * frames' ECG irregular; a MIT-BIH record can be the ECG source.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseFault, parseDuration, faultTimeline, FaultSpecError } from '../../../hardware-sim/fleet/faults.ts'
import { trajectoryAt, validateScenario, ScenarioError } from '../../../hardware-sim/fleet/scenario.ts'
import { Fleet } from '../../../hardware-sim/fleet/fleet.ts'
import { startRecorder } from '../../../hardware-sim/fleet/recorder.ts'
import { decodeFrame } from '../../../protocol/node/decode.ts'
import { PpgMonitor } from '../../../signal/ppg.ts'
import { readFileSync, readdirSync } from 'node:fs'
import { sharedData } from '../../helpers/cli.ts'

t.setTimeout(120_000)

t.test('fault specs', async (t) => {
  t.same(parseFault('dev0:wifi-drop@10s+30s'), { target: { from: 0, to: 0 }, kind: 'wifi-drop', atMs: 10_000, durationMs: 30_000, arg: undefined })
  t.same(parseFault('dev2-4:i2c-gone=ppg@5s+250ms').target, { from: 2, to: 4 })
  t.equal(parseFault('dev2-4:i2c-gone=ppg@5s+250ms').arg, 0x57)
  t.equal(parseFault('dev1:i2c-gone=0x60@1m').atMs, 60_000)
  t.equal(parseFault('dev1:clock-skew=-90s@5').arg, -90_000)
  t.equal(parseFault('all:brown-out@3s').arg, 0.5)
  t.equal(parseFault('abcdefghijklmnopq:lead-off@1.5s').atMs, 1500)
  t.same(parseFault('abcdefghijklmnopq:lead-off@1.5s').target, { id: 'abcdefghijklmnopq' })
  t.equal(parseDuration('250ms', 'x'), 250)
  const bad: Array<[string, RegExp]> = [
    ['dev0:wifi-drop', /expected TARGET:KIND/],
    ['dev0:flood@1s', /unknown kind 'flood'/],
    ['dev0:gateway-restart@1s', /use target all/],
    ['dev3-1:lead-off@1s', /is empty/],
    ['robot:lead-off@1s', /target must be devN/],
    ['dev0:clock-skew@1s', /needs =±T/],
    ['dev0:brown-out=1.5@1s', /fraction must be in 0..1/],
    ['dev0:i2c-gone=lcd@1s', /unknown I2C device 'lcd'/],
    ['dev0:wifi-drop=3@1s', /takes no =ARG/],
    ['dev0:wifi-drop@soon', /expected a time like 10s/],
    ['dev0:wifi-drop@1s+0s', /duration must be > 0/],
  ]
  for (const [spec, re] of bad) t.throws(() => parseFault(spec), { name: 'FaultSpecError', message: re }, spec)
  t.ok(new FaultSpecError('x') instanceof Error)
  const tl = faultTimeline(['dev0:flash-full@5s+10s', 'dev1:wifi-drop@1s+2s', 'dev0:i2c-gone=se@2s'].map(parseFault))
  t.same(tl.map((a) => `${a.atMs} ${a.fault.kind} ${a.phase}`), ['1000 wifi-drop start', '2000 i2c-gone start', '5000 flash-full start', '15000 flash-full end'], 'start/end events in time order; undone only when timed')
})

t.test('scenario validation and SpO2 trajectories', async (t) => {
  t.equal(trajectoryAt([[0, 98], [60, 86]], 30), 92)
  t.equal(trajectoryAt([[0, 98], [60, 86]], -5), 98)
  t.equal(trajectoryAt([[0, 98], [60, 86]], 600), 86)
  t.same(validateScenario({ spo2Trajectory: [[0, 97], [30, 85]], arrhythmia: 'af', leadOff: [[5, 10]] }), { spo2Trajectory: [[0, 97], [30, 85]], arrhythmia: 'af', leadOff: [[5, 10]] })
  const bad: Array<[unknown, RegExp]> = [
    [[], /expected an object/],
    [{ spo2: 120 }, /spo2: expected a number in 50..100/],
    [{ heartRateBpm: 'fast' }, /heartRateBpm: expected a number/],
    [{ spo2Trajectory: [[0, 40]] }, /outside 50..100/],
    [{ spo2Trajectory: [0, 97] }, /expected \[\[a, b\], ...\]/],
    [{ arrhythmia: 'vt' }, /arrhythmia: expected 'af', 'pvc'/],
    [{ source: 'holter' }, /expected synthetic or mitdb:RECORD/],
    [{ colour: 'red' }, /unknown field 'colour'/],
  ]
  for (const [s, re] of bad) t.throws(() => validateScenario(s), { name: 'ScenarioError', message: re }, JSON.stringify(s))
  t.ok(new ScenarioError('x') instanceof Error)
})

/** R peaks by a plain threshold with a 250 ms refractory period: enough to compare rhythms. */
function rrIntervals(ecg: number[], fs: number): number[] {
  const mean = ecg.reduce((a, b) => a + b, 0) / ecg.length
  const sd = Math.sqrt(ecg.reduce((a, b) => a + (b - mean) ** 2, 0) / ecg.length)
  const peaks: number[] = []
  for (let i = 1; i < ecg.length - 1; i++) {
    if (ecg[i]! > mean + 2.5 * sd && ecg[i]! >= ecg[i - 1]! && ecg[i]! > ecg[i + 1]!) {
      if (peaks.length && i - peaks[peaks.length - 1]! < 0.25 * fs) continue
      peaks.push(i)
    }
  }
  return peaks.slice(1).map((p, i) => ((p - peaks[i]!) / fs) * 1000)
}
const cv = (x: number[]) => {
  const m = x.reduce((a, b) => a + b, 0) / x.length
  return Math.sqrt(x.reduce((a, b) => a + (b - m) ** 2, 0) / x.length) / m
}

t.test('scenarios on real firmware: falling SpO2, AF, MIT-BIH replay', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'mh-scn-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const rec = await startRecorder(out)
  t.teardown(() => rec.close())
  const fleet = await Fleet.start({
    devices: 4, gateway: { httpUrl: rec.httpUrl, adminToken: 'x', mqttPort: rec.mqttPort }, seed: 21, speed: 100,
    mitdbDir: join(sharedData, 'ecg', 'mitdb'),
    scenarios: {
      0: { spo2Trajectory: [[0, 98], [25, 98], [35, 86]], heartRateBpm: 70 },
      1: { arrhythmia: 'af', heartRateBpm: 80 },
      2: { heartRateBpm: 80 },
      3: { source: 'mitdb:100' },
    },
  })
  t.teardown(() => fleet.close())
  await fleet.run({ untilMs: 50_000 })
  await fleet.quiesce()
  const framesOf = (i: number) => {
    const id = fleet.boards[i]!.id
    return readdirSync(join(out, id)).map((f) => decodeFrame(new Uint8Array(readFileSync(join(out, id, f)))).payload).sort((a, b) => a.seq - b.seq)
  }
  // SpO2 as the project's PPG monitor computes it from what the board sent.
  const readings: Array<{ at: number; spo2?: number }> = []
  const f0 = framesOf(0)
  const mon = new PpgMonitor({ fs: f0[0]!.ppgHz!, onReading: (r) => readings.push(r) })
  for (const p of f0) for (let k = 0; k < p.red!.length; k++) mon.push(p.red![k]!, p.ir![k]!)
  const at = (s: number) => readings.filter((r) => r.spo2 !== undefined && Math.abs(r.at / f0[0]!.ppgHz! - s) <= 2).map((r) => r.spo2!)
  if (process.env.SCN_DEBUG) console.error(readings.map((r) => `${(r.at / f0[0]!.ppgHz!).toFixed(0)}:${r.spo2?.toFixed(1)}`).join(" "))
  const early = at(20)
  const late = at(46)
  t.ok(early.length > 0 && late.length > 0, `SpO2 readings at 20 s (${early}) and 46 s (${late})`)
  t.ok(Math.min(...early) >= 95, `dev0: SpO2 ~98 % before the fall (${early.map((x) => x.toFixed(1))})`)
  t.ok(Math.max(...late) <= 89, `dev0: SpO2 ~86 % after it (${late.map((x) => x.toFixed(1))})`)
  // AF: irregularly irregular R-R intervals compared with a sinus-rhythm board at the same rate.
  const ecgOf = (i: number) => framesOf(i).flatMap((p) => [...(p.ecg as number[])])
  const hz = framesOf(1)[0]!.ecgHz!
  const cvAf = cv(rrIntervals(ecgOf(1), hz))
  const cvSinus = cv(rrIntervals(ecgOf(2), hz))
  t.ok(cvAf > 2 * cvSinus, `dev1 AF R-R variation ${cvAf.toFixed(3)} vs sinus ${cvSinus.toFixed(3)}`)
  // MIT-BIH record 100 (about 75 bpm): plausible beats in the frames.
  const rr100 = rrIntervals(ecgOf(3), hz)
  const bpm = 60000 / (rr100.reduce((a, b) => a + b, 0) / rr100.length)
  t.equal(fleet.boards[3]!.sources.summary.source, 'mitdb:100')
  t.ok(bpm > 60 && bpm < 90, `dev3 replaying mitdb 100: ${bpm.toFixed(1)} bpm from the frames' ECG`)
})
