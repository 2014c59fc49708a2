/**
 * What clustering adds per frame to the store path, side by side in one run against
 * one throwaway redis-server (/usr/bin/redis-server) and a store that is durable at
 * once (so only the Redis part is measured):
 *
 *   none    a single gateway: the store alone
 *   mark    the earlier scheme: ZSCORE before storing, ZADD after (two round trips,
 *           no claim: a frame resent while being stored could be stored twice)
 *   claim   gateway/cluster.ts: one Lua call (stored? else SET NX PX claim) before,
 *           one Lua call (ZADD + drop claim) after
 *
 * For each: µs of gateway CPU per frame, redis-server CPU per frame, and frames/s
 * with `--concurrency` frames in flight (many devices), wall clock.
 *
 *   npx tsx bench/cluster.ts [--frames 20000] [--concurrency 64] [--devices 200]
 */
import { parseArgs } from 'node:util'
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import { openCluster } from '../gateway/cluster.ts'
import type { FrameMeta, FrameStore } from '../gateway/ledger-port.ts'
import { startRedis } from '../testing/redis.ts'

const { values } = parseArgs({ options: { frames: { type: 'string', default: '20000' }, concurrency: { type: 'string', default: '64' }, devices: { type: 'string', default: '200' } } })
const N = Number(values.frames)
const C = Number(values.concurrency)
const D = Number(values.devices)

const memoryStore = (): FrameStore => {
  const seen = new Set<string>()
  let n = 0
  return {
    hasFrame: (id, seq) => seen.has(id + '/' + seq),
    appendFrame: async (_f: Uint8Array, m: FrameMeta) => {
      seen.add(m.deviceId + '/' + m.seq)
      return { leafIndex: n++ }
    },
    close: async () => {},
  }
}

/** CPU seconds (user + system) the redis-server process has used, from /proc. */
function redisCpu(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(f[11]) + Number(f[12])) / 100 // utime, stime in clock ticks (USER_HZ = 100)
}

/** The ingest pipeline's two store calls, as it makes them, for N frames C at a time. */
async function run(store: FrameStore, tag: string): Promise<void> {
  let next = 0
  const frame = new Uint8Array(727)
  const worker = async () => {
    while (next < N) {
      const i = next++
      const meta = { deviceId: `${tag}-dev-${i % D}`, seq: Math.floor(i / D), t0: 0 }
      if (!(await store.hasFrame(meta.deviceId, meta.seq))) await store.appendFrame(frame, meta)
    }
  }
  await Promise.all(Array.from({ length: C }, worker))
}

const redis = await startRedis()
const pid = redis.proc.pid!
const cluster = await openCluster(redis.url, { prefix: 'bench:' })
const plain = new Redis(redis.url)
const markScheme = (store: FrameStore): FrameStore => ({
  async hasFrame(id, seq) {
    if (await store.hasFrame(id, seq)) return true
    return (await plain.zscore('bench:mark:' + id, String(seq))) !== null
  },
  async appendFrame(f, m) {
    const r = await store.appendFrame(f, m)
    await plain.zadd('bench:mark:' + m.deviceId, m.seq, String(m.seq))
    return r
  },
  close: () => store.close(),
})

const variants: Array<[string, () => FrameStore]> = [
  ['none', memoryStore],
  ['mark', () => markScheme(memoryStore())],
  ['claim', () => cluster.shareDedupe(memoryStore())],
]
const results: Record<string, { cpu: number; redis: number; fps: number }> = {}
for (let round = 0; round < 2; round++) {
  // Round 0 warms up (JIT, Lua scripts loaded); round 1 is reported.
  for (const [name, make] of variants) {
    const store = make()
    const r0 = redisCpu(pid)
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    await run(store, `${name}-${round}`)
    const wall = performance.now() - t0
    const c = process.cpuUsage(c0)
    results[name] = { cpu: (c.user + c.system) / N, redis: ((redisCpu(pid) - r0) * 1e6) / N, fps: (N / wall) * 1000 }
  }
}
console.log(`${N} frames, ${C} in flight, ${D} devices; gateway and redis-server CPU µs per frame, frames/s`)
for (const [name, r] of Object.entries(results)) console.log(`${name.padEnd(6)} gateway ${r.cpu.toFixed(1).padStart(6)} µs  redis ${r.redis.toFixed(1).padStart(6)} µs  ${Math.round(r.fps).toString().padStart(7)} frames/s`)
console.log(`claim vs mark: gateway CPU x${(results.claim!.cpu / results.mark!.cpu).toFixed(2)}, redis CPU x${(results.claim!.redis / results.mark!.redis).toFixed(2)}, frames/s x${(results.claim!.fps / results.mark!.fps).toFixed(2)}`)
plain.disconnect()
await cluster.close()
await new Promise<void>((r) => (cluster.aedes.mq as unknown as { close(cb: () => void): void }).close(r)) // Aedes closes it when there is a broker
await redis.stop()
