/**
 * Several gateway processes serving one device population (`--redis URL`):
 *
 * - Aedes's own clustering: `mqemitter-redis` carries every PUBLISH to the other
 *   processes (a device on gateway A reaches a clinician on gateway B), and
 *   `aedes-persistence-redis` holds subscriptions, retained messages, persistent
 *   sessions and their offline queues, so a board that reconnects to another
 *   gateway with cleanSession=0 finds its session and its queued control messages.
 * - Frame de-duplication across gateways: each gateway appends to its own store.
 *   Before storing, a gateway claims (deviceId, seq) in Redis (SET NX PX, in the same
 *   Lua round trip that checks "already stored"); after the frame is durable and
 *   before its PUBACK it marks the frame stored and drops the claim (one more round
 *   trip). A board whose PUBACK was lost and that resends the frame to another gateway
 *   gets it acknowledged there without a second copy, also while the first gateway is
 *   still storing it: the second waits for the mark, or for the claim to lapse if the
 *   first died (then it stores the frame itself). Nothing is acknowledged that is not
 *   durable in some gateway's store. Window: the last `keepPerDevice` seqs per device.
 * - Consent records are shared through Redis too (cluster-consent.ts).
 * - The device registry is one SQLite file shared by the processes (`registryFile`),
 *   whose auth-counter compare-and-set is atomic across processes.
 */
import { randomUUID } from 'node:crypto'
import type { AedesOptions } from 'aedes'
import type { ConsentPort, FrameMeta, FrameStore } from './ledger-port.ts'
import type { Logger } from './log.ts'
import { shareConsent, type SharedConsent } from './cluster-consent.ts'

export class ClusterConfigError extends Error {
  override name = 'ClusterConfigError'
}

export interface RedisTarget {
  host: string
  port: number
  username?: string
  password?: string
  db: number
}

/** Parses `redis://[user:password@]host[:port][/db]`, the form both Redis packages accept as options. */
export function parseRedisUrl(url: string): RedisTarget {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new ClusterConfigError(`redis: expected a URL like redis://127.0.0.1:6379/0, got ${JSON.stringify(url)}`)
  }
  if (u.protocol !== 'redis:') throw new ClusterConfigError(`redis: expected the redis:// scheme, got ${JSON.stringify(u.protocol)}`)
  const db = u.pathname === '' || u.pathname === '/' ? 0 : Number(u.pathname.slice(1))
  if (!Number.isInteger(db) || db < 0) throw new ClusterConfigError(`redis: expected a database number after the host, got ${JSON.stringify(u.pathname)}`)
  const port = u.port === '' ? 6379 : Number(u.port)
  return {
    host: u.hostname,
    port,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db,
  }
}

type Closeable = { close(cb: () => void): void }

export interface ClusterParts {
  /** mq + persistence, to merge into the Aedes options. */
  aedes: Pick<AedesOptions, 'mq' | 'persistence'>
  /** Wraps a FrameStore with the shared (deviceId, seq) claim and index. */
  shareDedupe(store: FrameStore & { consent?: ConsentPort }): FrameStore & { consent?: ConsentPort }
  /** Wraps a store with consent so every gateway holds every consent record (cluster-consent.ts); loads the ones missing here. */
  shareConsent(store: FrameStore & { consent?: ConsentPort }, log: Logger): Promise<FrameStore & { consent?: ConsentPort }>
  /** Frames that waited for another gateway's claim (the resend-while-storing race). */
  claimWaits(): number
  /** Closes the persistence and our Redis connections (Aedes closes its mq itself). */
  close(): Promise<void>
}

