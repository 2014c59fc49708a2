/**
 * The fleet test: 1,000 virtual boards (500 SE/ES256, 500 bare/HMAC, each running the
 * built firmware bundle) against a real `mhealth gateway` process for 60 simulated seconds.
 * About 8 minutes on 2 cores, so it lives in test/long/: `npm test` runs these after the rest
 * of the suite, one at a time, with the machine to themselves.
 *
 * Asserted on virtual-time outcomes only (no timing): every board stays connected and within
 * its JsVar budget, none reboots, and per board the gateway's ledger holds exactly the frames
 * the board counted as acknowledged, each verifying with that board's key, sequences unique
 * and gap-free. Wall time and memory are printed for the issue note (bench/fleet.ts measures).
 */
import t from 'tap'
import { DEFAULTS } from '../../firmware/config.ts'
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { Fleet } from '../../hardware-sim/fleet/fleet.ts'
import { openLedgerReadOnly } from '../../ledger/ledger.ts'
import { verifyFrame } from '../../protocol/node/verify.ts'
import { spawnGateway } from '../gateway/helpers/process.ts'
import { tempDir } from '../helpers/tmp.ts'

const DEVICES = 1000
const SECONDS = 60

t.setTimeout(45 * 60_000)

t.test(`${DEVICES} boards for ${SECONDS} simulated seconds against a real gateway`, async (t) => {
  const data = tempDir('mh-fleet1000-')
  const gw = await spawnGateway(data, ['--log-level', 'warn'])
  let gwStopped = false
  t.teardown(async () => {
    if (!gwStopped) await gw.stop()
  })
  const t0 = performance.now()
  const fleet = await Fleet.start({
    devices: DEVICES, seed: 1000, speed: 1000, provisionConcurrency: 32,
    gateway: { httpUrl: `http://127.0.0.1:${gw.ready.ports.http}`, adminToken: readFileSync(join(data, 'admin.token'), 'utf8').trim(), mqttPort: gw.ready.ports.mqtt! },
  })
  t.teardown(() => fleet.close())
  const provisionS = (performance.now() - t0) / 1000
  const t1 = performance.now()
  // Boards take a few simulated seconds to associate, sync time and connect; from the first
  // poll that finds all of them up, none may drop.
  let allUpAt = -1
  let minConnected = DEVICES
  let maxOom = 0
  const end = await fleet.run({
    untilMs: SECONDS * 1000, pollMs: 10_000,
    onTick: (s) => {
      if (allUpAt < 0 && s.connected === DEVICES) allUpAt = s.virtualMs
      if (allUpAt >= 0) minConnected = Math.min(minConnected, s.connected)
      maxOom = Math.max(maxOom, s.outOfMemory)
      t.comment(`t=${(s.virtualMs / 1000).toFixed(0)}s connected ${s.connected} acked ${s.acked} backlog ${s.backlog} out of memory ${s.outOfMemory}`)
    },
  })
  const runS = (performance.now() - t1) / 1000
  const fleetRssMb = process.memoryUsage().rss / 1e6
  const gwHwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${gw.child.pid}/status`, 'utf8'))
  await fleet.quiesce()
  const s = fleet.poll()
  t.comment(`provisioning ${provisionS.toFixed(1)} s; ${SECONDS} simulated s took ${runS.toFixed(1)} s of wall time; fleet RSS ${fleetRssMb.toFixed(0)} MB, gateway peak RSS ${gwHwm ? (Number(gwHwm[1]) / 1024).toFixed(0) : '?'} MB`)

  t.equal(end.virtualMs, SECONDS * 1000, 'the whole minute ran')
  t.ok(allUpAt >= 0 && allUpAt <= 15_000, `every board connected within 15 simulated seconds (all up at the poll at ${(allUpAt / 1000).toFixed(1)} s)`)
  t.equal(minConnected, DEVICES, 'and stayed connected at every poll after that')
  t.equal(maxOom, 0, 'no board over its JsVar budget at any poll')
  t.equal(s.reboots, 0, 'no board rebooted')
  t.equal(s.backlog, 0, 'nothing left waiting in flash')
  t.equal(s.acked, s.published, 'every frame published was acknowledged')
  t.ok(fleet.boards.every((b) => b.totals.acked >= SECONDS / DEFAULTS.windowS - 3), `every board streamed the whole minute, a frame per ${DEFAULTS.windowS} s window (fewest: ${Math.min(...fleet.boards.map((b) => b.totals.acked))})`)

  gwStopped = true
  t.equal(await gw.stop(), 0, 'the gateway shut down cleanly')
  const ledger = await openLedgerReadOnly(join(data, 'ledger'))
  const wrong: string[] = []
  let stored = 0
  try {
    for (const b of fleet.boards) {
      const frames = await ledger.frames({ deviceId: b.id, limit: 10_000 })
      stored += frames.length
      const seqs = new Set<number>()
      let bad = 0
      for (const f of frames) {
        try {
          seqs.add(verifyFrame(f.bytes!, b.key).payload.seq)
        } catch {
          bad++
        }
      }
      const sorted = [...seqs].sort((x, y) => x - y)
      const gapFree = sorted.length === 0 || sorted[sorted.length - 1]! - sorted[0]! + 1 === sorted.length
      if (frames.length !== b.totals.acked || bad > 0 || seqs.size !== frames.length || !gapFree) {
        wrong.push(`dev${b.index}: stored ${frames.length}, acked ${b.totals.acked}, bad ${bad}, distinct seqs ${seqs.size}, gap-free ${gapFree}`)
      }
    }
  } finally {
    await ledger.close()
  }
  t.same(wrong.slice(0, 20), [], 'per board: stored = acknowledged, every frame verifies, no duplicate or missing sequence')
  t.equal(stored, s.acked, `the ledger holds ${stored} frames, the boards counted ${s.acked}`)
})
