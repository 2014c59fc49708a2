/**
 * End to end on the virtual board: SE-provisioned firmware streams signed frames over its
 * own MQTT client; WiFi drops for 60 s; after reconnecting, every frame made in between
 * arrives, verifies, and no sequence number is missing.
 */
import t from 'tap'
import { nodeHash } from '../../protocol/node/hash-node.ts'
import { deviceIdFromPublicKey } from '../../protocol/portable/device-id.ts'
import type { DeviceKey } from '../../protocol/node/verify.ts'
import { createBoardRig, advanceUntil } from '../../hardware-sim/rig.ts'
import { startMiniGateway } from './helpers/mini-gateway.ts'

const waitFor = async (cond: () => boolean, what: string, ms = 60_000) => {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting for ' + what)
    await new Promise((r) => setTimeout(r, 20))
  }
}

t.test('stream, drop WiFi for 60 s, reconnect: every frame arrives and verifies', async (t) => {
  const rig = await createBoardRig({ seed: 21, boot: false })
  t.teardown(() => rig.close())
  const { board } = rig
  board.boot()
  board.repl('mhPubKey()')
  advanceUntil(board, () => rig.lines.some((l) => l.startsWith('PUBKEY')), 3000)
  const pub = new Uint8Array(Buffer.from(rig.lines.find((l) => l.startsWith('PUBKEY '))!.slice(7), 'hex'))
  const id = deviceIdFromPublicKey(nodeHash, pub)
  const key: DeviceKey = { profile: 'se', publicKey: pub }
  const gw = await startMiniGateway(new Map([[id, key]]))
  t.teardown(() => gw.close())
  const cfg = { id, profile: 'se', slot: 0, wifi: { ssid: 'clinic', pass: 'password1' }, gw: { host: '127.0.0.1', mqttPort: gw.mqttPort, httpPort: gw.httpPort } }
  board.repl(`require("Storage").writeJSON("mh.cfg", ${JSON.stringify(cfg)})`)
  board.boot()
  const running = board.run({ speed: 10 })
  t.teardown(async () => {
    board.stop()
    await running
  })
  const ok = () => gw.arrivals.filter((a) => a.frame)
  await waitFor(() => ok().length >= 10, '10 frames online')
  t.ok(gw.authLog.some((a) => a.ok && a.id === id), 'CONNECT accepted with a fresh SE-signed auth token')
  const dropAt = board.now
  board.wifiDrop(60_000)
  await waitFor(() => board.now > dropAt + 62_000, '60 s offline')
  const status1 = JSON.parse(String(board.repl('mhStatus()').value))
  t.ok(status1.uplink.stored >= 55, `frames made offline went to flash (${status1.uplink.stored})`)
  const offlineEnd = board.now
  await waitFor(() => {
    const s = JSON.parse(String(board.repl('mhStatus()').value))
    return s.connected && s.backlog === 0 && board.now > offlineEnd + 20_000
  }, 'reconnect and backlog drained', 120_000)
  board.stop()
  await running

  if (process.env.RIG_DEBUG) console.error(rig.lines.join('\n'))
  const bad = gw.arrivals.filter((a) => a.error)
  t.same(bad.map((a) => a.error), [], 'every frame verifies')
  const seqs = ok().map((a) => a.frame!.payload.seq)
  const unique = [...new Set(seqs)].sort((a, b) => a - b)
  const first = unique[0]!
  const last = unique[unique.length - 1]!
  t.same(unique, Array.from({ length: last - first + 1 }, (_, i) => first + i), `no sequence number missing (${first}..${last})`)
  t.ok(unique.length >= 90, `${unique.length} frames over ~${Math.round((board.now - dropAt) / 1000) + 10} s`)
  const dups = seqs.length - unique.length
  t.ok(dups <= 4, `duplicates only from PUBACKs lost in the drop (${dups}); the gateway dedups by seq`)
  const frames = ok().map((a) => a.frame!.payload)
  t.ok(frames.every((f) => f.ecgHz === 250 && (f.ecg as ArrayLike<number>).length === 250), 'one second of 250 Hz ECG per frame')
  t.ok(frames.some((f) => f.red && f.red.length >= 90), 'PPG included')
  t.ok(frames.every((f) => f.dropped === 0), 'nothing dropped')
  const synced = frames.filter((f) => (f.flags & 4) === 0)
  t.ok(synced.length >= frames.length - 2, 'frames carry synced time')
  const s = JSON.parse(String(board.repl('mhStatus()').value))
  const bytes = ok().reduce((n, a) => n + a.bytes.length, 0) / seqs.length
  t.comment(`figures: ${Math.round(bytes)} bytes/frame (= bytes/s at 1 s windows); missed ECG samples ${s.sampler.missed}; max tick lateness ${s.sampler.maxLateMs.toFixed(1)} ms; JsVars ${s.mem.usage}/${s.mem.total}; sign errors ${s.stats.signErrors}`)
  t.equal(s.sampler.overruns, 0, 'the sampler never overran a window')
})
