/**
 * Issue 12 on the virtual board running the built bundle: callbacks the interpreter abandons
 * (out of memory) are simulated by a board-side setTimeout that drops chosen callbacks, as if
 * they never ran. Each held resource comes back (job deadline, window taken back), the
 * watchdog restarts the pipeline and then reboots the board when restarts do not help, frames
 * flow again within two windows of the fault clearing, and the next frame says what happened
 * (FLAG_RECOVERED, key 23) while mhStatus() keeps the counts. Re-provisioning under a new ID
 * drops the flash ring of the old one.
 */
import t from 'tap'
import { nodeHash } from '../../protocol/node/hash-node.ts'
import { deviceIdFromBytes } from '../../protocol/portable/device-id.ts'
import { verifyFrame } from '../../protocol/node/verify.ts'
import { FLAG_RECOVERED } from '../../protocol/portable/frame.ts'
import { createBoardRig, type BoardRig } from '../../hardware-sim/rig.ts'
import { ringFrames } from './helpers/board-frames.ts'

const secret = new Uint8Array(32).fill(0x22)
const idA = deviceIdFromBytes(nodeHash, new Uint8Array(10).fill(4))
const idB = deviceIdFromBytes(nodeHash, new Uint8Array(10).fill(5))
const gw = { host: '127.0.0.1', mqttPort: 1, httpPort: 1 }

async function board(id = idA): Promise<BoardRig> {
  const rig = await createBoardRig({ seed: 9, se: false, boot: false })
  rig.configure({ id, profile: 'bare', secret: Buffer.from(secret).toString('hex'), t: Date.now(), gw })
  rig.board.boot()
  return rig
}

/** From now on the board's setTimeout drops `count` callbacks whose code contains `what` (-1: all). */
function abandon(rig: BoardRig, what: string, count: number): void {
  const r = rig.board.repl(`(function(){var st=setTimeout;var left=${count};setTimeout=function(f,ms){if(left!==0&&String(f).indexOf(${JSON.stringify(what)})>=0){if(left>0)left--;return 0}return st.apply(this,arguments)}})()`)
  if (!r.ok) throw new Error(String(r.value))
}

function frames(rig: BoardRig) {
  return ringFrames(rig.board).map((b) => verifyFrame(b, { profile: 'bare', secret }).payload).sort((a, b) => a.boot - b.boot || a.seq - b.seq)
}

t.test('a seal callback that never runs: the job is given up at the next window, frames go on, the next frame reports it', async (t) => {
  const rig = await board()
  t.teardown(() => rig.close())
  rig.board.advance(5_000)
  const made = rig.status()!.stats.frames
  abandon(rig, '.seal(', 1)
  rig.board.advance(8_000)
  const s = rig.status()! as any
  t.equal(s.pipeline.abandoned, 1, 'one job abandoned')
  t.ok(s.stats.frames >= made + 2, `frames flow again (${made} -> ${s.stats.frames})`)
  const fs = frames(rig)
  const flagged = fs.filter((p) => (p.flags & FLAG_RECOVERED) !== 0)
  t.equal(flagged.length, 1, 'one frame says the board recovered')
  t.equal(flagged[0]!.faults, 1, 'faults: 1')
  t.ok(flagged[0]!.dropped >= 1, 'the frame that was never sealed is counted as dropped')
  const seqs = fs.map((p) => p.seq)
  t.same(seqs, [...seqs].sort((a, b) => a - b), 'in order')
})

t.test('a window handed on to a callback that never runs is taken back at the next boundary', async (t) => {
  const rig = await board()
  t.teardown(() => rig.close())
  rig.board.advance(5_000)
  abandon(rig, '.onWindow(', 1)
  rig.board.advance(7_000)
  const s = rig.status()! as any
  t.equal(s.sampler.reclaimed, 1, 'one window taken back')
  const fs = frames(rig)
  const flagged = fs.filter((p) => (p.flags & FLAG_RECOVERED) !== 0)
  t.equal(flagged.length, 1)
  t.equal(flagged[0]!.faults, 1)
  t.equal(flagged[0]!.dropped, 1, 'the lost window is a dropped frame')
  t.equal(s.sampler.missed, 0, 'no sample lost at the chips: only the frame')
})

