/**
 * Issue 24's acceptance test for the simulator whose clock charges time:
 * - today's per-sample firmware (the frozen bundle, hardware-sim/cost/baseline.ts: AD8232 by
 *   analogRead on a 250 Hz timer) loses samples at the central setting, and loses none when
 *   the board does not charge time;
 * - the new firmware's ten virtual minutes at the high setting are in
 *   test/long/realtime-high.test.ts (they need the machine to themselves).
 */
import t from 'tap'
import { createBoardRig, type BoardRig } from '../../../hardware-sim/rig.ts'
import { perSampleBundle } from '../../../hardware-sim/cost/baseline.ts'

t.setTimeout(120_000)

/** An offline bare-profile rig running `bundle` (frames go to the flash ring), as hardware-sim/cost/firmware-costs.ts runs it. */
async function offlineRig(cost: 'off' | 'central', bundle: string): Promise<BoardRig> {
  return createBoardRig({
    seed: 24, se: false, cost, bundle,
    config: { id: 'costcostcostcosta', profile: 'bare', secret: '11'.repeat(32), gw: { host: '127.0.0.1', mqttPort: 1, httpPort: 1 } },
  })
}

t.test("today's per-sample firmware loses samples at the central cost, and none without the cost", async (t) => {
  const bundle = perSampleBundle()
  const off = await offlineRig('off', bundle)
  t.teardown(() => off.close())
  off.board.advance(10_000)
  const so = off.status()!
  t.ok(so.up, 'streaming (offline, into flash)')
  t.equal(so.sampler!.missed, 0, 'cost off: no ECG sample missed')
  t.equal(so.sampler!.overruns, 0, 'cost off: no window overrun')
  t.equal(off.costReport(), null)

  const central = await offlineRig('central', bundle)
  t.teardown(() => central.close())
  central.board.advance(10_000)
  const sc = central.status()!
  t.ok(sc.up, 'streaming')
  const lost = sc.sampler!.missed + sc.sampler!.overruns * 250
  t.ok(sc.sampler!.missed > 0, `central cost: ${sc.sampler!.missed} ECG samples missed, ${sc.sampler!.overruns} windows overrun in 10 virtual s`)
  t.ok(sc.sampler!.maxLateMs > 4, `ticks ran late by up to ${sc.sampler!.maxLateMs.toFixed(1)} ms against a 4 ms period`)
  const r = central.costReport()!
  t.ok(r.share > 0.9, `the firmware holds ${(100 * r.share).toFixed(0)} % of one ESP32 core`)
  const tick = r.callbacks.find((c) => c.name.endsWith('function(){t.tick()}'))
  t.ok(tick && tick.meanUs > 4000, `one ECG tick costs ${tick ? (tick.meanUs / 1000).toFixed(1) : '?'} ms on average, more than its 4 ms period`)
  t.comment(`lost ${lost} of ${Math.round(r.elapsedMs / 4)} ECG samples; callbacks: ${r.callbacks.slice(0, 5).map((c) => `${c.name} ${c.count}x max ${(c.maxUs / 1000).toFixed(1)} ms`).join('; ')}`)
})
