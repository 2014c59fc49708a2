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

const SPEED = 20

export async function waitFor(cond: () => boolean, what: string, realMs = 60_000): Promise<void> {
  const t0 = Date.now()
  if (process.env.RIG_DEBUG) console.error(`[${new Date().toISOString()}] waiting: ${what}`)
  while (!cond()) {
    if (Date.now() - t0 > realMs) throw new Error('timed out waiting for ' + what)
    await new Promise((r) => setTimeout(r, 20))
  }
}

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

  await waitFor(() => stored() >= 4, '4 frames online')
  // 1. WiFi gone for 60 s.
  const dropAt = board.now
  board.wifiDrop(60_000)
  await waitFor(() => board.now > dropAt + 61_000, '60 s offline')
  const offlineStored = st().uplink!.stored
  await waitFor(() => board.now > dropAt + 65_000 && drained(), 'reconnect and backlog drained after the WiFi drop', 90_000)
  // 2. Gateway restart (graceful stop, down for ~5 virtual s, same ports and data).
  const before = stored()
  await gw.restart(5000 / SPEED)
  await waitFor(() => stored() > before + 5 && drained(), 'frames after the gateway restart', 90_000)
  // 3. Reboot while offline: frames made offline wait in flash for the next boot.
  const boot1 = st().boot!
  const drop2 = board.now
  board.wifiDrop(40_000)
  await waitFor(() => board.now > drop2 + 10_000, '10 s offline before the reboot')
  board.boot()
  await waitFor(() => st().up && st().boot === boot1 + 1, 'reboot')
  await waitFor(() => board.now > drop2 + 41_000 && drained() && stored() > 0, 'backlog of the previous boot delivered', 90_000)
  // 4. Brown-out while offline: the next flash write (a frame into the ring) is cut.
  const brownOutBoot = st().boot!
  const drop3 = board.now
  board.wifiDrop(30_000)
  await waitFor(() => board.now > drop3 + 5_000, '5 s offline')
  board.brownOut(0.5)
  await waitFor(() => rig.lines.some((l) => /brown-out: rebooting/.test(l)), 'brown-out reboot')
  await waitFor(() => st().up && st().boot! > brownOutBoot, 'boot after the brown-out')
  await waitFor(() => board.now > drop3 + 31_000 && drained(), 'everything delivered after the brown-out', 90_000)
  const endSeq = st().seq!
  await waitFor(() => gw.store.frames.some((f) => f.meta.seq >= endSeq - 1), 'the last frames stored', 90_000)
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
  t.ok(r.frames.length >= 75, `${r.frames.length} frames stored over ${Math.round(r.virtualMs / 1000)} virtual s`)
  const seqs = r.frames.map((f) => f.seq)
  t.equal(new Set(seqs).size, seqs.length, 'each sequence number stored once')
  t.ok(r.offlineStored >= 27, `frames made during the 60 s drop went to flash (${r.offlineStored})`)
  t.ok(r.boots.length >= 3, `frames from ${r.boots.length} boots (reboot and brown-out)`)
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
