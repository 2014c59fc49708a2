/**
 * A fleet of 40 boards (20 SE, 20 bare; the real bundle) for 60 simulated seconds against the
 * real gateway: every board streams, none runs out of memory, and what the gateway stored is
 * exactly what the boards counted as acknowledged, every frame verifying, no sequence gaps.
 * The 1,000-board run is bench/fleet.ts (too slow for the suite on 2 cores).
 */
import t from 'tap'
import { DEFAULTS } from '../../../firmware/config.ts'
import { Fleet } from '../../../hardware-sim/fleet/fleet.ts'
import { startRealGateway } from '../../../testing/real-gateway.ts'
import { checkBoards, drain } from './helpers.ts'

t.setTimeout(150_000)

t.test('40 boards, 60 simulated seconds, exact accounting', async (t) => {
  const gw = await startRealGateway()
  t.teardown(() => gw.close())
  const fleet = await Fleet.start({ devices: 40, gateway: { httpUrl: gw.httpUrl, adminToken: gw.adminToken, mqttPort: gw.mqttPort }, seed: 99, speed: 1000 })
  t.teardown(() => fleet.close())
  t.equal(new Set(fleet.boards.map((b) => b.id)).size, 40, '40 distinct device IDs registered')
  t.same([...new Set(fleet.boards.map((b) => b.profile))].sort(), ['bare', 'se'], 'both profiles')
  const end = await fleet.run({ untilMs: 60_000 })
  t.equal(end.outOfMemory, 0, 'no board ran out of JsVars')
  t.equal(end.reboots, 0, 'no board rebooted')
  await drain(fleet)
  const checks = checkBoards(fleet, gw.store)
  t.equal(checks.filter((c) => c.badSignatures > 0).length, 0, 'every stored frame verifies with its board\'s key')
  t.same(checks.filter((c) => c.stored !== c.acked).map((c) => `dev${c.index}: stored ${c.stored}, acked ${c.acked}`), [], 'stored = acknowledged, for every board')
  t.same(checks.filter((c) => c.gaps.length > 0).map((c) => `dev${c.index}: ${c.gaps}`), [], 'no sequence number missing')
  // One frame per window (DEFAULTS.windowS); a few short when the host is slow to connect them.
  t.ok(checks.every((c) => c.stored >= 60 / DEFAULTS.windowS - 5), `every board streamed the whole minute (fewest: ${Math.min(...checks.map((c) => c.stored))} frames of ${60 / DEFAULTS.windowS})`)
  t.equal(gw.store.frames.length, checks.reduce((n, c) => n + c.stored, 0), 'nothing else stored')
})
