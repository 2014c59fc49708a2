/**
 * The end-to-end scenario on the virtual board running the BUILT bundle against the real
 * gateway, for one signing profile: provision (key from the SE, or a fresh HMAC secret,
 * registered through the admin API), stream, drop WiFi for 60 s, reconnect, restart the
 * gateway, reboot while offline, brown out in the middle of a flash write while offline.
 * Then everything the gateway stored is checked: each frame verifies, each (device, seq)
 * once, no sequence number ever reused across boots, and within each boot no gap (the
 * brown-out boot may lose only the frame whose write was cut).
 */
import type { Test } from 'tap'
import { verifyFrame, type DeviceKey } from '../../../protocol/node/verify.ts'
import { createBoardRig, provisionRig, type BoardRig, type RigStatus } from '../../../hardware-sim/rig.ts'
import { startRealGateway, type RealGateway } from '../../../testing/real-gateway.ts'
import { waitFor } from '../../helpers/wait.ts'

const SPEED = 20
/** Real time each step of the scenario may take; a step that drains a backlog gets more. */
const STEP_MS = 60_000
const DRAIN_MS = 90_000

export interface ScenarioResult {
  id: string
  key: DeviceKey
  rig: BoardRig
  gw: RealGateway
  /** Stored frames in arrival order, decoded. */
  frames: { seq: number; boot: number; bytes: number; flags: number; dropped: number; ecgN: number; ppgN: number; batteryMv?: number }[]
  verifyErrors: string[]
  offlineStored: number
  duplicateAppends: number
  boots: number[]
  /** Boot in which the brown-out struck (its last frame may be lost). */
  brownOutBoot: number
  status: RigStatus
  virtualMs: number
  log: string[]
}

export async function runScenario(profile: 'se' | 'bare', seed: number, cleanup: (fn: () => unknown) => void): Promise<ScenarioResult> {
  const gw = await startRealGateway()
  cleanup(() => gw.close())
  const rig = await createBoardRig({ seed, se: profile === 'se' })
  cleanup(() => rig.close())
  const { board } = rig

  // Provisioning, as `mhealth provision` does it over serial.
  const prov = await provisionRig(rig, { gatewayUrl: gw.httpUrl, adminToken: gw.adminToken, mqttPort: gw.mqttPort, profile, patient: 'p-e2e' })
  const id = prov.id
  const key: DeviceKey = prov.key
  board.boot()
  const running = board.run({ speed: SPEED })
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    board.stop()
    await running
  }
  cleanup(stop)
  const st = () => rig.status()!
  const stored = () => gw.store.frames.length
  const drained = () => {
    const s = st()
    return !!s.connected && s.backlog === 0
  }
  /** A step's name plus where board and gateway stood, for the message when it times out. */
  const step = (what: string) => () => {
    const s = st()
    const gwLog = gw.logs.slice(-3).map((e) => `${e.msg}${e.reason ? ` (${e.reason})` : ''}`)
    return `${what}; at ${(board.now / 1000).toFixed(1)} virtual s: connected ${!!s.connected}, backlog ${s.backlog}, ${s.stats.frames} frames made (sign errors ${s.stats.signErrors}), sampler ${JSON.stringify(s.sampler)}, signer ${JSON.stringify(s.signer)}, uplink ${JSON.stringify(s.uplink)}, ${stored()} stored; board: ${JSON.stringify(rig.lines.slice(-3))}, errors ${JSON.stringify(rig.lines.filter((l) => /Uncaught|frame:|sign:|send:/.test(l)).slice(-3))}; gateway: ${JSON.stringify(gwLog)}`
  }

  await waitFor(() => stored() >= 4, step('4 frames online'), STEP_MS)
  // 1. WiFi gone for 60 s.
  const dropAt = board.now
  board.wifiDrop(60_000)
  await waitFor(() => board.now > dropAt + 61_000, step('60 s offline'), STEP_MS)
  const offlineStored = st().uplink!.stored
  await waitFor(() => board.now > dropAt + 65_000 && drained(), step('reconnect and backlog drained after the WiFi drop'), DRAIN_MS)
  // 2. Gateway restart (graceful stop, down for ~5 virtual s, same ports and data).
  const before = stored()
  await gw.restart(5000 / SPEED)
  await waitFor(() => stored() > before + 5 && drained(), step('frames after the gateway restart'), DRAIN_MS)
  // 3. Reboot while offline: frames made offline wait in flash for the next boot.
  const boot1 = st().boot!
  const drop2 = board.now
  board.wifiDrop(40_000)
  await waitFor(() => board.now > drop2 + 10_000, step('10 s offline before the reboot'), STEP_MS)
  board.boot()
  await waitFor(() => st().up && st().boot === boot1 + 1, step('reboot'), STEP_MS)
  await waitFor(() => board.now > drop2 + 41_000 && drained() && stored() > 0, step('backlog of the previous boot delivered'), DRAIN_MS)
  // 4. Brown-out while offline: the next flash write (a frame into the ring) is cut.
  const brownOutBoot = st().boot!
  const drop3 = board.now
  board.wifiDrop(30_000)
  await waitFor(() => board.now > drop3 + 5_000, step('5 s offline'), STEP_MS)
  board.brownOut(0.5)
  await waitFor(() => rig.lines.some((l) => /brown-out: rebooting/.test(l)), step('brown-out reboot'), STEP_MS)
  await waitFor(() => st().up && st().boot! > brownOutBoot, step('boot after the brown-out'), STEP_MS)
  await waitFor(() => board.now > drop3 + 31_000 && drained(), step('everything delivered after the brown-out'), DRAIN_MS)
  const endSeq = st().seq!
  await waitFor(() => gw.store.frames.some((f) => f.meta.seq >= endSeq - 1), step('the last frames stored'), DRAIN_MS)
  const status = st()
  await stop()

  const verifyErrors: string[] = []
  const frames: ScenarioResult['frames'] = []
  for (const f of gw.store.frames) {
    try {
      const d = verifyFrame(f.bytes, key)
      const p = d.payload
      frames.push({ seq: p.seq, boot: p.boot, bytes: f.bytes.length, flags: p.flags, dropped: p.dropped, ecgN: (p.ecg as ArrayLike<number> | undefined)?.length ?? 0, ppgN: (p.red as ArrayLike<number> | undefined)?.length ?? 0, batteryMv: p.batteryMv })
    } catch (e) {
      verifyErrors.push((e as Error).message)
    }
  }
  const boots = [...new Set(frames.map((f) => f.boot))].sort((a, b) => a - b)
  return { id, key, rig, gw, frames, verifyErrors, offlineStored, duplicateAppends: gw.store.appends - gw.store.frames.length, boots, brownOutBoot, status, virtualMs: board.now, log: rig.lines }
}

