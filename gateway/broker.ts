/**
 * Aedes with the gateway's policy in its hooks (no fork):
 *  preConnect        remember whether the client ID was empty (Aedes invents one)
 *  authenticate      device token or user password → a Principal, else CONNACK 2/4/5 + log line
 *  authorizePublish  topic ACL; device frames run the ingest pipeline and the
 *                    callback (which Aedes follows with PUBACK) fires only after persist
 *  authorizeSubscribe topic ACL + consent; refusals become SUBACK 0x80
 *  authorizeForward  rejected frames are never forwarded; patient topics re-check consent
 *                    at every delivery, so a revoked consent stops a live subscription at once
 */
import { Aedes, type AedesOptions, type Client, type PublishPacket } from 'aedes'
import { CLINICAL, canPublish, canSubscribe, controlTopic, deviceOfFramesTopic, patientOfAlarmsTopic, patientOfTopic, patientTopic, type Principal } from './acl.ts'
import type { AuthCodec, DeviceKey } from './frame-check.ts'
import { ingestFrame, type DeviceSession, type IngestDeps, type IngestLimits } from './ingest.ts'
import { LIVE_SCOPE, type ConsentPort } from './ledger-port.ts'
import type { Logger } from './log.ts'
import type { GatewayMetrics } from './metrics.ts'
import { TokenBucket } from './rate-limit.ts'
import type { DeviceRegistry } from './registry.ts'

export interface BrokerOptions {
  registry: DeviceRegistry
  auth: AuthCodec
  consent: ConsentPort
  ingest: Omit<IngestDeps, 'control' | 'fanOut' | 'inflight' | 'limits'>
  limits: IngestLimits
  log: Logger
  metrics: GatewayMetrics
  now: () => number
  /** Largest |iat - now| accepted in a CONNECT token. */
  authWindowMs: number
  allowAnonymous: boolean
  /** Bytes queued for one client beyond which messages to it are dropped (default 1 MB). */
  maxOutboundBytes?: number
  /** Extra Aedes options (mq/persistence for clustering, limits). */
  aedes?: AedesOptions
  /**
   * Checks a user's password as the HTTP logins do, with the same per-account backoff
   * (user-auth.ts; throws LoginThrottled while the source must wait). Default: the registry, no backoff.
   */
  checkLogin?: (username: string, password: string, source?: string) => Promise<{ username: string; role: 'clinician' | 'admin' } | null>
}

type RefusalCode = 2 | 3 | 4 | 5

/** A refused CONNECT: the CONNACK return code and why (for the log line and the metric). */
class ConnectRefused extends Error {
  constructor(readonly returnCode: RefusalCode, readonly reason: string, message: string) {
    super(message)
  }
}

export const USER_CLIENT_PREFIX = 'u:'

export interface GatewayBroker {
  aedes: Aedes
  /** Connected, authenticated device count (the `devices_connected` gauge). */
  devicesConnected(): number
  /** Marks the device revoked in live sessions and disconnects it now. */
  disconnectDevice(deviceId: string): boolean
  /**
   * Applies the registry's current record to a connected device: not active -> disconnected;
   * moved -> its next frames go to the new patient's feed (and consent). What it did, or null.
   */
  refreshDevice(deviceId: string): 'disconnected' | 'moved' | null
  /** Closes every MQTT connection of the user (client IDs u:<name> and u:<name>:...); how many. */
  disconnectUser(username: string): number
  /** Frames between receipt and PUBACK. */
  inflightFrames(): number
  /** From now on frames are refused without PUBACK (shutdown); in-flight ones finish. */
  stopIngest(): void
  close(): Promise<void>
}

