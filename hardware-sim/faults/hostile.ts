/**
 * A hostile device: real MQTT clients that attack the gateway the way a
 * compromised or broken board would. Each attack reports what the gateway
 * did (CONNACK code, PUBACKs, NACKs on the control topic, disconnection), so
 * tests and `mhealth sim attack` can assert that nothing bad got through.
 */
import mqtt, { type MqttClient } from 'mqtt'
import { signFrame, signAuthToken, signPayloadBytes, type DeviceSigningKey } from '../../protocol/node/sign.ts'
import { syntheticPayload } from '../../protocol/node/synthetic.ts'
import { CborWriter } from '../../protocol/portable/cbor.ts'
import { encodePayload } from '../../protocol/portable/frame.ts'
import { buildSign1, buildMac0 } from '../../protocol/portable/cose.ts'
import { generateKey } from '../../protocol/node/keys.ts'
import { AdminClient, AdminApiError, registration } from '../../protocol/node/admin-client.ts'

export const ATTACKS = ['tampered', 'replay', 'forged-id', 'stale-token', 'replayed-token', 'malformed', 'oversized', 'wrong-topic', 'flood'] as const
export type Attack = (typeof ATTACKS)[number]

/** What each attack must get from a correct gateway (asserted by test/hardware-sim/hostile.test.ts). */
export const EXPECTED: Record<Attack, string> = {
  tampered: 'frame NACKed with reason signature, not stored',
  replay: 'first copy stored, the repeats acknowledged as duplicates (mhealth_frames_duplicate_total), stored once',
  'forged-id': 'CONNACK 4 (bad-token): the token is not signed by the claimed device',
  'stale-token': 'CONNACK 4 (token-out-of-window)',
  'replayed-token': 'CONNACK 4 (token-replayed): the counter was already used',
  malformed: 'each frame NACKed (cbor/header/schema), none stored',
  oversized: 'connection dropped at the packet limit, nothing stored',
  'wrong-topic': "publish to another device's topic refused and the connection closed [MQTT-3.3.5-2]",
  flood: 'held to the per-device rate by the token bucket (mhealth_rate_limited_total; its socket is left unread), past limits.maxThrottleMs NACKed rate-limit; other devices unaffected',
}

/**
 * Registers a fresh attacker (P-256, as a board with a secure element would be) and a victim
 * (bare) with the gateway's admin API. The attacker is a real, registered device gone bad.
 */
export async function registerAttackers(gatewayUrl: string, adminToken: string): Promise<{ attacker: DeviceSigningKey; victim: DeviceSigningKey; counter: () => number }> {
  const attacker = generateKey('p256') as DeviceSigningKey & { publicKey: Uint8Array }
  const victim = generateKey('hmac') as DeviceSigningKey & { secret: Uint8Array }
  const api = new AdminClient(gatewayUrl, adminToken)
  for (const [id, body] of [
    [attacker.id, registration(attacker.id, { profile: 'se', publicKey: attacker.publicKey }, 'attacker')],
    [victim.id, registration(victim.id, { profile: 'bare', secret: victim.secret }, 'victim')],
  ] as const) {
    await api.register(body).catch((e: Error) => {
      if (e instanceof AdminApiError) throw new Error(`registering ${id} failed (HTTP ${e.status}): ${e.body.slice(0, 200)}`)
      throw e
    })
  }
  let n = 0
  return { attacker, victim, counter: () => ++n }
}

export interface AttackReport {
  attack: Attack
  /** CONNACK return code when the connection was refused (3.1.1: 2 id rejected, 4 bad credentials, 5 not authorized). */
  refusedWith?: number
  connected: boolean
  published: number
  acked: number
  nacks: Array<{ seq?: number; reason: string }>
  disconnected: boolean
  notes: string[]
}

export interface AttackOptions {
  /** mqtt://host:port of the gateway. */
  url: string
  /** The attacker's own registered key (a real device gone bad). */
  key: DeviceSigningKey
  /** Another registered device the attacker tries to impersonate (forged-id). */
  victimId?: string
  /** Next auth counter to use (the attacker keeps its own counter honest except in replayed-token). */
  counter: () => number
  /** For flood: how many frames and how fast. Bounded by design. */
  flood?: { frames: number; perSecond: number }
  /** Largest packet to try in `oversized`. */
  oversizeBytes?: number
  /** Clock the tokens are stamped with. */
  now?: () => number
}

type Conn = { client: MqttClient; nacks: AttackReport['nacks']; closed: { value: boolean } }

async function connectAs(o: AttackOptions, clientId: string, password: Uint8Array): Promise<Conn | { refused: number }> {
  const nacks: AttackReport['nacks'] = []
  const closed = { value: false }
  return new Promise((resolve) => {
    const client = mqtt.connect(o.url, {
      clientId,
      username: clientId,
      password: Buffer.from(password),
      protocolVersion: 4,
      clean: false,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    })
    client.on('message', (_topic, msg) => {
      try {
        const m = JSON.parse(msg.toString())
        if (m.t === 'nack') nacks.push({ seq: m.seq, reason: String(m.reason) })
      } catch {
        nacks.push({ reason: 'unparseable control message' })
      }
    })
    client.setMaxListeners(0)
    client.on('close', () => (closed.value = true))
    client.once('connect', () => {
      client.subscribe(`mhealth/dev/${clientId}/control`, { qos: 1 }, () => resolve({ client, nacks, closed }))
    })
    client.once('error', (err: Error & { code?: number }) => {
      client.end(true)
      resolve({ refused: typeof err.code === 'number' ? err.code : -1 })
    })
  })
}

