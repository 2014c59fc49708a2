/**
 * Battery (issue 24, item 7): the power model's figures for the two profiles on a 1,000 mAh
 * cell, and the saver profile on the virtual board: frames kept in flash and published in
 * batches every saverBatchS seconds to a broker.
 */
import t from 'tap'
import net from 'node:net'
import { Aedes } from 'aedes'
import { powerBudget, batteryFor, CURRENTS } from '../../hardware-sim/devices/power.ts'
import { createBoardRig } from '../../hardware-sim/rig.ts'
import { nodeHash } from '../../protocol/node/hash-node.ts'
import { deviceIdFromBytes } from '../../protocol/portable/device-id.ts'
import { DEFAULTS } from '../../firmware/config.ts'

const frame = { windowS: DEFAULTS.windowS, frameBytes: 1517, se: false }

t.test('the model: modem sleep more than doubles the hours; batching trades latency for little more', async (t) => {
  const stream = powerBudget({ kind: 'stream', ...frame })
  const saver = powerBudget({ kind: 'saver', batchS: DEFAULTS.saverBatchS, ...frame })
  const perFrame = powerBudget({ kind: 'saver', batchS: DEFAULTS.windowS, ...frame })
  t.ok(stream.avgMa > 140 && stream.avgMa < 160, `stream ${stream.avgMa.toFixed(1)} mA`)
  t.ok(stream.hours > 5 && stream.hours < 7, `stream ${stream.hours.toFixed(1)} h on 1,000 mAh`)
  t.ok(saver.hours > 2 * stream.hours, `saver ${saver.hours.toFixed(1)} h`)
  t.ok(saver.alarmLatencyS > stream.alarmLatencyS + DEFAULTS.saverBatchS - 1, `latency ${stream.alarmLatencyS} s -> ${saver.alarmLatencyS} s`)
  t.ok(saver.hours - perFrame.hours < 1, 'sending every frame asleep costs under an hour: the interpreter\'s busy CPU is the floor')
  t.equal(stream.parts.interpreter, CURRENTS.interpreterMa[1], 'the busy-polling interpreter is a part of its own')
  const se = powerBudget({ kind: 'stream', ...frame, se: true })
  t.ok(se.parts.se! > 0 && se.avgMa > stream.avgMa, 'the secure element adds its signing time')
  const low = powerBudget({ kind: 'stream', ...frame }, 1000, 'low')
  const high = powerBudget({ kind: 'stream', ...frame }, 1000, 'high')
  t.ok(low.hours > stream.hours && stream.hours > high.hours, 'low/central/high bracket the estimate')
  t.equal(Math.round(batteryFor({ kind: 'stream', ...frame }).runtimeMs / 60_000), Math.round(stream.hours * 60), 'a Battery for the rig runs down in the same hours')
  t.throws(() => powerBudget({ kind: 'saver', batchS: 1, ...frame }), /batchS: expected >= windowS/)
})

t.test('the saver profile on the virtual board: frames go out in batches every saverBatchS', async (t) => {
  t.setTimeout(120_000)
  const broker = await Aedes.createBroker()
  const arrivals: number[] = []
  const server = net.createServer(broker.handle)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  t.teardown(async () => {
    await new Promise<void>((r) => broker.close(() => r()))
    await new Promise<void>((r) => server.close(() => r()))
  })
  const port = (server.address() as net.AddressInfo).port
  const secret = '44'.repeat(32)
  const rig = await createBoardRig({
    seed: 4, se: false,
    config: { id: deviceIdFromBytes(nodeHash, new Uint8Array(10).fill(8)), profile: 'bare', secret, power: 'saver', saverBatchS: 10, wifi: { ssid: 'clinic', pass: 'password1' }, gw: { host: '127.0.0.1', mqttPort: port, httpPort: 1 } },
  })
  t.teardown(() => rig.close())
  broker.on('publish', (packet) => {
    if (packet.topic.endsWith('/frames')) arrivals.push(rig.board.now)
  })
  const running = rig.board.run({ speed: 20 })
  const until = rig.board.now + 42_000
  while (rig.board.now < until) await new Promise((r) => setTimeout(r, 50))
  rig.board.stop()
  await running
  t.ok(arrivals.length >= 10, `${arrivals.length} frames published`)
  // Bursts: frames less than a second apart belong together.
  const bursts: number[][] = []
  for (const a of arrivals) {
    const last = bursts[bursts.length - 1]
    if (last && a - last[last.length - 1]! < 1000) last.push(a)
    else bursts.push([a])
  }
  // About one burst per saverBatchS (a frame made while a burst is still being acknowledged
  // may follow it: the radio is awake then anyway); most frames travel in bursts.
  t.ok(bursts.length >= 3 && bursts.length <= 7, `${bursts.length} bursts in 42 s (${bursts.map((b) => b.length).join(', ')})`)
  const inBursts = bursts.filter((b) => b.length >= 3).reduce((n, b) => n + b.length, 0)
  t.ok(inBursts >= 0.7 * arrivals.length, `${inBursts} of ${arrivals.length} frames in bursts of 3 or more`)
  const starts = bursts.filter((b) => b.length >= 3).map((b) => b[0]!)
  for (let i = 1; i < starts.length; i++) t.ok(starts[i]! - starts[i - 1]! >= 7_000, `batches ${Math.round((starts[i]! - starts[i - 1]!) / 1000)} s apart`)
  const st = rig.status()!
  t.ok((st.uplink as any).flushes >= 3, 'flushed on the saver timer')
  t.equal((st.uplink as any).live, 0, 'never a live publish: everything went through flash')
})
