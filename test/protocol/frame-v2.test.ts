/**
 * Version-2 frames (the sensors' FIFO bytes): encoder and strict decoder round
 * trips at every MAX30003 rate and gain, both profiles; the schema refusals,
 * each naming its key; the lean decoder (the gateway's) agreeing with the full
 * one on every verdict, over hand-made and randomly mangled frames; version 1
 * untouched beside it.
 */
import t from 'tap'
import { fullAndLean } from './helpers/decode-verdict.ts'
import { Decoder, Encoder } from 'cbor-x'
import { decodeFrame } from '../../protocol/node/decode.ts'
import { generateKey } from '../../protocol/node/keys.ts'
import { signFrame, signFrameV2, type DeviceSigningKey } from '../../protocol/node/sign.ts'
import { verifyFrame } from '../../protocol/node/verify.ts'
import { syntheticPayload } from '../../protocol/node/synthetic.ts'
import { createRng } from '../../protocol/node/rng.ts'
import { CborWriter } from '../../protocol/portable/cbor.ts'
import { buildSign1 } from '../../protocol/portable/cose.ts'
import { encodePayloadV2, FLAG_GAP, FLAG_RECOVERED, K, K2, type FramePayloadV2 } from '../../protocol/portable/frame.ts'
import { decodeFifoWord, ETAG, fifoWord, mvFromCounts } from '../../hardware-sim/devices/max30003-map.ts'
import { V2Stream, wordBytes, ppgBytes } from './helpers/v2-synth.ts'

const dec = new Decoder({ mapsAsObjects: false, useRecords: false } as ConstructorParameters<typeof Decoder>[0])
const enc = new Encoder({ mapsAsObjects: false, useRecords: false } as ConstructorParameters<typeof Encoder>[0])
const se = generateKey('p256') as Extract<DeviceSigningKey, { type: 'p256' }>
const bare = generateKey('hmac') as Extract<DeviceSigningKey, { type: 'hmac' }>
const T0 = 1_790_000_000_000

/** What the decoder should give for the ECG words: the simulator's own reading of them. */
function expectedEcg(raw: Uint8Array): number[] {
  const out: number[] = []
  for (let o = 0; o < raw.length; o += 3) out.push(decodeFifoWord((raw[o]! << 16) | (raw[o + 1]! << 8) | raw[o + 2]!).counts)
  return out
}


const stream = new V2Stream({ deviceId: se.id, ecgHz: 256, t0: T0 })
const goodPayload = stream.next(7)
const good = signFrameV2(se, goodPayload)

/** The good frame with payload key `key` set to `value` (undefined: removed), re-wrapped unsigned. */
function withField(changes: Array<[number, unknown]>): Uint8Array {
  const m = dec.decode(decodeFrame(good).payloadBytes) as Map<number, unknown>
  for (const [k, v] of changes) {
    if (v === undefined) m.delete(k)
    else m.set(k, v)
  }
  return buildSign1(se.id, new Uint8Array(enc.encode(m)), new Uint8Array(64))
}

t.test('round trips at 128, 256 and 512 sps, every gain, both profiles', async (t) => {
  for (const ecgHz of [128, 256, 512] as const) {
    for (const gain of [20, 40, 80, 160] as const) {
      for (const key of [se, bare]) {
        const s = new V2Stream({ deviceId: key.id, ecgHz, gain, t0: T0, seconds: 2 })
        const p = s.next(1)
        const bytes = signFrameV2(key, p)
        const f = verifyFrame(bytes, key.type === 'p256' ? { profile: 'se', publicKey: key.publicKey } : { profile: 'bare', secret: key.secret })
        const d = f.payload
        t.equal(d.v, 2)
        t.equal(d.ecgHz, ecgHz)
        t.equal(d.ecgGain, gain)
        t.equal(d.ecgUvPerLsb, 1e6 / (131072 * gain))
        t.ok(d.ecg instanceof Int32Array && d.red instanceof Uint32Array && d.ir instanceof Uint32Array, 'typed arrays')
        t.same(Array.from(d.ecg!), expectedEcg(p.ecgRaw!), `${ecgHz} sps gain ${gain}: counts as the simulator reads its words`)
        t.equal(d.ecg!.length, ecgHz * 2)
        // 1.2 mV R peaks: the decoded counts say so at every gain
        const peakMv = mvFromCounts(Math.max(...Array.from(d.ecg!)), gain)
        t.ok(peakMv > 0.9 && peakMv < 1.5, `R peak ${peakMv.toFixed(2)} mV`)
        t.equal(d.red!.length, 200)
        t.equal(d.gaps, undefined)
        if (gain !== 80 || key !== se) continue
        t.equal(fullAndLean(t, bytes, `${ecgHz}`).slice(0, 2), 'ok')
      }
    }
  }
})

