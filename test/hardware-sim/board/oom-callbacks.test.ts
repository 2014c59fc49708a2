/**
 * Issue 12's matrix: an out-of-memory in each callback of the firmware's pipeline, on the virtual
 * board running the built bundle against the real gateway. board.outOfMemoryIn() makes the next
 * callbacks whose code contains a marker (method names survive minification) run out at their
 * first allocation, which abandons them as the interpreter does. For each: the fault happened,
 * a frame is made again within two windows of it, every frame the board counted as acknowledged
 * is in the gateway's store once, and mhStatus() counts the out-of-memory.
 */
import t from 'tap'
import { createBoardRig, provisionRig, type RigStatus } from '../../../hardware-sim/rig.ts'
import { startRealGateway } from '../../../testing/real-gateway.ts'
import { DEFAULTS } from '../../../firmware/config.ts'

const SPEED = 20
const WINDOW_MS = DEFAULTS.windowS * 1000

async function until(cond: () => boolean, realMs: number): Promise<boolean> {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > realMs) return false
    await new Promise((r) => setTimeout(r, 5))
  }
  return true
}

/**
 * `alloc`: out at the first allocation the simulator tracks (typed arrays, frame-sized strings),
 * so the callback stops part way; `start`: out before its first statement (callbacks that
 * make no such allocation, which on the interpreter still need vars for their scope).
 */
const CASES: Array<{ name: string; marker: string; count: number; at: 'alloc' | 'start' }> = [
  { name: 'the sampler tick (drain interval)', marker: '.drain()', count: 1, at: 'alloc' },
  { name: 'the framer (a full window handed on)', marker: '.onWindow(', count: 1, at: 'start' },
  { name: 'the signer (seal)', marker: '.seal(', count: 1, at: 'alloc' },
  { name: 'the MQTT send (COSE string to a publish or the flash ring)', marker: '.sent(', count: 1, at: 'alloc' },
  { name: 'MQTT receive (PUBACKs and control messages)', marker: '.lastRx=Date.now()', count: 3, at: 'start' },
  { name: 'the watchdog tick', marker: '.watch(', count: 2, at: 'start' },
  { name: 'every drain for 3 s (a run of them)', marker: '.drain()', count: 16, at: 'alloc' },
]

for (const c of CASES) {
  t.test(`out of memory in ${c.name}: frames again within 2 windows, nothing acknowledged lost, reported`, async (t) => {
    const gw = await startRealGateway()
    t.teardown(() => gw.close())
    const rig = await createBoardRig({ seed: 31, se: false })
    t.teardown(() => rig.close())
    await provisionRig(rig, { gatewayUrl: gw.httpUrl, adminToken: gw.adminToken, mqttPort: gw.mqttPort, profile: 'bare' })
    const { board } = rig
    const lines: string[] = []
    board.console.on('line', (l: string) => lines.push(`${(board.now / 1000).toFixed(2)} ${l}`))
    board.boot()
    const running = board.run({ speed: SPEED })
    t.teardown(async () => {
      board.stop()
      await running
    })
    const status = (): RigStatus & { faults: { memory: number } } => rig.status()! as never
    t.ok(await until(() => gw.store.frames.length >= 3, 60_000), 'streaming before the fault')

    const before = board.memory().interrupts
    board.outOfMemoryIn(c.marker, c.count, c.at)
    let faultAt = -1
    let lastFaultAt = -1
    await until(() => {
      const n = board.memory().interrupts
      if (n > before && faultAt < 0) faultAt = board.now
      if (n >= before + c.count) lastFaultAt = board.now
      return lastFaultAt >= 0 || board.now > (faultAt >= 0 ? faultAt : Infinity) + 10 * WINDOW_MS
    }, 60_000)
    t.ok(faultAt >= 0, `the callback ran out of memory (${board.memory().interrupts - before} interrupts)`, { console: lines.slice(-20) })
    if (faultAt < 0) return
    const end = lastFaultAt >= 0 ? lastFaultAt : board.now
    const madeAtEnd = status().stats.frames
    let resumedAt = -1
    await until(() => {
      if (status().stats.frames > madeAtEnd) resumedAt = board.now
      return resumedAt >= 0 || board.now > end + 5 * WINDOW_MS
    }, 60_000)
    t.ok(resumedAt >= 0 && resumedAt - end <= 2 * WINDOW_MS + 500, `a frame again ${resumedAt < 0 ? 'never' : `${Math.round(resumedAt - end)} virtual ms after the fault`}`, { console: lines.slice(-30) })

    // Reported once the watchdog has read the error flags (a window or two later at most).
    await until(() => {
      const s = status()
      return (!!s.connected && s.backlog === 0 && (s.uplink?.acked ?? 0) >= madeAtEnd && s.faults.memory >= 1) || board.now > end + 10 * WINDOW_MS
    }, 30_000)
    const s = status()
    const seqs = gw.store.frames.map((f) => f.meta.seq)
    t.equal(new Set(seqs).size, seqs.length, 'each sequence number stored once')
    t.ok(gw.store.frames.length >= (s.uplink?.acked ?? Infinity), `acknowledged ${s.uplink?.acked}, stored ${gw.store.frames.length}`)
    t.ok(s.faults.memory >= 1, `mhStatus() counts the out-of-memory (faults.memory ${s.faults.memory})`)
    t.comment(`${c.name}: ${board.memory().interrupts - before} interrupts, frame again ${Math.round(resumedAt - end)} ms after, faults ${JSON.stringify(s.faults)}`)
  })
}
