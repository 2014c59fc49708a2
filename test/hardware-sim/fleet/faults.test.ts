/**
 * Scripted faults on a fleet running the real firmware against the real gateway: each fault
 * has the effect it should, and afterwards every frame a board counted as acknowledged is
 * stored once, verifies, and (within a boot) no sequence number is missing.
 */
import t from 'tap'
import { Fleet } from '../../../hardware-sim/fleet/fleet.ts'
import { parseFault } from '../../../hardware-sim/fleet/faults.ts'
import { startRealGateway } from '../../../testing/real-gateway.ts'
import { checkBoards, drain } from './helpers.ts'

t.setTimeout(120_000)

t.test('WiFi drop, gateway restart, clock skew, flash full, brown-out, I2C device gone, lead-off', async (t) => {
  const gw = await startRealGateway()
  t.teardown(() => gw.close())
  const script = [
    'dev0:wifi-drop@5s+20s', 'dev0:clock-skew=+60s@40s',
    'dev1:wifi-drop@8s+20s', 'dev1:brown-out=0.5@12s',
    'dev2:i2c-gone=ppg@5s+10s', 'dev2:lead-off@20s+5s',
    'dev3:wifi-drop@5s+20s', 'dev3:flash-full@5s+10s',
    'all:gateway-restart@30s+5s',
  ]
  const fleet = await Fleet.start({ devices: 4, gateway: { httpUrl: gw.httpUrl, adminToken: gw.adminToken, mqttPort: gw.mqttPort }, seed: 3, speed: 10, faults: script.map(parseFault) })
  t.teardown(() => fleet.close())
  await fleet.run({ untilMs: 50_000, pollMs: 250 })
  await drain(fleet)
  const c = checkBoards(fleet, gw.store)
  // One frame per 2 s window: in the first boot, frame seq n >= 1 holds about fleet seconds
  // 2n+1 to 2n+3 (the sensors start about a second after boot, and seq 0 is the first window).
  // The ranges below keep a window clear of each fault's edges. (Frame times are the board's
  // wall clock, which a time sync moves, so seqs, not times, say which window is which.)
  const bySeq = (i: number, from: number, to: number) => c[i]!.frames.filter((f) => f.boot === c[i]!.frames[0]!.boot && f.seq >= from && f.seq <= to)
  // Every frame of a seq range (dev2 has one boot and, asserted below, no gap): an .every() over
  // fewer frames than that would pass on nothing.
  const all = (i: number, from: number, to: number) => {
    const fs = bySeq(i, from, to)
    t.equal(fs.length, to - from + 1, `dev${i}: frames ${from}-${to} stored`)
    return fs
  }
  t.same(fleet.faultLog.map(([ms, d]) => `${ms / 1000}s ${d}`), [
    '5s dev0 wifi-drop', '5s dev2 i2c-gone', '5s dev3 wifi-drop', '5s dev3 flash-full', '8s dev1 wifi-drop', '12s dev1 brown-out',
    '15s dev2 i2c-gone ends', '15s dev3 flash-full ends', '20s dev2 lead-off', '30s gateway-restart for 5000 ms', '40s dev0 clock-skew',
  ], 'every fault fired at its virtual time')

  for (const b of c) {
    t.equal(b.badSignatures, 0, `dev${b.index}: every stored frame verifies`)
    t.equal(new Set(b.seqs).size, b.seqs.length, `dev${b.index}: each sequence number stored once`)
    const nacks = fleet.boards[b.index]!.totals.nacks
    t.equal(b.stored, b.acked - nacks, `dev${b.index}: stored = acknowledged (${b.acked}) - NACKed (${nacks})`)
  }
  // WiFi drop: frames made offline went to flash and arrived afterwards, none missing. (A lower
  // bound: the count also holds frames made while the gateway restarted or the window was full.)
  t.ok(fleet.boards[0]!.status!.uplink!.stored >= 15, `dev0: ${fleet.boards[0]!.status!.uplink!.stored} frames kept in flash during the drop`)
  t.same(c[0]!.gaps, [], 'dev0: no frame lost across the drop and the gateway restart')
  t.same(c[3]!.gaps, [], 'dev3: no frame lost with the flash full (its ring segments already existed)')
  // Gateway restart through the proxy: every board reconnected.
  t.equal(fleet.proxy!.stats.cuts, 1, 'the proxy cut every connection once')
  // At least 2: the WiFi drops and a keep-alive lost on a loaded host add reconnects.
  for (const b of fleet.boards) t.ok(b.totals.connects >= 2, `dev${b.index}: reconnected after the restart (${b.totals.connects} connects)`)
  // Brown-out while offline: the board rebooted and later boots never reuse sequence numbers.
  const boots1 = [...new Set(c[1]!.frames.map((f) => f.boot))]
  t.equal(boots1.length, 2, `dev1: frames from the first boot and the one after the brown-out (${boots1.join(', ')})`)
  t.ok(fleet.boards[1]!.rig.lines.some((l) => /brown-out: rebooting/.test(l)), 'dev1: brown-out reboot seen on the console')
  const last1 = Math.max(...c[1]!.frames.filter((f) => f.boot === boots1[0]).map((f) => f.seq))
  t.ok(c[1]!.frames.filter((f) => f.boot !== boots1[0]).every((f) => f.seq > last1), 'dev1: the next boot numbers frames above the last one before the brown-out')
  // MAX30102 gone for 10 s: frames without PPG samples, then PPG again.
  t.ok(all(2, 3, 5).every((f) => f.ppgN === 0), 'dev2: no PPG while the MAX30102 does not answer (5-15 s)')
  t.ok(all(2, 9, 10).every((f) => f.ppgN >= 90), 'dev2: PPG back after it answers again')
  t.equal(fleet.boards[2]!.totals.nacks, 0, 'dev2: no frame refused when the MAX30102 vanishes')
  t.same(c[2]!.gaps, [], 'dev2: no frame lost: the window it vanished in went out with ECG only')
  t.ok(c[2]!.frames.some((f) => f.ppgN === 0 && (f.flags & 16) === 16), 'dev2: that window says PPG was lost (flag bit 4)')
  t.notOk(fleet.boards[2]!.rig.lines.some((l) => /Uncaught/.test(l)), 'dev2: no uncaught error on the console')
  // Lead-off for 5 s: flag bit 0 set on those windows only.
  t.ok(all(2, 10, 11).every((f) => (f.flags & 1) === 1), 'dev2: lead-off flag during the lead-off (20-25 s)')
  t.ok(all(2, 14, 15).every((f) => (f.flags & 1) === 0), 'dev2: lead-off flag clear afterwards')
  // Clock skew of +60 s: frame times jump forward at most once, by up to the skew (at speed 10
  // the board's clock also runs ahead of the gateway's between syncs). Whether the jump reaches
  // a stored frame depends on whether a time sync from the gateway lands first, which depends
  // on how fast the host runs the fleet: on a loaded machine it sometimes does. What must hold
  // either way is that frame times never run backwards within a boot.
  const f0 = c[0]!.frames
  const steps = f0.slice(1).map((f, i) => ({ d: f.t0 - f0[i]!.t0, sameBoot: f.boot === f0[i]!.boot }))
  const jumps = steps.filter((x) => x.d > 30_000).map((x) => x.d)
  t.ok(jumps.length <= 1, `dev0: at most one jump in frame times (${jumps.join(', ') || 'none'})`)
  t.ok(jumps.every((d) => d <= 61_000), 'dev0: no jump beyond the 60 s skew')
  t.ok(steps.every((x) => !x.sameBoot || x.d > 0), 'dev0: frame times only move forward within a boot')
})
