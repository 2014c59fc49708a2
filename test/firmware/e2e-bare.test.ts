/**
 * End to end, bare profile: the built bundle on the virtual board against the real gateway
 * (helpers/e2e-scenario.ts): WiFi drop of 60 s, gateway restart, reboot while offline,
 * brown-out mid-write; every frame stored once, verified, no sequence number reused.
 */
import t from 'tap'
import { runScenario, gapsByBoot } from './helpers/e2e-scenario.ts'

// About 200 virtual seconds at 20x, plus a gateway restart: longer than tap's 30 s default.
t.setTimeout(150_000)

t.test('bare profile: stream through drops, restarts and reboots; nothing lost, duplicated or reused', async (t) => {
  const r = await runScenario('bare', 22, (fn) => t.teardown(fn))
  t.same(r.verifyErrors, [], 'every stored frame verifies with the registered key')
  t.ok(r.frames.length >= 150, `${r.frames.length} frames stored over ${Math.round(r.virtualMs / 1000)} virtual s`)
  const seqs = r.frames.map((f) => f.seq)
  t.equal(new Set(seqs).size, seqs.length, 'each sequence number stored once')
  t.ok(r.offlineStored >= 55, `frames made during the 60 s drop went to flash (${r.offlineStored})`)
  t.ok(r.boots.length >= 3, `frames from ${r.boots.length} boots (reboot and brown-out)`)
  // Sequence numbers of a later boot are all above those of earlier boots: never reused.
  for (let i = 1; i < r.boots.length; i++) {
    const prevMax = Math.max(...r.frames.filter((f) => f.boot === r.boots[i - 1]).map((f) => f.seq))
    const curMin = Math.min(...r.frames.filter((f) => f.boot === r.boots[i]).map((f) => f.seq))
    t.ok(curMin > prevMax, `boot ${r.boots[i]} starts at seq ${curMin}, above boot ${r.boots[i - 1]}'s last ${prevMax}`)
  }
  for (const [boot, gaps] of gapsByBoot(r.frames)) t.same(gaps, [], `boot ${boot}: no sequence number missing`)
  t.ok(r.frames.every((f) => f.ecgN === 250), 'one second of 250 Hz ECG in every frame')
  t.ok(r.frames.filter((f) => f.ppgN >= 90).length >= r.frames.length - 3, 'PPG in the frames')
  t.ok(r.frames.every((f) => f.batteryMv !== undefined && f.batteryMv > 3300 && f.batteryMv < 4300), 'battery voltage reported')
  t.equal(r.status.sampler!.missed, 0, 'no ECG sample missed')
  t.equal(r.status.sampler!.overruns, 0, 'no window overrun')
  t.comment(`figures: ${Math.round(r.frames.reduce((n, f) => n + f.bytes, 0) / r.frames.length)} bytes/frame; duplicate deliveries acknowledged without storing: ${r.duplicateAppends}; JsVars ${r.status.mem!.usage}/${r.status.mem!.total}`)
  if (process.env.RIG_DEBUG) console.error(r.log.join('\n'))
})
