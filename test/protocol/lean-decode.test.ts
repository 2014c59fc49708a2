/**
 * The gateway's lean decoder (decodeFrameLean: samples validated in place, never
 * unpacked) must give exactly the verdicts of the full strict decoder: same
 * accept/reject, same FrameError code and message, same payload apart from the
 * sample arrays. Run over valid frames, hand-made bad sample strings and
 * thousands of randomly mutated frames.
 */
import t from 'tap'
import { fullAndLean } from './helpers/decode-verdict.ts'
import { Decoder, Encoder } from 'cbor-x'
import { decodeFrame, scanPacked } from '../../protocol/node/decode.ts'
import { generateKey } from '../../protocol/node/keys.ts'
import { signFrame, type DeviceSigningKey } from '../../protocol/node/sign.ts'
import { syntheticPayload } from '../../protocol/node/synthetic.ts'
import { buildSign1 } from '../../protocol/portable/cose.ts'
import { K } from '../../protocol/portable/frame.ts'
import { pack, unpack } from '../../protocol/portable/pack.ts'
import { createRng } from '../../protocol/node/rng.ts'

const dec = new Decoder({ mapsAsObjects: false, useRecords: false } as ConstructorParameters<typeof Decoder>[0])
const cborxDecode = (b: Uint8Array): unknown => dec.decode(b)
const enc = new Encoder({ mapsAsObjects: false, useRecords: false } as ConstructorParameters<typeof Encoder>[0])
const rng = createRng(6)
const rint = (n: number) => Math.floor(rng.next() * n)


const key = generateKey('p256') as Extract<DeviceSigningKey, { type: 'p256' }>
const good = (seq: number) => signFrame(key, syntheticPayload(key.id, { seconds: 1 + (seq % 3), seq, seed: 1, t0: 1_700_000_000_000 + seq }))

/** A frame whose payload map has `field` replaced by `value` (unsigned: decoding does not check signatures). */
function withField(field: number, value: unknown, drop: number[] = []): Uint8Array {
  const m = cborxDecode(decodeFrame(good(1)).payloadBytes) as Map<number, unknown>
  if (value === undefined) m.delete(field)
  else m.set(field, value)
  for (const d of drop) m.delete(d)
  return buildSign1(key.id, new Uint8Array(enc.encode(m)), new Uint8Array(64))
}

t.test('scanPacked gives unpack()s error, count and first out-of-range sample', async (t) => {
  let diffs = 0
  for (let i = 0; i < 20000; i++) {
    const len = rint(12)
    const b = new Uint8Array(len)
    for (let j = 0; j < len; j++) b[j] = rint(4) === 0 ? rint(256) : rint(4) === 0 ? 0x80 | rint(128) : rint(3) === 0 ? 0 : rint(128)
    const maxCount = 1 + rint(10)
    const max = rint(2) ? 4095 : 262143
    let want: string
    try {
      const s = unpack(b, maxCount)
      const bad = s.findIndex((x) => x < 0 || x > max)
      want = `count ${s.length} bad ${bad} ${bad >= 0 ? s[bad] : 0}`
    } catch (err) {
      want = (err as Error).message
    }
    let got: string
    try {
      const r = scanPacked(b, maxCount, max)
      got = `count ${r.count} bad ${r.badIndex} ${r.badValue}`
    } catch (err) {
      got = (err as Error).message
    }
    if (got !== want && diffs++ < 5) t.equal(got, want, `bytes ${Buffer.from(b).toString('hex')} maxCount ${maxCount}`)
  }
  t.equal(diffs, 0, '20,000 random byte strings: identical results')
})

t.test('valid frames and hand-made bad sample fields: identical verdicts', async (t) => {
  for (let s = 1; s <= 20; s++) t.match(fullAndLean(t, good(s), `good frame ${s}`), /^ok /, `good frame ${s} accepted by both`)
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['ECG beyond 12 bits', withField(K.ecg, pack([1, 2, 5000, 3])), /ecg sample 2 is 5000, outside 0\.\.4095/],
    ['negative ECG sample', withField(K.ecg, pack([1, -1])), /ecg sample 1 is -1/],
    ['PPG beyond 18 bits', withField(K.red, pack(new Array(100).fill(262144))), /red sample 0/],
    ['range error before a truncated varint: truncation wins, as in unpack', withField(K.ecg, new Uint8Array([...pack([5000]), 0x80])), /truncated varint/],
    ['overlong varint', withField(K.ecg, new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x01])), /longer than 5/],
    ['non-minimal varint', withField(K.ecg, new Uint8Array([0x81, 0x00])), /non-minimal/],
    ['no samples', withField(K.ecg, new Uint8Array(0)), /has no samples/],
    ['too many samples', withField(K.ecg, pack(new Array(1251).fill(1))), /more than 1250/],
    ['samples not a byte string', withField(K.ecg, [1, 2, 3]), /byte string of packed samples/],
    ['red/ir count mismatch', withField(K.ir, pack(new Array(99).fill(140000))), /red has 200 samples but ir has 99/],
    ['ECG and PPG durations differ', withField(K.ecg, pack(new Array(250).fill(2048))), /ECG covers/],
    ['sample beyond ±2^31', withField(K.ecg, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])), /out of range/],
    ['PPG only', withField(K.ecg, undefined, [K.ecgHz]), /^ok /],
  ]
  for (const [name, bytes, want] of cases) t.match(fullAndLean(t, bytes, name), want, name)
})

t.test('randomly mutated frames: identical verdicts', async (t) => {
  const kinds = new Map<string, number>()
  const N = 4000
  for (let i = 0; i < N; i++) {
    const b = new Uint8Array(good(1 + (i % 7)))
    const op = rint(4)
    let m: Uint8Array
    if (op === 0) {
      for (let j = 1 + rint(3); j > 0; j--) b[rint(b.length)] ^= 1 << rint(8)
      m = b
    } else if (op === 1) m = b.subarray(0, rint(b.length))
    else if (op === 2) {
      const at = rint(b.length)
      m = new Uint8Array([...b.subarray(0, at), rint(256), ...b.subarray(at)])
    } else {
      // mutate inside the packed samples only, then re-wrap so the envelope stays well-formed
      const mm = cborxDecode(decodeFrame(b).payloadBytes) as Map<number, unknown>
      const f = [K.ecg, K.red, K.ir][rint(3)]!
      const s = new Uint8Array(mm.get(f) as Uint8Array)
      for (let j = 1 + rint(3); j > 0; j--) s[rint(s.length)] = rint(256)
      mm.set(f, rint(4) === 0 ? s.subarray(0, rint(s.length)) : s)
      m = buildSign1(key.id, new Uint8Array(enc.encode(mm)), new Uint8Array(64))
    }
    const v = fullAndLean(t, m, `mutation ${i} (op ${op}): ${Buffer.from(m).toString('hex').slice(0, 64)}...`)
    const k = v.startsWith('ok') ? 'ok' : v.split(':')[0]! + (v.includes('sample') || v.includes('varint') ? ' (samples)' : '')
    kinds.set(k, (kinds.get(k) ?? 0) + 1)
  }
  t.ok((kinds.get('schema (samples)') ?? 0) > 100, `mutations reach the sample checks (${JSON.stringify(Object.fromEntries(kinds))})`)
})