t.test('the encoder writes keys in ascending order and is deterministic', async (t) => {
  const p: FramePayloadV2 = { ...stream.next(8, { ecgLost: 5 }), hr: { value: 72.5, quality: 90 }, rr: [830, 812], faults: 2, batteryMv: 3800, tempC: -120 }
  p.flags |= FLAG_RECOVERED
  const a = encodePayloadV2(new CborWriter(16), p).slice()
  const b = encodePayloadV2(new CborWriter(4096), p).slice()
  t.same(a, b, 'same bytes whatever the starting buffer')
  const keys = [...(dec.decode(a) as Map<number, unknown>).keys()]
  t.same(keys, [0, 1, 2, 3, 4, 5, 7, 10, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23])
  const d = decodeFrame(signFrameV2(se, p)).payload
  t.same(d.gaps, [{ lane: 0, at: 128, lost: 5 }])
  t.same(d.rr, [830, 812])
  t.equal(d.faults, 2)
  t.equal(d.tempC, -120)
  t.same(d.hr, { value: 72.5, quality: 90 })
  t.equal(d.flags, FLAG_GAP | FLAG_RECOVERED)
})

t.test('the encoder refuses what would make an invalid frame', async (t) => {
  const p = stream.next(9)
  const bad = (over: Partial<FramePayloadV2>) => () => encodePayloadV2(new CborWriter(64), { ...p, ...over })
  t.throws(bad({ v: 1 }), /expected v 2, got 1/)
  t.throws(bad({ ecgRaw: new Uint8Array(4) }), /multiple of 3 bytes, got 4/)
  t.throws(bad({ ppgRaw: new Uint8Array(7) }), /multiple of 6 bytes, got 7/)
  t.throws(bad({ ecgGain: undefined }), /ecgGain are required/)
  t.throws(bad({ ecgRaw: undefined, ppgRaw: undefined }), /needs ecgRaw or ppgRaw/)
  t.throws(bad({ gaps: [{ lane: 0, at: 1, lost: 2 }] }), /FLAG_GAP/)
  t.throws(bad({ flags: FLAG_GAP }), /FLAG_GAP/)
  t.throws(bad({ faults: 1 }), /FLAG_RECOVERED/)
  t.doesNotThrow(bad({ gaps: [], flags: 0 }), 'an empty gap list is left out')
  t.same([...(dec.decode(encodePayloadV2(new CborWriter(64), { ...p, gaps: [] })) as Map<number, unknown>).keys()].includes(K2.gaps), false)
})

t.test('fast-recovery words are samples, marked; PTAG and the MAX30102 upper bits are ignored', async (t) => {
  const words = [fifoWord(100, ETAG.VALID, 0), fifoWord(-5, ETAG.FAST, 5), fifoWord(131071, ETAG.FAST_EOF, 7), fifoWord(-131072, ETAG.VALID_EOF, 2)]
  const ppg = ppgBytes([262143, 1], [0, 5])
  ppg[0]! |= 0xfc // D[23:18] are not data
  ppg[3]! |= 0xa8
  const bytes = withField([[K2.ecgRaw, wordBytes(words)], [K2.ppgRaw, ppg], [K.ecgHz, 128], [K.ppgHz, 50]])
  const d = decodeFrame(bytes).payload
  t.same(Array.from(d.ecg!), [100, -5, 131071, -131072])
  t.same(Array.from(d.ecgFast!), [0, 1, 1, 0])
  t.same(Array.from(d.red!), [262143, 1])
  t.same(Array.from(d.ir!), [0, 5])
  t.match(fullAndLean(t, bytes, 'fast'), /^ok /)
})

