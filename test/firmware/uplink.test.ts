import t, { type Test } from 'tap'
import { MqttClient } from '../../firmware/mqtt.ts'
import { FlashRing } from '../../firmware/store.ts'
import { Uplink, PACE_MS } from '../../firmware/uplink.ts'
import { dialNode, MemStorage } from './helpers/espruino-env.ts'
import { proxyTo, startAedes } from './helpers/aedes.ts'
import { waitFor } from '../helpers/wait.ts'

/** Paces frames like a board making them over time (not a wait for anything). */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A broker recording the frames published to it, payloads as latin1 strings, in arrival order. */
async function broker(t: Test) {
  const { broker: b, port } = await startAedes(t)
  const got: string[] = []
  b.on('publish', (p, client) => {
    if (client && p.topic.endsWith('/frames')) got.push(p.payload.toString('latin1'))
  })
  return { b, got, port }
}

/** One "board": ring over the given flash, MQTT client, uplink; like main.ts wires them. */
function board(st: MemStorage, port: number) {
  const ring = new FlashRing(st, { prefix: 'q', segments: 4, segSize: 4096, maxRecords: 64 })
  ring.open()
  let uplink: Uplink
  const mq = new MqttClient({
    clientId: 'DEV', credentials: (cb) => cb('DEV', 'pw'),
    dial: (onOpen) => dialNode('127.0.0.1', port, onOpen),
    keepAliveS: 5, backoffMinMs: 20, backoffMaxMs: 100, maxPacket: 8192,
    onConnect: () => uplink.onConnect(), onClose: () => uplink.onClose(), onAck: (id) => uplink.onAck(id),
  })
  uplink = new Uplink(mq, ring, 'mhealth/dev/DEV/frames', 4)
  return { ring, mq, uplink }
}

const frame = (seq: number) => `seq=${seq};` + String.fromCharCode(...Array.from({ length: 200 }, (_, i) => (i + seq) & 255))
const seqOf = (s: string) => Number(/^seq=(\d+);/.exec(s)![1])

t.test('WiFi drop: frames made offline go to flash and all arrive after reconnect, none lost', async (t) => {
  const br = await broker(t)
  const proxy = await proxyTo(t, br.port)
  const st = new MemStorage()
  const d = board(st, proxy.port)
  t.teardown(() => d.mq.stop())
  d.mq.start()
  await waitFor(() => d.mq.connected, 'connect', 20_000)
  let seq = 0
  for (; seq < 10; seq++) {
    d.uplink.submit(frame(seq))
    await sleep(5)
  }
  // All online frames acknowledged first, so the ring then holds exactly the offline ones
  // (an unacknowledged frame would move to flash too: the next test covers that).
  await waitFor(() => d.uplink.stats.acked === 10, 'the 10 online frames acknowledged', 20_000)
  t.equal(d.ring.count, 0, 'nothing in flash while online with room in the window')
  proxy.cut(false) // link down, reconnects refused
  await waitFor(() => !d.mq.connected, 'link loss noticed', 20_000)
  for (; seq < 40; seq++) d.uplink.submit(frame(seq))
  t.equal(d.ring.count, 30, 'the 30 frames made offline are in flash')
  proxy.up = true
  // Live frames keep coming while the backlog drains.
  for (; seq < 60; seq++) {
    d.uplink.submit(frame(seq))
    await sleep(10)
  }
  await waitFor(() => d.ring.count === 0 && d.uplink.n === 0, 'backlog drained and all acked', 20_000)
  const seqs = new Set(br.got.map(seqOf))
  t.same([...seqs].sort((a, b) => a - b), Array.from({ length: 60 }, (_, i) => i), 'every frame arrived')
  t.ok(br.got.every((g) => g === frame(seqOf(g))), 'byte-exact')
  t.equal(d.ring.takeDropped(), 0)
})

t.test('reboot while offline: frames in flash are delivered by the next boot', async (t) => {
  const br = await broker(t)
  const proxy = await proxyTo(t, br.port)
  proxy.up = false
  const st = new MemStorage()
  const d1 = board(st, proxy.port)
  d1.mq.start()
  for (let s = 0; s < 15; s++) d1.uplink.submit(frame(s))
  d1.mq.stop() // power loss: RAM gone, flash stays
  proxy.up = true
  const d2 = board(st, proxy.port)
  t.teardown(() => d2.mq.stop())
  t.equal(d2.ring.count, 15, 'the new boot finds 15 frames in flash')
  d2.mq.start()
  await waitFor(() => d2.ring.count === 0, 'drained', 20_000)
  t.same(br.got.map(seqOf), Array.from({ length: 15 }, (_, i) => i), 'in order, oldest first, once each')
})

