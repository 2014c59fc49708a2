/**
 * Issue 24's acceptance test for the simulator whose clock charges time:
 * - today's per-sample firmware (the frozen bundle, hardware-sim/cost/baseline.ts: AD8232 by
 *   analogRead on a 250 Hz timer) loses samples at the central setting, and loses none when
 *   the board does not charge time;
 * - the new firmware (MAX30003 FIFO drained in bursts) loses none at the high setting over 10
 *   virtual minutes that include a WiFi drop and a gateway restart, every callback under 50 ms
 *   (the reconnect's backlog flush is paced: firmware/uplink.ts PACE_MS).
 */
import t from 'tap'
import { createBoardRig, provisionRig, type BoardRig, type RigStatus } from '../../../hardware-sim/rig.ts'
import { perSampleBundle } from '../../../hardware-sim/cost/baseline.ts'
import { verifyFrame } from '../../../protocol/node/verify.ts'
import { startRealGateway } from '../../../testing/real-gateway.ts'
import { waitFor } from '../../helpers/wait.ts'

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

/** Samples the firmware reports lost: the FIFO acquisition's overflowed ECG and PPG samples (its status calls their sum `missed`). */
function samplesLost(s: RigStatus): number {
  const a = s.sampler as (RigStatus['sampler'] & { ecgLost?: number }) | undefined
  return (a?.ecgLost ?? 0) + (a?.ppgLost ?? 0)
}

t.test('the new firmware (MAX30003 FIFO in bursts) loses no sample at the high cost over 10 virtual minutes with a WiFi drop and a gateway restart', async (t) => {
  const SPEED = 40
  const gw = await startRealGateway()
  t.teardown(() => gw.close())
  // The bundle's own configuration (the default bundle of firmwareBundle()) selects the MAX30003.
  const rig = await createBoardRig({ seed: 25, se: false, cost: 'high' })
  t.teardown(() => rig.close())
  const prov = await provisionRig(rig, { gatewayUrl: gw.httpUrl, adminToken: gw.adminToken, mqttPort: gw.mqttPort, profile: 'bare', patient: 'p-cost-high' })
  rig.board.boot()
  const running = rig.board.run({ speed: SPEED })
  t.teardown(async () => {
    rig.board.stop()
    await running
  })
  const st = (): RigStatus => rig.status()!
  await waitFor(() => gw.store.frames.length >= 8, '8 frames online', 120_000)
  rig.costReport({ reset: true })
  const t0 = rig.board.now
  // A WiFi drop of 60 s at minute 2, a gateway restart (down 5 virtual s) at minute 5.
  await waitFor(() => rig.board.now > t0 + 120_000, 'minute 2', 120_000)
  rig.board.wifiDrop(60_000)
  await waitFor(() => rig.board.now > t0 + 300_000, 'minute 5', 120_000)
  await gw.restart(5000 / SPEED)
  await waitFor(() => rig.board.now > t0 + 600_000, 'ten virtual minutes', 300_000)
  await waitFor(() => !!st().connected && st().backlog === 0, 'backlog drained', 120_000)
  const s = st()
  const r = rig.costReport()!
  t.comment(`sampler ${JSON.stringify(s.sampler)}; longest callbacks: ${[...r.callbacks].sort((a, b) => b.maxUs - a.maxUs).slice(0, 5).map((c) => `${c.name} ${c.count}x max ${(c.maxUs / 1000).toFixed(1)} ms`).join('; ')}`)
  t.equal(samplesLost(s), 0, 'no ECG or PPG sample lost')
  t.equal(s.sampler?.overruns ?? 0, 0, 'no window overrun')
  t.ok(r.share <= 0.25, `at most 25 % of one ESP32 core at the high cost (${(100 * r.share).toFixed(1)} %)`)
  const longest = Math.max(...r.callbacks.map((c) => c.maxUs))
  t.ok(longest <= 50_000, `no callback longer than 50 ms at the high cost (${(longest / 1000).toFixed(1)} ms)`)
  const frames = gw.store.frames.map((f) => verifyFrame(f.bytes, prov.key).payload)
  t.ok(frames.every((p) => !p.dropped), 'no frame says samples were dropped')
  const seqs = frames.map((p) => p.seq).sort((a, b) => a - b)
  for (let i = 1; i < seqs.length; i++) if (seqs[i] !== seqs[i - 1]! + 1) t.fail(`sequence gap ${seqs[i - 1]} -> ${seqs[i]}`)
})