t.test('no frame while the sensors produce: the watchdog restarts the pipeline; frames flow once the fault clears', async (t) => {
  const rig = await board()
  t.teardown(() => rig.close())
  rig.board.advance(4_000)
  abandon(rig, '.onWindow(', 6) // about 12 s of windows never reach the pipeline
  rig.board.advance(14_000)
  let s = rig.status()! as any
  t.ok(s.faults.restarts >= 1, `the watchdog restarted the pipeline (${s.faults.restarts})`)
  t.match(rig.lines.join('\n'), /watchdog: no frame for 6 s while the sensors produce; restarting/)
  const before = s.stats.frames
  rig.board.advance(5_000)
  s = rig.status()! as any
  t.ok(s.stats.frames >= before + 2, `frames within two windows of the fault clearing (${before} -> ${s.stats.frames})`)
  const fs = frames(rig)
  const flagged = fs.filter((p) => (p.flags & FLAG_RECOVERED) !== 0)
  t.ok(flagged.length >= 1 && flagged[0]!.faults! >= 2, `the next frame counts the restart and the windows taken back (${flagged[0]?.faults})`)
  t.ok(flagged[0]!.dropped >= 4, `and the windows lost as dropped frames (${flagged[0]?.dropped})`)
})

t.test('restarts that do not help: the board reboots, keeps its flash ring, and its first frame says so', async (t) => {
  const rig = await board()
  t.teardown(() => rig.close())
  rig.board.advance(5_000)
  const backlog = rig.status()!.backlog!
  t.ok(backlog >= 2, `frames in the flash ring before (${backlog})`)
  abandon(rig, '.onWindow(', -1)
  const boot0 = rig.status()!.boot!
  rig.board.advance(45_000)
  t.match(rig.lines.join('\n'), /watchdog: no frame after 3 pipeline restarts; rebooting/)
  t.match(rig.lines.join('\n'), /restarted by the watchdog: no frame after 3 pipeline restarts/)
  const s = rig.status()! as any
  t.ok(s.boot > boot0, 'a new boot')
  t.equal(s.faults.reboots, 1)
  rig.board.advance(5_000)
  const fs = frames(rig)
  t.ok(fs.filter((p) => p.boot === boot0).length >= backlog, 'the old boot\'s frames are still in the ring')
  const first = fs.find((p) => p.boot > boot0)!
  t.ok((first.flags & FLAG_RECOVERED) !== 0 && first.faults! >= 1, 'the first frame after the reboot reports it')
})

t.test('re-provisioned under a new ID: the ring kept for the old one is dropped, and the board says so', async (t) => {
  const rig = await board(idA)
  t.teardown(() => rig.close())
  rig.board.advance(7_000)
  const n = rig.status()!.backlog!
  t.ok(n >= 3, `${n} frames kept for ${idA}`)
  rig.configure({ id: idB, profile: 'bare', secret: Buffer.from(secret).toString('hex'), t: Date.now(), gw })
  rig.board.boot()
  t.match(rig.lines.join('\n'), new RegExp(`re-provisioned as ${idB}: dropped ${n} stored frames of ${idA}`))
  t.equal(rig.status()!.backlog, 0, 'nothing of the old identity left to send')
  rig.board.advance(5_000)
  const ids = new Set(frames(rig).map((p) => p.deviceId))
  t.same([...ids], [idB], 'the ring holds only frames of the new identity')
  // A reboot under the same ID keeps the ring.
  const kept = rig.status()!.backlog!
  rig.board.boot()
  t.equal(rig.status()!.backlog, kept, 'same identity: the ring is kept')
})
