/**
 * Issue 24's acceptance run: the FIFO firmware (MAX30003 and MAX30102 drained in bursts) loses
 * no sample at the high cost over 10 virtual minutes that include a 60 s WiFi drop and a
 * gateway restart, every callback under 50 ms, at most 25 % of a core (the reconnect's backlog
 * flush is paced: firmware/uplink.ts PACE_MS).
 *
 * In test/long/ (one file at a time, the machine to itself): the board runs at 40 times real
 * time against a real gateway on real sockets, so a host busy with other tests stretches the
 * gateway's answers 40-fold in virtual time (a 50 ms stall is 2 virtual seconds), which is not
 * the LAN a board has. Run alone it passed 6 of 6 times; beside another heavy test file it
 * lost frames in about half the runs (docs/hardware-sim-board.md, "Time charged").
 */
import t from 'tap'
import { createBoardRig, provisionRig, samplesLost, type RigStatus } from '../../hardware-sim/rig.ts'
import { verifyFrame } from '../../protocol/node/verify.ts'
import { startRealGateway } from '../../testing/real-gateway.ts'
import { waitFor } from '../helpers/wait.ts'

t.setTimeout(300_000)


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
  // The ten minutes are judged from here: the boot and the first connection (at this speed a
  // busy host's latencies are 40 times longer in virtual time) are not part of them.
  const firstSeq = st().seq ?? 0
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
  t.same(samplesLost(s), { ecg: 0, ppg: 0 }, 'no ECG or PPG sample lost')
  t.equal(s.sampler?.overruns ?? 0, 0, 'no window overrun')
  t.ok(r.share <= 0.25, `at most 25 % of one ESP32 core at the high cost (${(100 * r.share).toFixed(1)} %)`)
  const longest = Math.max(...r.callbacks.map((c) => c.maxUs))
  t.ok(longest <= 50_000, `no callback longer than 50 ms at the high cost (${(longest / 1000).toFixed(1)} ms)`)
  const frames = gw.store.frames.map((f) => verifyFrame(f.bytes, prov.key).payload).filter((p) => p.seq >= firstSeq)
  t.ok(frames.length >= 290, `${frames.length} frames of the ten minutes stored`)
  t.ok(frames.every((p) => !p.dropped), 'no frame says samples were dropped')
  const seqs = frames.map((p) => p.seq).sort((a, b) => a - b)
  for (let i = 1; i < seqs.length; i++) if (seqs[i] !== seqs[i - 1]! + 1) t.fail(`sequence gap ${seqs[i - 1]} -> ${seqs[i]}`)
})
