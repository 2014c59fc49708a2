/**
 * Where should the gateway verify frames: on the event loop (inline) or in worker
 * threads (pool)? Same frames, side by side in one run: frames/s through the
 * checker and the main thread's event-loop utilisation while doing it (what is left
 * for sockets, the broker and the ledger).
 *
 *   npx tsx bench/gateway-verify.ts [--frames 20000] [--inflight 512]
 */
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import { inlineChecker } from '../gateway/protocol-codec.ts'
import { poolChecker, autoChecker } from '../gateway/verify-pool.ts'
import type { DeviceKey, FrameChecker } from '../gateway/frame-check.ts'
import { generateKey } from '../protocol/node/keys.ts'
import { signFrame, type DeviceSigningKey } from '../protocol/node/sign.ts'

const { values } = parseArgs({ options: { frames: { type: 'string', default: '20000' }, inflight: { type: 'string', default: '512' } } })
const N = Number(values.frames)
const INFLIGHT = Number(values.inflight)

function frames(profile: 'p256' | 'hmac'): { key: DeviceKey; id: string; list: Uint8Array[] } {
  const k = generateKey(profile) as DeviceSigningKey & { id: string; publicKey?: Uint8Array; secret?: Uint8Array }
  const list: Uint8Array[] = []
  const ecg = Array.from({ length: 250 }, (_, i) => 2048 + Math.round(300 * Math.sin(i / 10)))
  for (let s = 0; s < Math.min(N, 2000); s++)
    list.push(signFrame(k, { v: 1, deviceId: k.id, seq: s, boot: 1, t0: Date.now(), ecgHz: 250, ecg, flags: 0, dropped: 0, fw: 'bench' }))
  const key: DeviceKey = profile === 'p256' ? { profile: 'se', publicKey: k.publicKey!, secret: null } : { profile: 'bare', publicKey: null, secret: k.secret! }
  return { key, id: k.id, list }
}

async function run(c: FrameChecker, f: ReturnType<typeof frames>): Promise<{ fps: number; elu: number }> {
  // warm-up
  await Promise.all(f.list.slice(0, 200).map((b) => c.check(b, f.key, f.id)))
  const elu0 = performance.eventLoopUtilization()
  const t0 = performance.now()
  let next = 0
  const lane = async () => {
    while (next < N) {
      const b = f.list[next++ % f.list.length]!
      await c.check(b, f.key, f.id)
    }
  }
  await Promise.all(Array.from({ length: INFLIGHT }, lane))
  const ms = performance.now() - t0
  const elu = performance.eventLoopUtilization(elu0).utilization
  return { fps: (N / ms) * 1000, elu }
}

const fmt = (x: number) => Math.round(x).toLocaleString('en-US')
console.log(`frames: ${N} per row, ${INFLIGHT} checks in flight, frame = 250 ECG samples (~${frames('hmac').list[0]!.length} B)`)
console.log('profile  checker   frames/s   main-thread busy   vs inline')
for (const profile of ['p256', 'hmac'] as const) {
  const f = frames(profile)
  const rows: Array<[string, () => FrameChecker]> = [
    ['inline', () => inlineChecker()],
    ['pool(1)', () => poolChecker(1)],
    ['pool(2)', () => poolChecker(2)],
    ['auto(2)', () => autoChecker(2, inlineChecker())],
  ]
  let base = 0
  for (const [name, make] of rows) {
    const c = make()
    const r = await run(c, f)
    await c.close()
    if (name === 'inline') base = r.fps
    console.log(`${profile.padEnd(8)} ${name.padEnd(9)} ${fmt(r.fps).padStart(8)}   ${(r.elu * 100).toFixed(0).padStart(5)} %            ${(r.fps / base).toFixed(2)}x`)
  }
}
