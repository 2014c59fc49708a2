/**
 * Protocol benchmark: frames verified per second on one core by each verifier
 * (node:crypto vs @noble), ES256 and HMAC, measured side by side in one run;
 * and the encoded size of 1 s and 5 s windows. Run: npx tsx bench/protocol.ts
 */
import { opsPerSec, table, fmt } from './harness.ts'
import { generateKey } from '../protocol/node/keys.ts'
import { signFrame, type DeviceSigningKey } from '../protocol/node/sign.ts'
import { verifyFrame, type DeviceKey } from '../protocol/node/verify.ts'
import { decodeFrame } from '../protocol/node/decode.ts'
import { es256Verify, hmacSha256Verify } from '../protocol/node/primitives.ts'
import { syntheticPayload } from '../protocol/node/synthetic.ts'
import { CborWriter } from '../protocol/portable/cbor.ts'
import { encodePayload } from '../protocol/portable/frame.ts'

const se = generateKey('p256') as Extract<DeviceSigningKey, { type: 'p256' }>
const bare = generateKey('hmac') as Extract<DeviceSigningKey, { type: 'hmac' }>
const seKey: DeviceKey = { profile: 'se', publicKey: se.publicKey }
const bareKey: DeviceKey = { profile: 'bare', secret: bare.secret }
const t0 = Date.UTC(2026, 10, 24)

const seFrame = signFrame(se, syntheticPayload(se.id, { seconds: 1, seq: 1, seed: 1, t0 }))
const bareFrame = signFrame(bare, syntheticPayload(bare.id, { seconds: 1, seq: 1, seed: 1, t0 }))
const seDecoded = decodeFrame(seFrame)
const bareDecoded = decodeFrame(bareFrame)

console.log(`# Protocol benchmark (Node ${process.version}, one core, 1 s ECG 250 Hz + PPG 100 Hz frames)\n`)

const rows: Array<Array<string | number>> = []
const result: Record<string, number> = {}
for (const [label, fn] of [
  ['ES256 full verify (decode + signature)', (impl: 'node' | 'noble') => () => verifyFrame(seFrame, seKey, { impl })],
  ['ES256 signature only', (impl: 'node' | 'noble') => () => es256Verify(impl, se.publicKey, seDecoded.toBeAuthenticated, seDecoded.tag)],
  ['HMAC full verify (decode + MAC)', (impl: 'node' | 'noble') => () => verifyFrame(bareFrame, bareKey, { impl })],
  ['HMAC tag only', (impl: 'node' | 'noble') => () => hmacSha256Verify(impl, bare.secret, bareDecoded.toBeAuthenticated, bareDecoded.tag)],
] as const) {
  const node = opsPerSec(fn('node'), label.startsWith('ES256') ? 2000 : 1000)
  const noble = opsPerSec(fn('noble'), label.startsWith('ES256') ? 2000 : 1000)
  result[label] = Math.max(node, noble)
  rows.push([label, node, noble, `${fmt(node / noble)}x`])
}
console.log(table(['frames/s', 'node:crypto', '@noble', 'node/noble'], rows))

const decodeOnly = opsPerSec(() => decodeFrame(seFrame), 1000)
const w = new CborWriter(4096)
const p1 = syntheticPayload(se.id, { seconds: 1, seq: 1, seed: 1, t0 })
const encodeOnly = opsPerSec(() => encodePayload(w.reset(), p1), 1000)
console.log(`\nstrict decode only: ${fmt(decodeOnly)} frames/s; portable encode (payload): ${fmt(encodeOnly)} frames/s`)

const sizes: Array<Array<string | number>> = []
for (const seconds of [1, 2, 5]) {
  const p = syntheticPayload(se.id, { seconds, seq: 3, seed: 3, t0 })
  const s = signFrame(se, p).length
  const m = signFrame(bare, { ...p, deviceId: bare.id }).length
  const raw = (250 * 2 + 100 * 2 * 3) * seconds // 12-bit ECG in 2 bytes, 18-bit PPG in 3 bytes each
  sizes.push([`${seconds} s`, s, m, fmt(s / seconds), fmt(raw / seconds), `${fmt(s / raw)}x`])
}
console.log('\n' + table(['window', 'ES256 frame B', 'HMAC frame B', 'ES256 B/s of signal', 'raw B/s (2 B ECG, 3 B PPG)', 'frame/raw'], sizes))

const es = result['ES256 full verify (decode + signature)']
console.log(`\ntargets: 1 s frame ≤ 1,100 B signed: ${sizes[0][1]} B (${Number(sizes[0][1]) <= 1100 ? 'met' : 'MISSED'}); ≥ 10,000 ES256 frames/s with the faster verifier: ${fmt(es)} (${es >= 10000 ? 'met' : 'MISSED'})`)
