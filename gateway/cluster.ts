/**
 * Several gateway processes serving one device population (`--redis URL`):
 *
 * - Aedes's own clustering: `mqemitter-redis` carries every PUBLISH to the other
 *   processes (a device on gateway A reaches a clinician on gateway B), and
 *   `aedes-persistence-redis` holds subscriptions, retained messages, persistent
 *   sessions and their offline queues, so a board that reconnects to another
 *   gateway with cleanSession=0 finds its session and its queued control messages.
 * - Frame de-duplication across gateways: each gateway appends to its own store,
 *   and records (deviceId, seq) in Redis after the frame is durable and before its
 *   PUBACK. A board whose PUBACK was lost and that resends the frame to another
 *   gateway gets it acknowledged there without a second copy being stored.
 *   Window: frames are remembered per device for the last `keepPerDevice` seqs.
 *   (A frame resent to B while A is still storing it can be stored twice: never lost.)
 * - The device registry is one SQLite file shared by the processes (`registryFile`),
 *   whose auth-counter compare-and-set is atomic across processes.
 */
import type { AedesOptions } from 'aedes'
import type { ConsentPort, FrameMeta, FrameStore } from './ledger-port.ts'

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

interface RedisLike {
  zscore(key: string, member: string): Promise<string | null>
  zadd(key: string, score: number, member: string): Promise<unknown>
  zremrangebyrank(key: string, start: number, stop: number): Promise<unknown>
  quit(): Promise<unknown>
}

type Closeable = { close(cb: () => void): void }

export interface ClusterParts {
  /** mq + persistence, to merge into the Aedes options. */
  aedes: Pick<AedesOptions, 'mq' | 'persistence'>
  /** Wraps a FrameStore with the shared (deviceId, seq) index. */
  shareDedupe(store: FrameStore & { consent?: ConsentPort }): FrameStore & { consent?: ConsentPort }
  /** Closes the persistence and the de-duplication connection (Aedes closes its mq itself). */
  close(): Promise<void>
}

export async function openCluster(url: string, o: { keepPerDevice?: number; prefix?: string } = {}): Promise<ClusterParts> {
  const target = parseRedisUrl(url)
  const keep = o.keepPerDevice ?? 100_000
  const prefix = o.prefix ?? 'mhealth:frames:'
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
  const db = new Redis(redisOpts) as unknown as RedisLike
  let adds = 0

  return {
    aedes: { mq: mq as AedesOptions['mq'], persistence: persistence as AedesOptions['persistence'] },
    shareDedupe(store) {
      return {
        async hasFrame(deviceId: string, seq: number) {
          if (await store.hasFrame(deviceId, seq)) return true
          return (await db.zscore(prefix + deviceId, String(seq))) !== null
        },
        async appendFrame(frame: Uint8Array, meta: FrameMeta) {
          const r = await store.appendFrame(frame, meta)
          // Recorded before the caller sends PUBACK: once a board has its PUBACK, every gateway knows the frame.
          await db.zadd(prefix + meta.deviceId, meta.seq, String(meta.seq))
          if (++adds % 1024 === 0) void db.zremrangebyrank(prefix + meta.deviceId, 0, -keep - 1).catch(() => {})
          return r
        },
        pending: store.pending ? () => store.pending!() : undefined,
        appendConsent: store.appendConsent ? (rec: Uint8Array) => store.appendConsent!(rec) : undefined,
        consent: store.consent,
        close: () => store.close(),
      }
    },
    async close() {
      await Promise.race([new Promise<void>((r) => persistence.destroy(() => r())), new Promise((r) => setTimeout(r, 200).unref())])
      persistConn.disconnect()
      await db.quit().catch(() => {})
    },
  }
}
