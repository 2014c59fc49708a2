/**
 * A fleet started again on the same state directory resumes as the same devices: same IDs,
 * registration repeated without harm, counters continuing (the gateway admits the new auth
 * tokens), sequence numbers above the first run's.
 */
import t from 'tap'
import { DEFAULTS } from '../../../firmware/config.ts'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Fleet } from '../../../hardware-sim/fleet/fleet.ts'
import { startRealGateway } from '../../../testing/real-gateway.ts'
import { checkBoards, drain, metric } from './helpers.ts'

t.setTimeout(90_000)

t.test('same state dir: same devices, admitted again, numbering continues', async (t) => {
  const gw = await startRealGateway()
  t.teardown(() => gw.close())
  const dir = mkdtempSync(join(tmpdir(), 'mh-fleet-state-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const opts = { devices: 2, gateway: { httpUrl: gw.httpUrl, adminToken: gw.adminToken, mqttPort: gw.mqttPort }, seed: 4, speed: 100, dir }
  const first = await Fleet.start(opts)
  await first.run({ untilMs: 8_000 })
  await drain(first)
  const ids = first.boards.map((b) => b.id)
  const firstMax = checkBoards(first, gw.store).map((c) => Math.max(...c.seqs))
  await first.close()

  const second = await Fleet.start(opts)
  t.teardown(() => second.close())
  t.same(second.boards.map((b) => b.id), ids, 'the same device IDs')
  await second.run({ untilMs: 8_000 })
  await drain(second)
  t.equal(await metric(gw.httpUrl, 'mhealth_connects_refused_total', 'token-replayed'), 0, 'no auth token refused as replayed')
  const checks = checkBoards(second, gw.store)
  for (const c of checks) {
    t.equal(c.badSignatures, 0, `dev${c.index}: frames of both runs verify with one key`)
    t.equal(new Set(c.seqs).size, c.seqs.length, `dev${c.index}: no sequence number reused`)
    const newer = c.seqs.filter((s) => s > firstMax[c.index]!)
    // 8 simulated s at 100 x real time: a frame per window (DEFAULTS.windowS), one fewer when the host is slow to connect.
    t.ok(newer.length >= 8 / DEFAULTS.windowS - 1, `dev${c.index}: the second run's frames numbered above the first's (${newer.length})`)
  }
})
