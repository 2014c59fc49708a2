/**
 * Assembles one gateway: data dir state, registry, frame store, Aedes broker with
 * our hooks, and the listeners (MQTT/TCP, MQTT/TLS, MQTT/WebSocket, HTTP).
 * `startGateway` resolves once every listener is bound; `close()` is the graceful
 * shutdown: stop accepting, let in-flight frames reach the store (their PUBACKs
 * go out), close clients, flush and close the store and registry.
 */
import { createServer as createTcpServer, type Server as NetServer, type AddressInfo } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import { createServer as createPlainHttpServer, type Server as HttpServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { join } from 'node:path'
import { statfs } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { WebSocketServer, createWebSocketStream } from 'ws'
import type { AedesOptions } from 'aedes'
import { createBroker, type GatewayBroker } from './broker.ts'
import { hostOf, type GatewayConfig, type PortSpec } from './config.ts'
import { ensureIdentity, ensureTls, type GatewayIdentity } from './identity.ts'
import { claimDataDir } from './data-dir.ts'
import { createHttpApi, type HttpMount } from './http-api.ts'
import { startPeerListener, type PeerListener } from './peer-listener.ts'
import { denyAllConsent, type ConsentPort, type FrameStore } from './ledger-port.ts'
import { jsonLogger, type Logger } from './log.ts'
import { gatewayMetrics, type GatewayMetrics } from './metrics.ts'
import { guardConnection } from './packet-guard.ts'
import { DeviceRegistry } from './registry.ts'
import type { FrameChecker, GatewayCodec } from './frame-check.ts'
import { inlineChecker, protocolCodec } from './protocol-codec.ts'
import { parseConsent } from '../ledger/consent.ts'
import { SessionStore, type SessionData } from '../http/sessions.ts'
import { userAuth, type UserAuth } from './user-auth.ts'

export interface GatewayDeps {
  /**
   * Opens the FrameStore once the identity exists (the ledger needs the producer key).
   * Default: the real ledger in `<dataDir>/ledger` (frames and consent), see ledger-store.ts.
   */
  openStore?(ctx: { dataDir: string; identity: GatewayIdentity }): Promise<FrameStore & { consent?: ConsentPort }>
  /** Default: the protocol/ code (protocol-codec.ts). */
  codec?: GatewayCodec
  /** Frame checker (inline or pool); the gateway closes it on shutdown. Default: inline. */
  checker?: FrameChecker
  consent?: ConsentPort
  log?: Logger
  now?: () => number
}

export interface BoundPorts {
  mqtt: number | null
  mqtts: number | null
  ws: number | null
  wss: number | null
  http: number | null
  https: number | null
  /** Ledger peer sync for replicas (peer-listener.ts); absent unless cfg.peerPort turns it on. */
  peer?: number
}

export interface Gateway {
  ports: BoundPorts
  identity: GatewayIdentity
  tlsFingerprint: string | null
  registry: DeviceRegistry
  broker: GatewayBroker
  metrics: GatewayMetrics
  store: FrameStore
  /** Where clinician subscriptions are authorized from (the ledger's consent state by default). */
  consent: ConsentPort
  /** User logins and consent checks for the dashboard (the same rules as MQTT subscriptions). */
  users: UserAuth
  /** The one session store of every user (API bearer tokens, dashboard cookies; patients next), by kind. */
  sessions: SessionStore<SessionData>
  /** Adds a handler (e.g. the dashboard) in front of the HTTP API; returns its removal. */
  mountHttp(handler: HttpMount): () => void
  close(): Promise<void>
}

const wantPort = (p: PortSpec): number | null => (p === 0 ? null : p === 'auto' ? 0 : p)

function listen(server: NetServer | HttpServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

function closeServer(s: { close(cb: () => void): unknown } | null): Promise<void> {
  return s ? new Promise((r) => s.close(() => r())) : Promise.resolve()
}

/** The ledger under `<dataDir>/ledger`, signed with the gateway key: the default FrameStore and ConsentPort. */
export async function openDefaultStore(ctx: { dataDir: string; identity: GatewayIdentity }, log?: Logger, opts: { retentionDays?: number } = {}): Promise<FrameStore & { consent?: ConsentPort }> {
  const { openLedgerStore, ledgerDirOf } = await import('./ledger-store.ts')
  return openLedgerStore({
    dir: ledgerDirOf(ctx.dataDir),
    keyFile: ctx.identity.keyFile,
    producerId: ctx.identity.id,
    retentionDays: opts.retentionDays,
    log: (msg) => log?.log('info', msg, { component: 'ledger' }),
  })
}

/** The frame checker `cfg.verify` asks for (see verify-pool.ts for the measurements behind 'auto'). */
export async function makeChecker(cfg: Pick<GatewayConfig, 'verify' | 'verifyWorkers'>): Promise<FrameChecker> {
  if (cfg.verify === 'inline') return inlineChecker()
  const { poolChecker, autoChecker, defaultWorkers } = await import('./verify-pool.ts')
  const n = cfg.verifyWorkers > 0 ? cfg.verifyWorkers : defaultWorkers(availableParallelism())
  return cfg.verify === 'pool' ? poolChecker(n) : autoChecker(n, inlineChecker())
}

export async function startGateway(cfg: GatewayConfig, depsIn: GatewayDeps = {}): Promise<Gateway> {
  const log = depsIn.log ?? jsonLogger(process.stderr, cfg.logLevel)
  const deps = {
    ...depsIn,
    codec: depsIn.codec ?? protocolCodec,
    checker: depsIn.checker ?? (await makeChecker(cfg)),
    openStore: depsIn.openStore ?? ((ctx: { dataDir: string; identity: GatewayIdentity }) => openDefaultStore(ctx, log, { retentionDays: cfg.retentionDays })),
  }
  const now = deps.now ?? Date.now
  if (cfg.allowAnonymous)
    log.log('warn', 'ANONYMOUS MODE: clients without credentials are admitted with no topic ACLs. For protocol conformance testing only; never on a ward network.', {})

  // Before anything is written: one writer per data dir, and private files (data-dir.ts).
  const dirLock = claimDataDir(cfg.dataDir, log)
  const identity = ensureIdentity(cfg.dataDir, (pub) => deps.codec.principalIdFromEd25519(pub))
  if (identity.created.key) log.log('info', 'created gateway key', { file: identity.keyFile, id: identity.id })
  if (identity.created.token) log.log('info', 'created admin token', { file: join(cfg.dataDir, 'admin.token') })
  const registry = new DeviceRegistry(cfg.registryFile ?? join(cfg.dataDir, 'registry.sqlite'))
  // Clustering (cluster.ts): Aedes mq + persistence in Redis, frame de-duplication shared across gateways.
  const cluster = cfg.redisUrl ? await (await import('./cluster.ts')).openCluster(cfg.redisUrl) : null
  const ownStore = await deps.openStore({ dataDir: cfg.dataDir, identity })
  // Clustered: consent records are loaded from Redis here, before any listener opens.
  let store: FrameStore & { consent?: ConsentPort } = ownStore
  if (cluster) {
    try {
      store = await cluster.shareConsent(cluster.shareDedupe(ownStore), log)
    } catch (err) {
      await ownStore.close()
      await cluster.close()
      registry.close()
      throw err
    }
  }
  const consent = deps.consent ?? store.consent ?? denyAllConsent

  const sessions = new SessionStore<SessionData>({ now })
  let broker: GatewayBroker | null = null
  // A user deleted or changed (password, role) keeps no session: HTTP tokens, cookies and MQTT connections.
  const users = userAuth(registry, consent, { now, sessions, onEnded: (u) => void broker?.disconnectUser(u) })
  let closing = false
  const metrics = gatewayMetrics({
    connected: () => broker?.devicesConnected() ?? 0,
    ledgerLag: () => store.pending?.() ?? 0,
    registered: () => registry.countActive(),
  })

  const aedesOpts: AedesOptions = { drainTimeout: 30_000, connectTimeout: 10_000, maxTopicLevels: 16, queueLimit: 42 }
  const closers: Array<() => Promise<void>> = []
  if (cluster) {
    Object.assign(aedesOpts, cluster.aedes)
    closers.push(() => cluster.close())
  }

  broker = await createBroker({
    registry,
    auth: deps.codec,
    consent,
    ingest: { store, checker: deps.checker, registry, metrics, log, now },
    limits: cfg.limits,
    log,
    metrics,
    now,
    authWindowMs: cfg.authWindowMs,
    allowAnonymous: cfg.allowAnonymous,
    maxOutboundBytes: cfg.limits.maxOutboundBytes,
    aedes: aedesOpts,
    checkLogin: (u, p, source) => users.checkLogin(u, p, source),
  })
  const b = broker

  const handle = (conn: Parameters<typeof guardConnection>[0]) => {
    const packetTimeoutMs = cfg.limits.packetTimeoutMs ?? 15_000
    const guarded = guardConnection(conn, cfg.limits.maxPacketBytes, (announced) => {
      metrics.connectsRefused.inc({ reason: 'packet-too-large' })
      log.log('warn', 'connection dropped: packet too large', { announced, max: cfg.limits.maxPacketBytes, remote: conn.remoteAddress })
    }, {
      packetTimeoutMs,
      onSlow: () => {
        metrics.connectsRefused.inc({ reason: 'packet-too-slow' })
        log.log('warn', 'connection dropped: packet not complete in time', { timeoutMs: packetTimeoutMs, remote: conn.remoteAddress })
      },
    })
    b.aedes.handle(guarded)
  }

  const ports: BoundPorts = { mqtt: null, mqtts: null, ws: null, wss: null, http: null, https: null }
  let tcp: NetServer | null = null
  let tls: NetServer | null = null
  let wsHttp: HttpServer | null = null
  let wssHttp: HttpServer | null = null
  const wsServers: WebSocketServer[] = []
  let http: HttpServer | null = null
  let https: HttpServer | null = null
  let tlsFingerprint: string | null = null
  const httpMounts: HttpMount[] = []
  let peer: PeerListener | null = null

  /** MQTT over WebSocket on `server` (plain or TLS); any other request gets 426. */
  const mqttOverWs = (server: HttpServer): HttpServer => {
    server.on('request', (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' })
      res.end('MQTT over WebSocket only\n')
    })
    const wss = new WebSocketServer({ server, maxPayload: cfg.limits.maxPacketBytes + 8 })
    wss.on('connection', (socket, req) => {
      const stream = createWebSocketStream(socket) as ReturnType<typeof createWebSocketStream> & { remoteAddress?: string; remotePort?: number }
      stream.remoteAddress = req.socket.remoteAddress
      stream.remotePort = req.socket.remotePort
      stream.on('error', () => stream.destroy())
      handle(stream)
    })
    wsServers.push(wss)
    return server
  }

  // Each listener is opened in turn; on a failure the ones already open are closed.
  try {
    // One certificate (made on first start, or the configured one) for every TLS listener.
    const tlsWanted = [cfg.mqttsPort, cfg.wssPort, cfg.httpsPort].some((p) => wantPort(p) !== null)
    const tlsMaterial = tlsWanted ? await ensureTls(cfg.dataDir, cfg.tlsCert, cfg.tlsKey) : null
    if (tlsMaterial) {
      tlsFingerprint = tlsMaterial.fingerprint256
      if (tlsMaterial.created) log.log('info', 'created self-signed TLS certificate', { sha256: tlsMaterial.fingerprint256 })
    }
    const tlsOpts = tlsMaterial ? { cert: tlsMaterial.cert, key: tlsMaterial.key, minVersion: 'TLSv1.2' as const } : {}

    const p = wantPort(cfg.mqttPort)
    if (p !== null) {
      tcp = createTcpServer(handle)
      tcp.maxConnections = cfg.limits.maxConnections
      ports.mqtt = await listen(tcp, p, hostOf(cfg, 'mqtt'))
    }
    const ps = wantPort(cfg.mqttsPort)
    if (ps !== null) {
      tls = createTlsServer(tlsOpts, handle)
      tls.maxConnections = cfg.limits.maxConnections
      ports.mqtts = await listen(tls, ps, hostOf(cfg, 'mqtts'))
    }
    const pw = wantPort(cfg.wsPort)
    if (pw !== null) {
      wsHttp = mqttOverWs(createPlainHttpServer())
      ports.ws = await listen(wsHttp, pw, hostOf(cfg, 'ws'))
    }
    const pws = wantPort(cfg.wssPort)
    if (pws !== null) {
      wssHttp = mqttOverWs(createHttpsServer(tlsOpts))
      ports.wss = await listen(wssHttp, pws, hostOf(cfg, 'wss'))
    }
    const ph = wantPort(cfg.httpPort)
    const phs = wantPort(cfg.httpsPort)
    if (ph !== null || phs !== null) {
      const api = createHttpApi({
        registry,
        codec: deps.codec,
        metrics: metrics.registry,
        adminToken: identity.adminToken,
        adminTokenFile: join(cfg.dataDir, 'admin.token'),
        log,
        now,
        health: () => {
          const fault = ownStore.fault?.()
          return { ok: !closing && !fault, ...(fault ? { reason: `storage: ${fault}` } : {}), devicesConnected: b.devicesConnected(), framesAccepted: metrics.framesAccepted.get(), ledgerLag: store.pending?.() ?? 0 }
        },
        onRevoke: (id) => b.disconnectDevice(id),
        onDeviceChange: (id) => b.refreshDevice(id),
        users,
        appendConsent: store.appendConsent ? (r) => store.appendConsent!(r) : undefined,
        consentPatient: (r) => parseConsent(r).patientId,
        mounts: httpMounts,
      })
      if (ph !== null) {
        http = api
        ports.http = await listen(http, ph, hostOf(cfg, 'http'))
      }
      if (phs !== null) {
        // The same routes and dashboard over TLS: requests are handed to the API server's own listener.
        https = createHttpsServer(tlsOpts, (req, res) => api.emit('request', req, res))
        https.keepAliveTimeout = api.keepAliveTimeout
        https.headersTimeout = api.headersTimeout
        ports.https = await listen(https, phs, hostOf(cfg, 'https'))
      }
    }
    peer = await startPeerListener(ownStore, cfg, log) // last: nothing after it can fail and leave it open
    if (peer) ports.peer = peer.port
  } catch (err) {
    await Promise.all([closeServer(tcp), closeServer(tls), closeServer(wsHttp), closeServer(wssHttp), closeServer(http), closeServer(https)])
    await b.close()
    await store.close()
    registry.close()
    dirLock.release()
    throw err
  }

  // Revocations made by another process (CLI on the data dir, a cluster peer) are
  // picked up here; revocations through our own admin API disconnect immediately.
  let revokedCursor = now()
  const poll = setInterval(() => {
    try {
      const since = revokedCursor - 1000
      revokedCursor = now()
      for (const id of registry.revokedSince(since)) b.disconnectDevice(id)
      for (const id of registry.changedSince(since)) b.refreshDevice(id) // moved, deleted (devices.ts)
      users.endStaleSessions() // users deleted or changed by the CLI
      registry.flushSeq()
    } catch (err) {
      // SQLITE_FULL and the like: the batch stays queued and is written once the disk has room.
      log.log('error', 'registry write failed', { error: (err as Error).message })
    }
  }, 500)
  poll.unref()
  const storage = watchStorage(ownStore, cfg.dataDir, log)

  log.log('info', 'gateway ready', { ports, id: identity.id, tlsSha256: tlsFingerprint })

  return {
    ports,
    identity,
    tlsFingerprint,
    registry,
    broker: b,
    metrics,
    store,
    consent,
    users,
    sessions,
    mountHttp(handler) {
      httpMounts.push(handler)
      return () => {
        const i = httpMounts.indexOf(handler)
        if (i >= 0) httpMounts.splice(i, 1)
      }
    },
    async close() {
      if (closing) return
      closing = true
      clearInterval(poll)
      storage.stop()
      // 1. Stop accepting connections and frames: a frame arriving now gets no PUBACK
      //    (its connection closes), so the board keeps it and resends it later.
      for (const s of [tcp, tls, wsHttp, wssHttp]) s?.close()
      for (const w of wsServers) w.close()
      b.stopIngest()
      // 2. Let frames already in the pipeline reach the store: their PUBACKs go out.
      await drainInflight(b)
      // 3. Disconnect clients and stop the broker, then the store and registry.
      await b.close()
      await deps.checker.close()
      await peer?.close() // before the ledger it serves
      await store.close()
      registry.close()
      await Promise.all([closeServer(http), closeServer(https)])
      for (const c of closers) await c()
      dirLock.release()
      log.log('info', 'gateway stopped', {})
    },
  }
}

/** Free bytes the data dir's filesystem must have before a store that failed for space reopens. */
const RECOVER_FREE_BYTES = 1 << 20
const RECOVER_EVERY_MS = 1000

/**
 * While the store cannot write (a full disk), frames get no PUBACK and /healthz says why.
 * Once the filesystem has room again, the store reopens (as after a crash) and frames flow:
 * nothing to do for whoever freed the space.
 */
function watchStorage(store: FrameStore, dataDir: string, log: Logger): { stop(): void } {
  let trying = false
  let reported = false
  const t = setInterval(() => {
    const fault = store.fault?.()
    if (!fault || trying || !store.recover) return
    if (!reported) {
      log.log('error', 'storage failed: frames are refused without PUBACK until it recovers', { reason: fault })
      reported = true
    }
    trying = true
    statfs(dataDir)
      .then((st) => {
        if (st.bavail * st.bsize < RECOVER_FREE_BYTES) return
        return store.recover!().then(() => {
          reported = false
          log.log('info', 'storage recovered: frames are accepted again', { was: fault })
        })
      })
      .catch((err: Error) => log.log('warn', 'storage still unavailable', { error: err.message }))
      .finally(() => (trying = false))
  }, RECOVER_EVERY_MS)
  t.unref()
  return { stop: () => clearInterval(t) }
}

/** Waits (bounded) until no frame is between receipt and PUBACK. */
async function drainInflight(b: GatewayBroker, maxMs = 10_000): Promise<void> {
  const until = Date.now() + maxMs
  while (b.inflightFrames() > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5))
}