function publish(c: Conn, topic: string, payload: Uint8Array, timeoutMs = 3000): Promise<boolean> {
  if (c.closed.value) return Promise.resolve(false)
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer)
      c.client.off('close', onClose)
      resolve(ok)
    }
    const onClose = () => done(false) // the gateway dropped us: no PUBACK is coming
    const timer = setTimeout(() => done(false), timeoutMs)
    c.client.once('close', onClose)
    c.client.publish(topic, Buffer.from(payload), { qos: 1 }, (err) => done(!err))
  })
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function runAttack(attack: Attack, o: AttackOptions): Promise<AttackReport> {
  const now = o.now ?? Date.now
  const r: AttackReport = { attack, connected: false, published: 0, acked: 0, nacks: [], disconnected: false, notes: [] }
  const id = o.key.id
  const token = (iatMs = now(), counter = o.counter()) => signAuthToken(o.key, { iatMs, counter })
  let password = token()
  let clientId = id
  if (attack === 'forged-id') {
    if (!o.victimId) throw new Error('forged-id needs victimId')
    clientId = o.victimId // our own key's token, someone else's ID
  }
  if (attack === 'stale-token') password = token(now() - 24 * 3600_000)
  let replayedCounter = 0
  if (attack === 'replayed-token') {
    replayedCounter = o.counter()
    password = token(now(), replayedCounter)
    const first = await connectAs(o, id, password)
    if ('refused' in first) {
      r.notes.push(`first connection already refused (${first.refused})`)
    } else {
      first.client.end(true)
      await settle(100)
    }
  }
  const c = await connectAs(o, clientId, password)
  if ('refused' in c) {
    r.refusedWith = c.refused
    return r
  }
  r.connected = true
  const topic = `mhealth/dev/${clientId}/frames`
  const frameAt = (seq: number) => signFrame(o.key, syntheticPayload(id, { seconds: 1, seq, seed: 7, t0: now() }))
  // Long enough for a frame the rate limit holds back (gateway limits.maxThrottleMs, 5 s by default).
  const send = async (bytes: Uint8Array, t = topic) => {
    r.published++
    if (await publish(c, t, bytes, 12_000)) r.acked++
  }
  const seq0 = Math.floor(now() / 1000) * 1000 // fresh sequence numbers on every run
  switch (attack) {
    case 'tampered': {
      // Signed, then one ECG sample changed: still well-formed CBOR and COSE, wrong signature.
      const p = syntheticPayload(id, { seconds: 1, seq: seq0, seed: 7, t0: now() })
      const good = signFrame(o.key, p)
      const sig = good.subarray(good.length - (o.key.type === 'p256' ? 64 : 32))
      const ecg = (p.ecg as number[]).slice()
      ecg[10] = ecg[10]! ^ 1
      const body = new Uint8Array(encodePayload(new CborWriter(2048), { ...p, ecg }))
      await send(o.key.type === 'p256' ? buildSign1(id, body, sig) : buildMac0(id, body, sig))
      break
    }
    case 'replay': {
      const f = frameAt(seq0 + 1)
      await send(f)
      await send(f)
      await send(f)
      r.notes.push('the same frame sent three times')
      break
    }
    case 'malformed': {
      await send(new Uint8Array([0xd2, 0x84, 0x40])) // truncated COSE
      await send(new TextEncoder().encode('{"json": "not a frame"}'))
      await send(signPayloadBytes(o.key, new Uint8Array([0xa1, 0x00, 0x01]))) // well signed, schema-invalid payload
      break
    }
    case 'oversized': {
      await send(new Uint8Array(o.oversizeBytes ?? 300_000).fill(0x41))
      break
    }
    case 'wrong-topic': {
      await send(frameAt(seq0 + 2), `mhealth/dev/${o.victimId ?? 'aaaaaaaaaaaaaaaaa'}/frames`)
      await send(frameAt(seq0 + 3), '$SYS/broker/frames')
      break
    }
    case 'flood': {
      const f = o.flood ?? { frames: 1000, perSecond: 1000 }
      const gap = 1000 / f.perSecond
      const pending: Array<Promise<void>> = []
      for (let i = 0; i < f.frames && !c.closed.value; i++) {
        if (c.closed.value) break
        pending.push(send(frameAt(seq0 + 10 + i)))
        if (gap >= 1) await settle(gap)
      }
      await Promise.all(pending)
      break
    }
    default:
      break
  }
  await settle(300)
  r.nacks = c.nacks
  r.disconnected = c.closed.value
  c.client.end(true)
  return r
}
