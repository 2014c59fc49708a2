/**
 * Ledger benchmark: durable append throughput (group commit), bytes stored per frame,
 * proof generation / verification time, full verification of a large ledger, and
 * Ed25519 on node:crypto vs @noble/curves, measured side by side in one run.
 *
 *   npx tsx bench/ledger.ts [--leaves 1000000] [--frame-bytes 900] [--inflight 2000]
 *
 * Frames are random bytes of the given size (a realistic COSE frame is ~900 bytes);
 * device IDs are 17 characters like real ones. Targets: >= 50,000 leaves/s durable,
 * proof <= 1 ms, full verify of 1M leaves <= 60 s, overhead <= 64 bytes/frame.
 */
import { mkdtempSync, readdirSync, statSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { openLedger } from '../ledger/ledger.ts'
import { verifyLedger } from '../ledger/verify.ts'
import { checkProof } from '../ledger/proof-check.ts'
import { sha256, ed25519Verify, ed25519Generate, ed25519Sign, ed25519PrivateKey } from '../ledger/crypto.ts'
import { ed25519 } from '@noble/curves/ed25519.js'

const { values } = parseArgs({ options: { leaves: { type: 'string', default: '1000000' }, 'frame-bytes': { type: 'string', default: '900' }, inflight: { type: 'string', default: '2000' }, keep: { type: 'boolean' } } })
const N = Number(values.leaves)
const FB = Number(values['frame-bytes'])
const INFLIGHT = Number(values.inflight)
const dir = mkdtempSync(join(tmpdir(), 'mh-ledger-bench-'))
const key = ed25519Generate()
const fmt = (x: number, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })

console.log(`ledger bench: ${fmt(N)} leaves of ${FB}-byte frames, ${INFLIGHT} appends in flight, dir ${dir}`)

// A pool of distinct frames, reused with a changing 8-byte prefix so every leaf differs.
const pool = Array.from({ length: 256 }, () => new Uint8Array(randomBytes(FB)))
const devices = Array.from({ length: 50 }, (_, i) => `DEV${String(i).padStart(14, '0')}`)

const mem0 = process.memoryUsage()
const ledger = await openLedger({ dir, producerKey: key, producerId: 'bench-gw', log: () => {} })
const sampleMem = (): NodeJS.MemoryUsage => {
  ;(globalThis as { gc?: () => void }).gc?.()
  return process.memoryUsage()
}
let memAt10 = sampleMem()
const t0 = performance.now()
let next = 0
let frameBytes = 0
async function worker(): Promise<void> {
  while (next < N) {
    const i = next++
    const f = pool[i & 255].slice()
    new DataView(f.buffer).setFloat64(0, i)
    frameBytes += f.length
    await ledger.appendFrame(f, { deviceId: devices[i % devices.length], seq: Math.floor(i / devices.length), t0: 1_700_000_000_000 + i * 20 })
    if (i === Math.floor(N / 10)) memAt10 = sampleMem()
  }
}
await Promise.all(Array.from({ length: INFLIGHT }, worker))
const appendS = (performance.now() - t0) / 1000
await ledger.cutBlock()
// Resident memory: growth between 10% and 100% of the leaves, per million leaves (after a GC).
const mem = sampleMem()
const perM = (x: number) => fmt((x / 1048576) * (1e6 / (N - Math.floor(N / 10))), 1)
console.log(`0. memory after ${fmt(N)} leaves: rss ${fmt(mem.rss / 1048576)} MB (empty ledger ${fmt(mem0.rss / 1048576)} MB), heap+arrayBuffers ${fmt((mem.heapUsed + mem.arrayBuffers) / 1048576)} MB; growth from ${fmt(N / 10)} to ${fmt(N)} leaves => ${perM(mem.rss - memAt10.rss)} MB RSS and ${perM(mem.heapUsed + mem.arrayBuffers - memAt10.heapUsed - memAt10.arrayBuffers)} MB heap per million leaves (gc ${(globalThis as { gc?: unknown }).gc ? 'on' : 'off: run with NODE_OPTIONS=--expose-gc'})`)
console.log(`\n1. durable appends (fdatasync, group commit): ${fmt(N / appendS)} leaves/s  (${fmt(appendS, 1)} s; target >= 50,000)`)