/** An always-connected publisher that records what it is given (packet IDs from 1), and an empty flash ring. */
function recordingUplinkParts() {
  const sent: string[] = []
  let next = 1
  const fake = { connected: true, publish: (_t: string, p: string) => { sent.push(p); return next++ }, forget: () => {} }
  const ring = new FlashRing(new MemStorage(), { prefix: 'q', segments: 4, segSize: 4096, maxRecords: 64 })
  ring.open()
  return { sent, fake, ring }
}

t.test('a long backlog does not starve live frames: one window slot is kept for them, and the backlog is paced', async (t) => {
  const { sent, fake, ring } = recordingUplinkParts()
  for (let s = 0; s < 30; s++) ring.push(frame(s))
  const u = new Uplink(fake, ring, 'x', 4)
  u.onConnect()
  t.same(sent.map(seqOf), [0], 'one backlog frame at once')
  await sleep(PACE_MS / 2)
  t.same(sent.map(seqOf), [0], 'the next not before PACE_MS')
  await sleep(2 * PACE_MS + 60)
  t.same(sent.map(seqOf), [0, 1, 2], 'backlog takes window - 1 slots, one per PACE_MS')
  u.submit(frame(1000))
  t.same(sent.map(seqOf), [0, 1, 2, 1000], 'a live frame goes out at once, ahead of 27 waiting backlog frames')
  u.onAck(1)
  await sleep(PACE_MS + 60)
  t.same(sent.map(seqOf), [0, 1, 2, 1000], 'the live slot is not given to the backlog while a live frame is in flight')
  u.onAck(4)
  t.same(sent.map(seqOf), [0, 1, 2, 1000, 3], 'backlog resumes oldest first (its pace already waited out), still leaving the live slot')
  u.submit(frame(1001))
  t.equal(seqOf(sent[sent.length - 1]!), 1001)
})

t.test('held (power saver): a flush sends the whole window at once, unpaced', async (t) => {
  const { sent, fake, ring } = recordingUplinkParts()
  const u = new Uplink(fake, ring, 'x', 4)
  u.hold = true
  for (let s = 0; s < 6; s++) u.submit(frame(s))
  t.same(sent, [], 'held: nothing sent while streaming')
  u.flush()
  await sleep(30)
  t.same(sent.map(seqOf), [0, 1, 2, 3], 'the window filled without waiting for the pace')
})

t.test('gateway refuses connections for a while (restart): nothing lost', async (t) => {
  const br = await broker(t)
  const proxy = await proxyTo(t, br.port)
  const d = board(new MemStorage(), proxy.port)
  t.teardown(() => d.mq.stop())
  d.mq.start()
  await waitFor(() => d.mq.connected, 'connect', 20_000)
  // Publish into a link whose PUBACKs are black-holed, then kill it: the frames were
  // delivered, but unacknowledged ones must be sent again (at least once). The window is
  // 4: frames 0-3 go out live, frame 4 waits in flash.
  proxy.blackholeDown = true
  for (let s = 0; s < 5; s++) d.uplink.submit(frame(s))
  await waitFor(() => br.got.length === 4, 'the broker to get the 4 frames of the window', 20_000)
  proxy.blackholeDown = false
  proxy.cut(false)
  await waitFor(() => !d.mq.connected, 'link loss noticed', 20_000)
  for (let s = 5; s < 12; s++) d.uplink.submit(frame(s))
  proxy.up = true
  await waitFor(() => d.ring.count === 0 && d.uplink.n === 0, 'drained', 20_000)
  const seqs = new Set(br.got.map(seqOf))
  t.equal(seqs.size, 12, 'all 12 arrived')
  const twice = [...seqs].filter((s) => br.got.filter((g) => seqOf(g) === s).length > 1).sort((a, b) => a - b)
  t.same(twice, [0, 1, 2, 3], 'sent twice: exactly the frames whose PUBACK was lost (the gateway dedups by seq)')
  t.equal(br.got.length, 16, 'no other duplicates')
})