/** Sequence numbers missing inside one boot's range (seq blocks skip between boots by design). */
export function gapsByBoot(frames: ScenarioResult['frames']): Map<number, number[]> {
  const out = new Map<number, number[]>()
  const byBoot = new Map<number, number[]>()
  for (const f of frames) (byBoot.get(f.boot) ?? byBoot.set(f.boot, []).get(f.boot)!).push(f.seq)
  for (const [b, seqs] of byBoot) {
    seqs.sort((x, y) => x - y)
    const gaps: number[] = []
    for (let i = 1; i < seqs.length; i++) for (let s = seqs[i - 1]! + 1; s < seqs[i]!; s++) gaps.push(s)
    out.set(b, gaps)
  }
  return out
}

/**
 * What both profiles must show after the scenario (one file per profile, so tap runs the two
 * minute-long scenarios side by side).
 */
export function assertScenario(t: Test, r: ScenarioResult): void {
  t.same(r.verifyErrors, [], 'every stored frame verifies with the registered key')
  // Lower bounds: each step ends when the test sees its condition, polling in real time, so the
  // virtual seconds (one 2 s frame each) run past it by a host-dependent margin.
  t.ok(r.frames.length >= 75, `${r.frames.length} frames stored over ${Math.round(r.virtualMs / 1000)} virtual s`)
  const seqs = r.frames.map((f) => f.seq)
  t.equal(new Set(seqs).size, seqs.length, 'each sequence number stored once')
  t.ok(r.offlineStored >= 27, `frames made during the 60 s drop went to flash (${r.offlineStored})`)
  t.equal(r.boots.length, 3, `frames from 3 boots: the first, after the reboot, after the brown-out (${r.boots.join(', ')})`)
  // Sequence numbers of a later boot are all above those of earlier boots: never reused.
  for (let i = 1; i < r.boots.length; i++) {
    const prevMax = Math.max(...r.frames.filter((f) => f.boot === r.boots[i - 1]).map((f) => f.seq))
    const curMin = Math.min(...r.frames.filter((f) => f.boot === r.boots[i]).map((f) => f.seq))
    t.ok(curMin > prevMax, `boot ${r.boots[i]} starts at seq ${curMin}, above boot ${r.boots[i - 1]}'s last ${prevMax}`)
  }
  for (const [boot, gaps] of gapsByBoot(r.frames)) t.same(gaps, [], `boot ${boot}: no sequence number missing`)
  // Two seconds of 128 sps ECG per frame (DEFAULTS), the window's samples and no gap.
  t.ok(r.frames.every((f) => f.ecgN === 256), `two seconds of 128 sps ECG in every frame (${[...new Set(r.frames.map((f) => f.ecgN))].join(', ')})`)
  t.ok(r.frames.filter((f) => f.ppgN >= 95 && f.ppgN <= 105).length >= r.frames.length - 3, 'PPG (50 sps) in the frames')
  t.ok(r.frames.every((f) => f.batteryMv !== undefined && f.batteryMv > 3300 && f.batteryMv < 4300), 'battery voltage reported')
  t.equal(r.status.sampler!.missed, 0, 'no ECG sample missed')
  t.equal(r.status.sampler!.overruns, 0, 'no window overrun')
  t.comment(`figures: ${Math.round(r.frames.reduce((n, f) => n + f.bytes, 0) / r.frames.length)} bytes/frame; duplicate deliveries acknowledged without storing: ${r.duplicateAppends}; JsVars ${r.status.mem!.usage}/${r.status.mem!.total}`)
}