t.test('schema refusals name the key, and the lean decoder gives the same verdict', async (t) => {
  const words = (tags: number[]) => wordBytes(tags.map((e) => fifoWord(10, e)))
  const n = 256 // ECG samples of the good frame (1 s at 256 sps); PPG 100
  const cases: Array<[string, Array<[number, unknown]>, RegExp]> = [
    ['ecgRaw not a multiple of 3', [[K2.ecgRaw, new Uint8Array(3 * n + 1)]], /ecgRaw \(key 18\) must be a multiple of 3 bytes, got 769/],
    ['ppgRaw not a multiple of 6', [[K2.ppgRaw, new Uint8Array(6 * 100 - 2)]], /ppgRaw \(key 19\) must be a multiple of 6 bytes, got 598/],
    ['ecgRaw empty', [[K2.ecgRaw, new Uint8Array(0)]], /ecgRaw \(key 18\) has no samples/],
    ['ecgRaw an array', [[K2.ecgRaw, [1, 2, 3]]], /ecgRaw \(key 18\) must be a byte string of MAX30003 FIFO words, got an array/],
    ['ppgRaw text', [[K2.ppgRaw, 'abc']], /ppgRaw \(key 19\) must be a byte string of MAX30102 FIFO samples, got string/],
    ['an empty-tagged word', [[K2.ecgRaw, words([0, 6, 0])], [K.ppgHz, undefined], [K2.ppgRaw, undefined]], /ecgRaw \(key 18\) word 1 has ETAG 110 \(FIFO empty\), expected a sample tag/],
    ['an overflow-tagged word', [[K2.ecgRaw, words([7])], [K.ppgHz, undefined], [K2.ppgRaw, undefined]], /word 0 has ETAG 111 \(FIFO overflow\)/],
    ['an undefined tag', [[K2.ecgRaw, words([0, 0, 4])], [K.ppgHz, undefined], [K2.ppgRaw, undefined]], /word 2 has ETAG 100 \(undefined\)/],
    ['ecgHz of the AD8232', [[K.ecgHz, 250]], /ecgHz \(key 5\) must be 128, 256, 512 in version 2/],
    ['ecgHz missing', [[K.ecgHz, undefined]], /missing ecgHz \(key 5\)/],
    ['ecgHz as text', [[K.ecgHz, '256']], /ecgHz \(key 5\) must be an unsigned integer, got string/],
    ['ecgGain missing', [[K2.ecgGain, undefined]], /missing ecgGain \(key 20\)/],
    ['ecgGain not a chip setting', [[K2.ecgGain, 50]], /ecgGain \(key 20\) must be 20, 40, 80, 160 V\/V, got 50/],
    ['ecgGain without ecgRaw', [[K2.ecgRaw, undefined]], /ecgRaw \(key 18\) must be a byte string of MAX30003 FIFO words, got undefined/],
    ['ppgHz missing', [[K.ppgHz, undefined]], /missing ppgHz \(key 7\)/],
    ['ppgHz out of range', [[K.ppgHz, 2000]], /ppgHz \(key 7\) must be 25\.\.1000, got 2000/],
    ['v1 ECG lane', [[K.ecg, new Uint8Array([1])]], /ecg \(key 6\) is a version-1 sample lane, not allowed in version 2/],
    ['v1 red lane', [[K.red, new Uint8Array([1])]], /red \(key 8\) is a version-1 sample lane/],
    ['v1 IR lane', [[K.ir, new Uint8Array([1])]], /ir \(key 9\) is a version-1 sample lane/],
    ['unknown key', [[24, 1]], /unknown payload key 24/],
    ['no lane at all', [[K2.ecgRaw, undefined], [K.ecgHz, undefined], [K2.ecgGain, undefined], [K2.ppgRaw, undefined], [K.ppgHz, undefined]], /frame carries neither ECG \(key 18\) nor PPG \(key 19\) samples/],
    ['more than 5 s', [[K2.ecgRaw, words(new Array(5 * 256 + 1).fill(0))], [K.ppgHz, undefined], [K2.ppgRaw, undefined]], /ecgRaw \(key 18\) has 1281 samples, more than 1280 \(5 s at 256 Hz\)/],
    ['unknown flag bit', [[K.flags, 128]], /flags 128 sets unknown bits/],
    ['gaps not an array', [[K2.gaps, 5], [K.flags, FLAG_GAP]], /gaps \(key 21\) must be an array of \[lane, at, lost\], got 5/],
    ['gaps empty', [[K2.gaps, []], [K.flags, FLAG_GAP]], /gaps \(key 21\) is empty; omit the key/],
    ['gap record short', [[K2.gaps, [[0, 1]]], [K.flags, FLAG_GAP]], /record 0 must be \[lane, at, lost\] of unsigned integers, got \[0, 1\]/],
    ['gap record negative', [[K2.gaps, [[0, -1, 2]]], [K.flags, FLAG_GAP]], /record 0 must be \[lane, at, lost\] of unsigned integers, got \[0, -1, 2\]/],
    ['gap lane 2', [[K2.gaps, [[2, 1, 1]]], [K.flags, FLAG_GAP]], /record 0: lane must be 0 \(ECG\) or 1 \(PPG\), got 2/],
    ['gap beyond the lane', [[K2.gaps, [[0, n + 1, 1]]], [K.flags, FLAG_GAP]], /record 0: at must be 0\.\.256 \(the ECG lane's sample count\), got 257/],
    ['gap losing nothing', [[K2.gaps, [[1, 3, 0]]], [K.flags, FLAG_GAP]], /record 0: lost must be 1\.\.4294967295, got 0/],
    ['gaps out of order', [[K2.gaps, [[0, 9, 1], [1, 2, 1], [0, 8, 1]]], [K.flags, FLAG_GAP]], /record 2: ECG gaps must be in order of at, got 8 after 9/],
    ['gap in an absent lane', [[K2.gaps, [[1, 0, 1]]], [K.flags, FLAG_GAP], [K.ppgHz, undefined], [K2.ppgRaw, undefined]], /record 0: a gap in the PPG lane, but the frame has no PPG samples \(key 19\)/],
    ['gaps without FLAG_GAP', [[K2.gaps, [[0, 5, 1]]]], /gaps \(key 21\) present but flags 0 lacks FLAG_GAP \(32\)/],
    ['FLAG_GAP without gaps', [[K.flags, FLAG_GAP]], /flags 32 sets FLAG_GAP \(32\) but there is no gaps record \(key 21\)/],
    ['lost samples make ECG longer than PPG', [[K2.gaps, [[0, 100, 128]]], [K.flags, FLAG_GAP]], /ECG covers 1\.50 s but PPG covers 1\.00 s \(samples plus lost samples\)/],
    ['lanes differ without gaps', [[K2.ecgRaw, words(new Array(128).fill(0))]], /ECG covers 0\.50 s but PPG covers 1\.00 s/],
    ['rr not an array', [[K2.rr, 812]], /rr \(key 22\) must be an array of R-to-R intervals in ms, got 812/],
    ['rr of zero', [[K2.rr, [800, 0]]], /rr \(key 22\) interval 1 must be an integer 1\.\.131071 ms, got 0/],
    ['rr too long', [[K2.rr, [131072]]], /interval 0 must be an integer 1\.\.131071 ms, got 131072/],
    ['rr too many', [[K2.rr, new Array(65).fill(800)]], /rr \(key 22\) has 65 intervals, more than 64/],
    ['faults zero', [[K2.faults, 0], [K.flags, FLAG_RECOVERED]], /faults \(key 23\) must be an unsigned integer of at least 1, got 0/],
    ['faults without the flag', [[K2.faults, 2]], /faults \(key 23\) present but flags 0 lacks FLAG_RECOVERED \(64\)/],
    ['the flag without faults', [[K.flags, FLAG_RECOVERED]], /flags 64 sets FLAG_RECOVERED \(64\) but faults \(key 23\) is missing/],
    ['hr malformed', [[K.hr, [1]]], /hr \(key 10\) must be \[value×10, quality\]/],
  ]
  for (const [name, changes, want] of cases) t.match(fullAndLean(t, withField(changes), name), want, name)

  const accepted: Array<[string, Array<[number, unknown]>]> = [
    ['lost samples make up the ECG lane', [[K2.ecgRaw, words(new Array(128).fill(0))], [K2.gaps, [[0, 64, 128]]], [K.flags, FLAG_GAP]]],
    ['gaps at the start and end of a lane, interleaved lanes, equal at', [[K2.ecgRaw, words(new Array(250).fill(0))], [K2.gaps, [[0, 0, 2], [1, 99, 1], [0, 250, 2], [0, 250, 1]]], [K.flags, FLAG_GAP], [K2.ppgRaw, new Uint8Array(6 * 99)]]],
    ['ECG only', [[K.ppgHz, undefined], [K2.ppgRaw, undefined]]],
    ['PPG only', [[K.ecgHz, undefined], [K2.ecgRaw, undefined], [K2.ecgGain, undefined]]],
    ['empty rr', [[K2.rr, []]]],
    ['every known flag', [[K.flags, 127], [K2.gaps, [[1, 40, 1]]], [K2.faults, 1], [K2.ppgRaw, new Uint8Array(6 * 99)]]],
  ]
  for (const [name, changes] of accepted) t.match(fullAndLean(t, withField(changes), name), /^ok /, name)
})

t.test('version 1 decodes as before beside version 2; other versions are refused', async (t) => {
  const v1 = syntheticPayload(se.id, { seconds: 1, seq: 3, seed: 1, t0: T0 })
  const d = decodeFrame(signFrame(se, v1)).payload
  t.equal(d.v, 1)
  t.ok(Array.isArray(d.ecg), 'version-1 samples stay plain arrays')
  t.same(d.ecg, v1.ecg)
  t.equal(d.ecgUvPerLsb, undefined, 'no MAX30003 scale on an AD8232 frame')
  t.equal(d.gaps, undefined)
  const m = dec.decode(decodeFrame(signFrame(se, v1)).payloadBytes) as Map<number, unknown>
  m.set(K2.ecgRaw, new Uint8Array(3))
  t.match(fullAndLean(t, buildSign1(se.id, new Uint8Array(enc.encode(m)), new Uint8Array(64)), 'v1 with key 18'), /unknown payload key 18/, 'version-2 keys are unknown to version 1')
  t.match(fullAndLean(t, withField([[K.v, 3]]), 'v3'), /schema: unknown payload key 18/, 'a version-3 frame with version-2 keys')
  m.delete(K2.ecgRaw)
  m.set(K.v, 3)
  t.match(fullAndLean(t, buildSign1(se.id, new Uint8Array(enc.encode(m)), new Uint8Array(64)), 'v3'), /unsupported frame version 3, expected 1 or 2/)
  m.set(K.v, 1)
  m.set(K.flags, FLAG_GAP)
  t.match(fullAndLean(t, buildSign1(se.id, new Uint8Array(enc.encode(m)), new Uint8Array(64)), 'v1 FLAG_GAP'), /flags 32 sets unknown bits/, 'the version-2 flag bits stay unknown to version 1')
})

t.test('mangled frames: never a crash, lean and full always agree', async (t) => {
  const rng = createRng(24)
  const rint = (k: number) => Math.floor(rng.next() * k)
  const frames = [good, signFrameV2(bare, new V2Stream({ deviceId: bare.id, ecgHz: 128, t0: T0 }).next(1, { ecgLost: 3, ecgLostAt: 0 })), signFrameV2(se, { ...new V2Stream({ deviceId: se.id, ecgHz: 512, t0: T0 }).next(2), rr: [800, 810], faults: 1, flags: FLAG_RECOVERED })]
  const kinds = new Map<string, number>()
  for (let i = 0; i < 3000; i++) {
    const b = new Uint8Array(frames[i % frames.length]!)
    const op = rint(4)
    let m: Uint8Array
    if (op === 0) {
      for (let j = 1 + rint(3); j > 0; j--) b[rint(b.length)] ^= 1 << rint(8)
      m = b
    } else if (op === 1) m = b.subarray(0, rint(b.length))
    else if (op === 2) {
      // inside the FIFO bytes: tags, truncation, odd lengths; the envelope stays well-formed
      const mm = dec.decode(decodeFrame(b).payloadBytes) as Map<number, unknown>
      const f = [K2.ecgRaw, K2.ppgRaw][rint(2)]!
      const s = new Uint8Array(mm.get(f) as Uint8Array)
      for (let j = 1 + rint(3); j > 0; j--) s[rint(s.length)] = rint(256)
      mm.set(f, rint(3) === 0 ? s.subarray(0, rint(s.length)) : s)
      m = buildSign1(se.id, new Uint8Array(enc.encode(mm)), new Uint8Array(64))
    } else {
      // a field of the wrong type or value
      const mm = dec.decode(decodeFrame(b).payloadBytes) as Map<number, unknown>
      const keys = [K.ecgHz, K.ppgHz, K.flags, K2.ecgGain, K2.gaps, K2.rr, K2.faults, K2.ecgRaw, K2.ppgRaw]
      const values: unknown[] = [0, 1, 128, 256, 'x', -1, [], [[0, 1, 1]], [[1, 0, 1]], new Uint8Array(6), null, 2.5, [1, 2, 3]]
      mm.set(keys[rint(keys.length)]!, values[rint(values.length)])
      m = buildSign1(se.id, new Uint8Array(enc.encode(mm)), new Uint8Array(64))
    }
    const v = fullAndLean(t, m, `mangle ${i} op ${op}`)
    if (v.startsWith('THROWN')) t.fail(`mangle ${i}: not a FrameError: ${v}`)
    const k = v.startsWith('ok') ? 'ok' : v.split(':')[0]!
    kinds.set(k, (kinds.get(k) ?? 0) + 1)
  }
  t.ok((kinds.get('schema') ?? 0) > 300, `mangling reaches the schema checks (${JSON.stringify(Object.fromEntries(kinds))})`)
})
