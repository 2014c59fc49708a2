/**
 * What the dashboard adds per stored frame on the gateway's event loop, side by
 * side in one run: strict decode, gateway-side vitals (signal/ ECG + PPG
 * monitors), the leaf hash, and the SSE event (JSON) per subscriber; plus the
 * browser bundle's build time and size.
 *
 *   npx tsx bench/dashboard.ts [--frames 3000]
 */
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import { generateKey } from '../protocol/node/keys.ts'
import { signFrame, type DeviceSigningKey } from '../protocol/node/sign.ts'
import { syntheticPayload } from '../protocol/node/synthetic.ts'
import { decodeFrame } from '../protocol/node/decode.ts'
import { VitalsTracker } from '../dashboard/vitals.ts'
import { leafHashOf } from '../dashboard/leaf-hash.ts'
import { buildWebAssets } from '../dashboard/build.ts'

const { values } = parseArgs({ options: { frames: { type: 'string', default: '3000' } } })
const N = Number(values.frames)
const key = generateKey('p256') as DeviceSigningKey
const bytes = Array.from({ length: N }, (_, s) => signFrame(key, syntheticPayload(key.id, { seconds: 1, seq: s, seed: 1, t0: 1e12 + s * 1000 })))
const payloads = bytes.map((b) => decodeFrame(b).payload)

function time(label: string, fn: () => void): number {
  const t0 = performance.now()
  fn()
  const us = ((performance.now() - t0) * 1000) / N
  return us
}

const rows: [string, number][] = []
rows.push(['strict decode (cbor-x)', time('decode', () => bytes.forEach((b) => decodeFrame(b)))])
const v = new VitalsTracker()
rows.push(['vitals: ECG 250 + PPG 2x100 samples (signal/)', time('vitals', () => payloads.forEach((p) => v.add('p', p)))])
rows.push(['leaf hash (SHA-256)', time('hash', () => bytes.forEach((b) => leafHashOf(b)))])
let size = 0
const v2 = new VitalsTracker()
const events = payloads.map(({ red: _red, ...p }) => ({ patientId: 'p', leafHash: leafHashOf(bytes[0]), receivedMs: 0, vitals: v2.add('p', { ...p, red: _red }), ...p }))
rows.push(['SSE event JSON, per subscriber', time('json', () => events.forEach((e) => (size += `event: frame\ndata: ${JSON.stringify(e)}\n\n`.length)))])
const base = rows[0][1]
console.log(`per frame (1 s of signal), ${N} frames:`)
for (const [name, us] of rows) console.log(`  ${name.padEnd(48)} ${us.toFixed(1).padStart(7)} µs   ${(us / base).toFixed(2)}x decode`)
console.log(`  SSE event size: ${Math.round(size / N)} bytes/frame (COSE frame ${bytes[0].length} bytes)`)
const t0 = performance.now()
const a = await buildWebAssets()
console.log(`browser bundle: ${a.js.body.length} bytes minified, built in ${Math.round(performance.now() - t0)} ms`)