// One round trip before storing. KEYS: frames zset, claim key. ARGV: seq, owner, claim ms.
// 1 = already stored (acknowledge), 0 = claimed by us (store it), 2 = another gateway is storing it.
const CLAIM = `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 0 end
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('PEXPIRE', KEYS[2], ARGV[3]) return 0 end
return 2
`
// One round trip after the store holds the frame durably: mark it stored, drop our claim.
const STORED = `
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
`
// Our claim only: drop it (the store failed) or extend it (the store is slow).
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`

interface FrameCommands {
  mhClaim(frames: string, claim: string, seq: number, owner: string, ms: number): Promise<number>
  mhStored(frames: string, claim: string, seq: number, owner: string): Promise<number>
  mhRelease(claim: string, owner: string): Promise<number>
  mhRenew(claim: string, owner: string, ms: number): Promise<number>
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export interface ClusterOptions {
  /** Stored seqs remembered per device in Redis (default 100,000). */
  keepPerDevice?: number
  /** Key prefix (default `mhealth:`): `<prefix>frames:<deviceId>`, `<prefix>claim:<deviceId>:<seq>`, `<prefix>consent:*`. */
  prefix?: string
  /** How long a claim outlives a gateway that died while storing (default 5,000 ms; renewed while a store is slow). */
  claimMs?: number
  /** Longest a frame waits for another gateway's claim before it is refused unacknowledged (default 30,000 ms). */
  maxClaimWaitMs?: number
}

export async function openCluster(url: string, o: ClusterOptions = {}): Promise<ClusterParts> {
  const target = parseRedisUrl(url)
  const keep = o.keepPerDevice ?? 100_000
  const prefix = o.prefix ?? 'mhealth:'
  const claimMs = o.claimMs ?? 5000
  const maxWait = o.maxClaimWaitMs ?? 30_000
  const framesKey = (id: string) => prefix + 'frames:' + id
  const claimKey = (id: string, seq: number) => prefix + 'claim:' + id + ':' + seq
  const owner = randomUUID() // this process, as the holder of its claims
  const persistName = 'aedes-persistence-redis' // untyped package: imported by name
  const [{ default: mqRedis }, { default: persistRedis }, { Redis }] = await Promise.all([
    import('mqemitter-redis'),
    import(persistName) as Promise<{ default: unknown }>,
    import('ioredis'),
  ])
  const redisOpts = { host: target.host, port: target.port, username: target.username, password: target.password, db: target.db }
  const mq = (mqRedis as unknown as (o: unknown) => Closeable)(redisOpts)
  // The persistence gets a connection we own: its destroy() unsubscribes through the
  // broker's mq first, which Aedes has already closed by then and never answers.
  const persistConn = new Redis(redisOpts)
  const persistence = (persistRedis as unknown as (o: unknown) => { destroy(cb: (err?: Error) => void): void })({ conn: persistConn })
  const redis = new Redis(redisOpts)
  redis.defineCommand('mhClaim', { numberOfKeys: 2, lua: CLAIM })
  redis.defineCommand('mhStored', { numberOfKeys: 2, lua: STORED })
  redis.defineCommand('mhRelease', { numberOfKeys: 1, lua: RELEASE })
  redis.defineCommand('mhRenew', { numberOfKeys: 1, lua: RENEW })
  const db = redis as typeof redis & FrameCommands
  let sub: InstanceType<typeof Redis> | null = null
  let consentShare: SharedConsent | null = null
  let adds = 0
  let waits = 0
  // Claims whose store is still running, by key -> since when. One timer for all of them
  // (a timer per frame would cost more than the claim): a store slower than a third of
  // the claim's life keeps the claim alive, so only a dead gateway's claim lapses.
  const holding = new Map<string, number>()
  const renewer = setInterval(() => {
    const old = Date.now() - claimMs / 3
    for (const [claim, since] of holding) if (since <= old) void db.mhRenew(claim, owner, claimMs).catch(() => {})
  }, claimMs / 3)
  renewer.unref()

  return {
    aedes: { mq: mq as AedesOptions['mq'], persistence: persistence as AedesOptions['persistence'] },
    shareDedupe(store) {
      return {
        /**
         * False only once this gateway holds the frame's claim: then it stores the frame.
         * While another gateway holds it, waits until that one marks the frame stored
         * (a duplicate: acknowledge) or its claim lapses (it died: take over).
         */
        async hasFrame(deviceId: string, seq: number) {
          if (await store.hasFrame(deviceId, seq)) return true
          const until = Date.now() + maxWait
          let pause = 5
          for (let waited = false; ; ) {
            const r = await db.mhClaim(framesKey(deviceId), claimKey(deviceId, seq), seq, owner, claimMs)
            if (r === 1) return true
            if (r === 0) return false
            if (!waited) waits++
            waited = true
            if (Date.now() > until) throw new Error(`frame ${deviceId}/${seq} still claimed by another gateway after ${maxWait} ms`)
            await sleep(pause)
            pause = Math.min(pause * 2, 100)
          }
        },
        async appendFrame(frame: Uint8Array, meta: FrameMeta) {
          const claim = claimKey(meta.deviceId, meta.seq)
          holding.set(claim, Date.now())
          let r
          try {
            r = await store.appendFrame(frame, meta)
          } catch (err) {
            await db.mhRelease(claim, owner).catch(() => {}) // another gateway may store it now
            throw err
          } finally {
            holding.delete(claim)
          }
          // Marked before the caller sends PUBACK: once a board has its PUBACK, every gateway knows the frame.
          await db.mhStored(framesKey(meta.deviceId), claim, meta.seq, owner)
          if (++adds % 1024 === 0) void db.zremrangebyrank(framesKey(meta.deviceId), 0, -keep - 1).catch(() => {})
          return r
        },
        pending: store.pending ? () => store.pending!() : undefined,
        appendConsent: store.appendConsent ? (rec: Uint8Array) => store.appendConsent!(rec) : undefined,
        consent: store.consent,
        close: () => store.close(),
      }
    },
    async shareConsent(store, log) {
      sub = new Redis(redisOpts)
      consentShare = await shareConsent(store, { db: redis, sub, prefix, log })
      return consentShare.store
    },
    claimWaits: () => waits,
    async close() {
      clearInterval(renewer)
      consentShare?.close()
      await Promise.race([new Promise<void>((r) => persistence.destroy(() => r())), new Promise((r) => setTimeout(r, 200).unref())])
      persistConn.disconnect()
      sub?.disconnect()
      await redis.quit().catch(() => {})
    },
  }
}