// 2. Proof generation and verification.
const M = 20000
const idx = Array.from({ length: M }, () => Math.floor(Math.random() * N))
let t = performance.now()
const bundles = idx.map((i) => ledger.proofAt(i))
const genMs = (performance.now() - t) / M
t = performance.now()
for (const b of bundles) checkProof(b, key.publicKey, { sha256, ed25519Verify })
const verMs = (performance.now() - t) / M
console.log(`2. proof generation: ${fmt(genMs * 1000, 1)} us/proof; offline check (Ed25519 + 2 Merkle paths): ${fmt(verMs * 1000, 1)} us/proof  (target <= 1 ms); path lengths ${bundles[0].inBlock.path.length} in block + ${bundles[0].inLog.path.length} in log`)
const p = ledger.proofAt(N - 1)
console.log(`   proof JSON size without frame bytes: ${fmt(JSON.stringify(p).length)} bytes`)
const heads = ledger.head()
await ledger.close()

// 3. Storage overhead.
const segs = readdirSync(dir).filter((f) => f.startsWith('seg-'))
const stored = segs.reduce((s, f) => s + statSync(join(dir, f)).size, 0)
console.log(`3. bytes stored: ${fmt(stored)} for ${fmt(frameBytes)} frame bytes in ${segs.length} segments => ${fmt((stored - frameBytes) / N, 1)} bytes/frame overhead (framing 8 + record header 31 with a 17-char device ID, + block headers amortised; target <= 64)`)

// 4. Full verification.
t = performance.now()
const rep = await verifyLedger(dir)
const vS = (performance.now() - t) / 1000
console.log(`4. full verify of ${fmt(rep.leaves)} leaves / ${fmt(rep.blocks)} blocks: ${fmt(vS, 1)} s, ok=${rep.ok} head=${rep.head?.hash === heads.hash}  (target <= 60 s for 1M)`)

// 5. Reopen time (rebuilds indexes from the files).
t = performance.now()
const again = await openLedger({ dir, producerKey: key, producerId: 'bench-gw', log: () => {} })
const openS = (performance.now() - t) / 1000
t = performance.now()
const P = 2000
for (let k = 0; k < P; k++) again.proofAt(Math.floor(Math.random() * N))
const coldMs = (performance.now() - t) / P
t = performance.now()
let dupHits = 0
for (let k = 0; k < 100000; k++) if (again.hasFrame(devices[k % devices.length], Math.floor((k * 7919) % N / devices.length))) dupHits++
const hasUs = ((performance.now() - t) / 100000) * 1000
t = performance.now()
for (let k = 0; k < 100000; k++) again.hasFrame(devices[k % devices.length], N + k)
const newUs = ((performance.now() - t) / 100000) * 1000
await again.close()
console.log(`5. reopen: ${fmt(openS, 2)} s; after reopen: proof ${fmt(coldMs * 1000, 1)} us (random leaves), hasFrame ${fmt(hasUs, 2)} us for a stored (device, seq) (${dupHits} hits), ${fmt(newUs, 2)} us for a new one`)

// 6. Ed25519: node:crypto vs @noble/curves, side by side.
const msg = new Uint8Array(200)
const ko = ed25519PrivateKey(key.privateKey, key.publicKey)
const R = 2000
t = performance.now()
let sig: Uint8Array = new Uint8Array(64)
for (let i = 0; i < R; i++) sig = ed25519Sign(ko, msg)
const nodeSign = (performance.now() - t) / R
t = performance.now()
for (let i = 0; i < R; i++) ed25519Verify(key.publicKey, msg, sig)
const nodeVer = (performance.now() - t) / R
t = performance.now()
for (let i = 0; i < R / 4; i++) ed25519.sign(msg, key.privateKey)
const nobleSign = (performance.now() - t) / (R / 4)
t = performance.now()
for (let i = 0; i < R / 4; i++) ed25519.verify(sig, msg, key.publicKey)
const nobleVer = (performance.now() - t) / (R / 4)
console.log(`6. Ed25519 sign: node ${fmt(nodeSign * 1000, 1)} us vs noble ${fmt(nobleSign * 1000, 1)} us (x${fmt(nobleSign / nodeSign, 1)}); verify: node ${fmt(nodeVer * 1000, 1)} us vs noble ${fmt(nobleVer * 1000, 1)} us (x${fmt(nobleVer / nodeVer, 1)})`)

if (!values.keep) rmSync(dir, { recursive: true, force: true })