export async function createBroker(opts: BrokerOptions): Promise<GatewayBroker> {
  const o = { ...opts, maxOutboundBytes: opts.maxOutboundBytes ?? 1024 * 1024 }
  const principals = new WeakMap<Client, Principal>()
  const sessions = new WeakMap<Client, DeviceSession>()
  const deviceClients = new Map<string, Client>()
  const emptyId = new WeakSet<Client>()
  /** Payload buffers of rejected frames: Aedes hands authorizeForward the same Buffer. */
  const blocked = new WeakSet<Buffer>()
  let inflight = 0
  let stopped = false

  const aedes = await Aedes.createBroker({
    ...o.aedes,
    preConnect(client, packet, cb) {
      if (!packet.clientId) emptyId.add(client)
      cb(null, true)
    },
    authenticate(client, username, password, cb) {
      admit(client, username, password).then(
        () => cb(null, true),
        (err) => {
          const r = err instanceof ConnectRefused ? err : new ConnectRefused(5, 'internal', (err as Error).message)
          o.metrics.connectsRefused.inc({ reason: r.reason })
          o.log.log('warn', 'connect refused', {
            clientId: emptyId.has(client) ? '' : client.id,
            reason: r.reason,
            returnCode: r.returnCode,
            detail: r.message,
            remote: remoteOf(client),
          })
          const e = new Error(r.message) as Error & { returnCode: RefusalCode }
          e.returnCode = r.returnCode
          cb(e as never, false)
        },
      )
    },
    authorizePublish(client, packet, cb) {
      if (!client) return cb(packet.topic.startsWith('$') ? new Error('$ topics are reserved') : null)
      const p = principals.get(client)
      if (!p) return cb(new Error('not authenticated'))
      const d = canPublish(p, packet.topic)
      if (!d.ok) {
        o.log.log('warn', 'publish refused', { clientId: client.id, topic: packet.topic, reason: d.reason })
        return cb(new Error(`publish to ${packet.topic} refused: ${d.reason}`)) // closes the connection [MQTT-3.3.5-2]
      }
      const session = sessions.get(client)
      if (!session || deviceOfFramesTopic(packet.topic) !== session.deviceId) return cb(null)
      if (stopped) return cb(new Error('gateway shutting down')) // no PUBACK: the board resends after restart
      packet.retain = false // frames are a stream, never a retained message
      const payload = packet.payload as Buffer
      inflight++
      const done = ingestFrame(deps, session, payload)
      // PUBACKs leave in PUBLISH order even though frames verify in parallel.
      session.tail = session.tail.then(() => done).then((out) => {
        inflight--
        // Not stored for want of storage: no PUBACK (Aedes closes the connection), so the
        // board keeps the frame in its flash ring and sends it again after reconnecting.
        if (out.kind === 'unavailable') return cb(new Error(`frame not stored: ${out.detail}`))
        if (out.kind === 'rejected') blocked.add(payload)
        cb(null)
      })
    },
    authorizeSubscribe(client, sub, cb) {
      const p = principals.get(client)
      if (!p) return cb(new Error('not authenticated'))
      const d = canSubscribe(p, sub.topic, (patient) => p.kind === 'user' && o.consent.isAllowed(patient, p.username, LIVE_SCOPE, o.now()))
      if (!d.ok) {
        o.log.log('warn', 'subscribe refused', { clientId: client.id, topic: sub.topic, reason: d.reason })
        return cb(null, null) // SUBACK 0x80 for this filter [MQTT-3.9.3-2]
      }
      cb(null, sub)
    },
    authorizeForward(client, packet) {
      if (blocked.has(packet.payload as Buffer)) return null
      // '#' from an anonymous (conformance-mode) client must not reach patient data.
      if (packet.topic.startsWith(CLINICAL) && principals.get(client)?.kind === 'anonymous') return null
      // Bounded outbound queue: a client that does not read loses messages, not our memory.
      if (((client.conn as { writableLength?: number }).writableLength ?? 0) > o.maxOutboundBytes) {
        o.metrics.forwardDropped.inc()
        return null
      }
      const patient = patientOfTopic(packet.topic)
      if (patient !== null) {
        const p = principals.get(client)
        if (!p || p.kind === 'device') return null
        if (p.kind === 'user' && !o.consent.isAllowed(patient, p.username, LIVE_SCOPE, o.now())) return null
      }
      // Alarm topics: a clinician whose consent went hears no more of that patient's alarms.
      const alarmed = patientOfAlarmsTopic(packet.topic)
      if (alarmed !== null) {
        const p = principals.get(client)
        if (p?.kind === 'user' && p.role !== 'admin' && !o.consent.isAllowed(alarmed, p.username, LIVE_SCOPE, o.now())) return null
      }
      return packet
    },
  })

  const deps: IngestDeps = {
    ...o.ingest,
    limits: o.limits,
    inflight: new Map(),
    control(deviceId, msg) {
      publish({ topic: controlTopic(deviceId), payload: Buffer.from(JSON.stringify(msg)), qos: 1 })
    },
    fanOut(patientId, frame) {
      publish({ topic: patientTopic(patientId), payload: frame, qos: 0 })
    },
  }

  function publish(p: { topic: string; payload: Buffer; qos: 0 | 1 }): void {
    aedes.publish({ cmd: 'publish', topic: p.topic, payload: p.payload, qos: p.qos, retain: false, dup: false } as PublishPacket, (err) => {
      if (err) o.log.log('error', 'internal publish failed', { topic: p.topic, error: err.message })
    })
  }

  async function admit(client: Client, username: string | undefined, password: Buffer | undefined): Promise<void> {
    const id = emptyId.has(client) ? '' : client.id
    if (id === '') {
      // Non-anonymous: every client is somebody. Anonymous: MQTT allows an empty ID
      // only with a clean session [MQTT-3.1.3-8] (a persistent session needs a name).
      if (!o.allowAnonymous || !client.clean) throw new ConnectRefused(2, 'empty-client-id', 'client ID is empty')
    }
    if (o.allowAnonymous && username === undefined && password === undefined) {
      principals.set(client, { kind: 'anonymous' })
      return
    }
    if (id.startsWith(USER_CLIENT_PREFIX)) return admitUser(client, id, username, password)
    return admitDevice(client, id, username, password)
  }

  async function admitUser(client: Client, id: string, username: string | undefined, password: Buffer | undefined): Promise<void> {
    // Client ID u:<username> or u:<username>:<anything> (one user, several apps/tabs).
    const named = id.slice(USER_CLIENT_PREFIX.length).split(':')[0]
    if (!username || named !== username) throw new ConnectRefused(2, 'user-client-id-mismatch', `client ID ${id} does not name user ${username ?? '(none)'}`)
    let user = null
    try {
      const source = (client.conn as { remoteAddress?: string }).remoteAddress
      user = password ? await (o.checkLogin ? o.checkLogin(username, password.toString('utf8'), source) : o.registry.checkUser(username, password.toString('utf8'))) : null
    } catch (err) {
      if ((err as Error).name === 'LoginThrottled') throw new ConnectRefused(5, 'login-throttled', (err as Error).message)
      if ((err as { code?: string }).code === 'busy') throw new ConnectRefused(3, 'login-busy', (err as Error).message)
      throw err
    }
    if (!user) throw new ConnectRefused(4, 'bad-user-credentials', `bad username or password for ${username}`)
    principals.set(client, { kind: 'user', username: user.username, role: user.role })
  }

  async function admitDevice(client: Client, id: string, username: string | undefined, password: Buffer | undefined): Promise<void> {
    if (!o.auth.isValidDeviceId(id)) throw new ConnectRefused(2, 'malformed-client-id', `client ID ${JSON.stringify(id)} is not a device ID`)
    const dev = o.registry.getDevice(id)
    if (!dev) throw new ConnectRefused(2, 'unknown-device', `device ${id} is not registered`)
    if (dev.status !== 'active') throw new ConnectRefused(5, 'device-revoked', `device ${id} is ${dev.status}`)
    if (username !== id) throw new ConnectRefused(4, 'username-mismatch', `username must be the device ID ${id}`)
    if (!password || password.length === 0) throw new ConnectRefused(4, 'no-token', 'password (auth token) is missing')
    const key: DeviceKey = { profile: dev.profile, publicKey: dev.publicKey, secret: dev.secret }
    let claims
    try {
      claims = o.auth.verifyAuthToken(new Uint8Array(password), key)
    } catch (err) {
      throw new ConnectRefused(4, 'bad-token', `auth token does not verify: ${(err as Error).message}`)
    }
    if (claims.deviceId !== id) throw new ConnectRefused(4, 'bad-token', `token is for ${claims.deviceId}, not ${id}`)
    const now = o.now()
    if (Math.abs(claims.iatMs - now) > o.authWindowMs)
      throw new ConnectRefused(4, 'token-out-of-window', `token iat ${claims.iatMs} is ${claims.iatMs - now} ms from gateway time (window ±${o.authWindowMs} ms)`)
    if (!o.registry.acceptAuthCounter(id, claims.counter, now))
      throw new ConnectRefused(4, 'token-replayed', `token counter ${claims.counter} is not above the last accepted ${o.registry.getDevice(id)?.lastAuthCounter}`)
    principals.set(client, { kind: 'device', deviceId: id, patient: dev.patient })
    sessions.set(client, {
      deviceId: id,
      patient: dev.patient,
      key,
      bucket: new TokenBucket(o.limits.ratePerSec, o.limits.rateBurst, now),
      tail: Promise.resolve(),
      active: true,
    })
    // Tracked from here (before CONNACK) so a revocation racing the handshake still finds it.
    deviceClients.set(id, client)
  }

  aedes.on('clientReady', (client) => {
    const s = sessions.get(client)
    if (!s) return
    o.log.log('info', 'device connected', { deviceId: s.deviceId, remote: remoteOf(client) })
  })
  aedes.on('clientDisconnect', (client) => {
    const s = sessions.get(client)
    if (s && deviceClients.get(s.deviceId) === client) {
      deviceClients.delete(s.deviceId)
      o.log.log('info', 'device disconnected', { deviceId: s.deviceId })
    }
  })
  // A device that subscribes to its control topic gets the gateway time first,
  // so a board without a synchronised clock can fix it before sending frames.
  aedes.on('subscribe', (subs, client) => {
    const s = sessions.get(client)
    if (s && subs.some((x) => x.topic === controlTopic(s.deviceId))) deps.control(s.deviceId, { t: 'time', now: o.now() })
  })
  aedes.on('clientError', (client, err) => o.log.log('debug', 'client error', { clientId: client.id, error: err.message }))
  aedes.on('connectionError', (client, err) => o.log.log('debug', 'connection error', { clientId: client.id, error: err.message }))

  const self: GatewayBroker = {
    aedes,
    devicesConnected: () => deviceClients.size,
    disconnectDevice(deviceId) {
      const c = deviceClients.get(deviceId)
      if (!c) return false
      const s = sessions.get(c)
      if (s) s.active = false
      deviceClients.delete(deviceId)
      c.close()
      o.log.log('info', 'device disconnected: revoked', { deviceId })
      return true
    },
    disconnectUser(username) {
      const own = USER_CLIENT_PREFIX + username
      const clients = (aedes as unknown as { clients: Record<string, Client> }).clients
      let n = 0
      for (const id of Object.keys(clients)) {
        if (id !== own && !id.startsWith(own + ':')) continue
        clients[id].close()
        n++
      }
      if (n > 0) o.log.log('info', 'user disconnected: account changed', { username, connections: n })
      return n
    },
    refreshDevice(deviceId) {
      const c = deviceClients.get(deviceId)
      const s = c && sessions.get(c)
      if (!c || !s) return null
      const dev = o.registry.getDevice(deviceId)
      if (!dev || dev.status !== 'active') return self.disconnectDevice(deviceId) ? 'disconnected' : null
      if (dev.patient === s.patient) return null
      o.log.log('info', 'device moved: live session follows', { deviceId, from: s.patient, to: dev.patient })
      s.patient = dev.patient
      principals.set(c, { kind: 'device', deviceId, patient: dev.patient })
      return 'moved'
    },
    inflightFrames: () => inflight,
    stopIngest() {
      stopped = true
    },
    close: () => new Promise<void>((resolve) => aedes.close(() => resolve())),
  }
  return self
}

function remoteOf(client: Client): string | undefined {
  const c = client.conn as { remoteAddress?: string; remotePort?: number }
  return c.remoteAddress ? `${c.remoteAddress}:${c.remotePort}` : undefined
}
