/**
 * The built firmware on the virtual board against the real gateway, through a brief
 * out-of-memory (squeezeMemory: 60 free JsVars for 30 virtual s), as the real interpreter run
 * saw it (../shared/docs/espruino-facts.md: an out-of-memory inside a callback abandons it,
 * and whatever it was to release or call next never happens).
 *
 * The simulator charges what the firmware's frame path allocates (E.toString's frame string, the
 * socket's send buffer) against the squeezed room, so callbacks are interrupted here as they
 * were on the interpreter: the drain interval is removed, a signer callback never runs. The
 * firmware recovers by itself: the watchdog restarts a drain timer that stopped, and a job
 * whose callback never ran is abandoned at the next window (issue 12).
 */
import t from 'tap'
import { createBoardRig, provisionRig, type RigStatus } from '../../../hardware-sim/rig.ts'
import { startRealGateway } from '../../../testing/real-gateway.ts'
import { DEFAULTS } from '../../../firmware/config.ts'

const SPEED = 10
const WINDOW_MS = DEFAULTS.windowS * 1000
const SQUEEZE_MS = 30_000

/** Real-time wait for a condition, giving up (false) after `realMs`. */
async function until(cond: () => boolean, realMs: number): Promise<boolean> {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > realMs) return false
    await new Promise((r) => setTimeout(r, 10))
  }
  return true
}

t.test('after a memory squeeze the board streams again within 2 windows, nothing acknowledged is lost, and mhStatus() reports it', async (t) => {
  const gw = await startRealGateway()
  t.teardown(() => gw.close())
  const rig = await createBoardRig({ seed: 12, se: false })
  t.teardown(() => rig.close())
  await provisionRig(rig, { gatewayUrl: gw.httpUrl, adminToken: gw.adminToken, mqttPort: gw.mqttPort, profile: 'bare' })
  const { board } = rig
  const stamped: string[] = []
  board.console.on('line', (l: string) => stamped.push(`${(board.now / 1000).toFixed(2)} ${l}`))
  board.boot()
  const running = board.run({ speed: SPEED })
  t.teardown(async () => {
    board.stop()
    await running
  })
  const status = (): RigStatus => rig.status()!
  t.ok(await until(() => gw.store.frames.length >= 5, 60_000), 'streaming before the fault')

  const squeezeEnd = board.now + SQUEEZE_MS
  board.squeezeMemory({ freeVars: 60, forMs: SQUEEZE_MS })
  t.ok(await until(() => board.now >= squeezeEnd, 60_000), 'the squeeze lasted its 30 virtual s')
  t.ok(board.memory().interrupts >= 1, `the squeeze interrupted callbacks (${board.memory().interrupts})`)
  const framesAtEnd = status().stats.frames
  // Frames again within two windows of the squeeze ending.
  let resumedAt = -1
  await until(() => {
    if (status().stats.frames > framesAtEnd) resumedAt = board.now
    return resumedAt >= 0 || board.now > squeezeEnd + 10 * WINDOW_MS
  }, 60_000)
  t.ok(resumedAt >= 0 && resumedAt <= squeezeEnd + 2 * WINDOW_MS + 500, `frames again ${resumedAt < 0 ? 'never' : `${Math.round(resumedAt - squeezeEnd)} virtual ms after the squeeze`}`, {
    console: stamped.slice(-40),
    status: JSON.stringify(status()),
  })
  const overrunsAfter = status().sampler?.overruns

  // Everything the board counted as acknowledged is in the gateway's store.
  await until(() => {
    const s = status()
    return !!s.connected && s.backlog === 0
  }, 30_000)
  const s = status()
  const seqs = gw.store.frames.map((f) => f.meta.seq)
  t.equal(new Set(seqs).size, seqs.length, 'each sequence number stored once')
  t.ok(gw.store.frames.length >= (s.uplink?.acked ?? Infinity), `acknowledged ${s.uplink?.acked}, stored ${gw.store.frames.length}`)
  t.equal(s.sampler?.overruns, overrunsAfter, 'no window lost to overruns once streaming resumed')
  const faults = (s as unknown as { faults: { memory: number; timerRestarts: number } }).faults
  t.ok(faults.memory >= 1, `mhStatus() counts the out-of-memory (faults.memory ${faults.memory})`)
  t.comment(`interrupts ${board.memory().interrupts}, faults ${JSON.stringify(faults)}, frames again ${Math.round(resumedAt - squeezeEnd)} ms after the squeeze`)
})
