import t, { type Test } from 'tap'
import { decode as cborxDecode } from 'cbor-x'
import { randomPayload, createRng } from '../helpers/frames.ts'
import { generateKey } from '../../protocol/node/keys.ts'
import { signFrame, signPayloadBytes, signAuthToken, type DeviceSigningKey } from '../../protocol/node/sign.ts'
import { verifyFrame, verifyAuthToken, type DeviceKey } from '../../protocol/node/verify.ts'
import { decodeFrame } from '../../protocol/node/decode.ts'
import { FrameError } from '../../protocol/node/errors.ts'
import { CborWriter } from '../../protocol/portable/cbor.ts'
import { encodePayload, LIMITS, type FramePayload } from '../../protocol/portable/frame.ts'
import { buildSign1, buildMac0 } from '../../protocol/portable/cose.ts'
import { pack, unpack } from '../../protocol/portable/pack.ts'
import { deviceIdFromPublicKey, deviceIdFromBytes, isValidDeviceId } from '../../protocol/portable/device-id.ts'
import { nodeHash } from '../../protocol/node/hash-node.ts'
import { fromHex } from '../../protocol/portable/bytes.ts'

const se = generateKey('p256') as DeviceSigningKey & { type: 'p256' }
const bare = generateKey('hmac') as DeviceSigningKey & { type: 'hmac' }
const seKey: DeviceKey = { profile: 'se', publicKey: se.publicKey }
const bareKey: DeviceKey = { profile: 'bare', secret: bare.secret }

function same(t: Test, got: FramePayload, want: FramePayload) {
  const norm = (p: FramePayload) => ({ ...p, ecg: p.ecg && Array.from(p.ecg), red: p.red && Array.from(p.red), ir: p.ir && Array.from(p.ir) })
  t.same(norm(got), norm(want))
}

t.test('random frames: portable encoder → cbor-x decodes → both verifiers accept, both profiles', async (t) => {
  const rng = createRng(42)
  for (let i = 0; i < 60; i++) {
    const key = i % 2 ? se : bare
    const dk = i % 2 ? seKey : bareKey
    const p = randomPayload(rng, key.id)
    const bytes = signFrame(key, p, i % 4 < 2 ? 'node' : 'noble')
    const raw = cborxDecode(bytes)
    t.equal(raw.tag, i % 2 ? 18 : 17, 'COSE tag')
    for (const impl of ['node', 'noble'] as const) {
      const f = verifyFrame(bytes, dk, { impl })
      if (impl === 'node') same(t, f.payload, p)
    }
  }
})

t.test('a 1 s ECG+PPG frame at 250/100 Hz fits in 1,100 signed bytes', async (t) => {
  const rng = createRng(7)
  const p = randomPayload(rng, se.id, { seconds: 1 })
  p.ecgHz = 250
  p.ppgHz = 100
  // realistic signal: ECG moves a few counts per sample, PPG tens of counts
  p.ecg = Array.from({ length: 250 }, (_, i) => 2048 + Math.round(300 * Math.exp(-(((i % 200) - 100) ** 2) / 20) + 20 * Math.sin(i / 9)))
  p.red = Array.from({ length: 100 }, (_, i) => 120000 + Math.round(800 * Math.sin((2 * Math.PI * i) / 80)))
  p.ir = Array.from({ length: 100 }, (_, i) => 150000 + Math.round(1200 * Math.sin((2 * Math.PI * i) / 80)))
  p.hr = { value: 72.4, quality: 95 }
  p.pr = { value: 72, quality: 90 }
  p.spo2 = { value: 97.5, quality: 88 }
  p.batteryMv = 3950
  const bytes = signFrame(se, p)
  t.ok(bytes.length <= 1100, `signed frame is ${bytes.length} bytes`)
})

t.test('sample packing round-trips and refuses hostile input', async (t) => {
  const s = [0, 4095, 0, 262143, -5, 2147483647, -2147483647, 17]
  t.same(unpack(pack(s), 100), s)
  t.throws(() => unpack(new Uint8Array([0x80]), 10), /truncated/)
  t.throws(() => unpack(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), 10), /longer than 5/)
  t.throws(() => unpack(new Uint8Array([0x81, 0x00]), 10), /non-minimal/)
  t.throws(() => unpack(pack([1, 2, 3]), 2), /more than 2/)
  t.throws(() => pack([1.5]), /integer/)
})

t.test('device IDs: derived from the key, check character catches typos', async (t) => {
  t.equal(se.id, deviceIdFromPublicKey(nodeHash, se.publicKey))
  t.ok(isValidDeviceId(nodeHash, se.id))
  // A 5-bit hash check catches a substitution with probability 31/32: count over many
  // fixed IDs (seeded, so the figure is the same on every run) rather than one random key.
  const rng = createRng(17)
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
  let caught = 0
  let tried = 0
  for (let n = 0; n < 200; n++) {
    const id = deviceIdFromBytes(nodeHash, new Uint8Array(Array.from({ length: 10 }, () => rng.int(0, 255))))
    for (let i = 0; i < 17; i++) {
      const c = alphabet[(alphabet.indexOf(id[i]) + 1 + rng.int(0, 30)) % 32]
      tried++
      if (!isValidDeviceId(nodeHash, id.slice(0, i) + c + id.slice(i + 1))) caught++
    }
  }
  t.ok(caught / tried >= 0.95, `single-character typos caught: ${caught}/${tried}`)
  t.notOk(isValidDeviceId(nodeHash, se.id.toUpperCase()))
  t.notOk(isValidDeviceId(nodeHash, ''))
})

function expectFrameError(t: Test, fn: () => unknown, code: string, msg: RegExp, label: string) {
  try {
    fn()
    t.fail(`${label}: accepted`)
  } catch (err) {
    t.ok(err instanceof FrameError, `${label}: FrameError`)
    t.equal((err as FrameError).code, code, `${label}: code ${code}`)
    t.match((err as Error).message, msg, label)
  }
}

/** Signs hand-built payload bytes so schema checks are reached past the signature. */
function framed(payload: Uint8Array, key: DeviceSigningKey = se): Uint8Array {
  return signPayloadBytes(key, payload)
}
const w = () => new CborWriter(256)
const basePairs = (id: string): Array<[number, (w: CborWriter) => void]> => [
  [0, (w) => w.uint(1)], [1, (w) => w.ascii(id)], [2, (w) => w.uint(1)], [3, (w) => w.uint(1)], [4, (w) => w.uint(1)],
  [5, (w) => w.uint(250)], [6, (w) => w.bytes(pack([1, 2, 3]))], [13, (w) => w.uint(0)], [14, (w) => w.uint(0)], [16, (w) => w.ascii('fw')],
]
function mapOf(pairs: Array<[number, (w: CborWriter) => void]>): Uint8Array {
  const x = w().mapHeader(pairs.length)
  for (const [k, f] of pairs) { x.uint(k); f(x) }
  return x.copy()
}

t.test('strict decoding: each rule rejects with a typed error naming the problem', async (t) => {
  const good = mapOf(basePairs(se.id))
  t.ok(verifyFrame(framed(good), seKey), 'hand-built baseline frame verifies')
  expectFrameError(t, () => decodeFrame(new Uint8Array(0)), 'size', /empty/, 'empty')
  expectFrameError(t, () => decodeFrame(new Uint8Array(LIMITS.maxFrameBytes + 1)), 'size', /exceeds/, 'oversized')
  const f = framed(good)
  expectFrameError(t, () => decodeFrame(new Uint8Array([...f, 0])), 'cbor', /trailing/, 'trailing byte')
  expectFrameError(t, () => decodeFrame(f.subarray(0, f.length - 3)), 'cbor', /end/, 'truncated')
  expectFrameError(t, () => decodeFrame(fromHex('9fff')), 'cbor', /indefinite/, 'indefinite length')
  expectFrameError(t, () => decodeFrame(fromHex('d8128441a0a0405820' + '00'.repeat(32))), 'cbor', /non-shortest/, 'non-shortest tag head')
  expectFrameError(t, () => decodeFrame(fromHex('a201020103')), 'cbor', /duplicate/, 'duplicate keys at top')
  // duplicate key inside the signed payload
  const dup = mapOf([...basePairs(se.id), [2, (w) => w.uint(9)]])
  expectFrameError(t, () => decodeFrame(framed(dup)), 'cbor', /duplicate/, 'duplicate payload key')
  expectFrameError(t, () => decodeFrame(framed(mapOf([...basePairs(se.id), [99, (w) => w.uint(1)]]))), 'schema', /unknown payload key 99/, 'unknown key')
  expectFrameError(t, () => decodeFrame(framed(mapOf(basePairs(se.id).filter(([k]) => k !== 2)))), 'schema', /missing seq/, 'missing seq')
  expectFrameError(t, () => decodeFrame(framed(mapOf(basePairs(se.id).map(([k, f]) => [k, k === 2 ? (w: CborWriter) => w.ascii('1') : f])))), 'schema', /seq .* unsigned integer/, 'wrong type')
  expectFrameError(t, () => decodeFrame(framed(mapOf(basePairs(se.id).map(([k, f]) => [k, k === 6 ? (w: CborWriter) => w.bytes(pack(new Array(1251).fill(1))) : f])))), 'schema', /more than 1250/, 'oversized sample array')
  expectFrameError(t, () => decodeFrame(framed(mapOf(basePairs(se.id).map(([k, f]) => [k, k === 6 ? (w: CborWriter) => w.bytes(pack([5000])) : f])))), 'schema', /outside 0\.\.4095/, 'ECG beyond 12 bits')
  expectFrameError(t, () => decodeFrame(framed(mapOf(basePairs(se.id).map(([k, f]) => [k, k === 13 ? (w: CborWriter) => w.uint(1024) : f])))), 'schema', /unknown bits/, 'unknown flag bits')
  expectFrameError(t, () => decodeFrame(framed(mapOf([...basePairs(se.id), [12, (w) => w.arrayHeader(2).uint(1200).uint(50)]]))), 'schema', /spo2 .* exceeds 100/, 'SpO2 above 100')
  expectFrameError(t, () => decodeFrame(framed(mapOf(basePairs(bare.id)))), 'header', /differs from the payload/, 'kid differs from device ID')
  // unknown protected header label (e.g. crit) inside an otherwise valid Sign1
  const prot = w().mapHeader(3).uint(1).int(-7).uint(2).arrayHeader(1).uint(99).uint(4).bytes(new TextEncoder().encode(se.id)).copy()
  const withCrit = w().tag(18).arrayHeader(4).bytes(prot).mapHeader(0).bytes(good).bytes(new Uint8Array(64)).copy()
  expectFrameError(t, () => decodeFrame(withCrit), 'header', /unknown protected header label 2/, 'critical header')
  const unprot = w().tag(18).arrayHeader(4).bytes(fromHex('a2012604' + '51' + Buffer.from(se.id).toString('hex'))).mapHeader(1).uint(4).bytes(new Uint8Array(1)).bytes(good).bytes(new Uint8Array(64)).copy()
  expectFrameError(t, () => decodeFrame(unprot), 'header', /unprotected header must be empty/, 'unprotected header')
  expectFrameError(t, () => decodeFrame(buildMac0(se.id, good, new Uint8Array(32)).map((b, i) => (i === 0 ? 0xd2 : b))), 'header', /alg must be -7/, 'tag/alg mismatch')
  expectFrameError(t, () => decodeFrame(fromHex('d9' + '03e6' + '80')), 'cose', /tag 18 .* or 17/, 'wrong tag')
})

t.test('tampering and key confusion are caught by verification', async (t) => {
  const p = randomPayload(createRng(3), se.id)
  const good = signFrame(se, p)
  // flip a bit in the payload's last sample bytes: still well-formed, signature fails
  const payload = new Uint8Array(encodePayload(new CborWriter(2048), p))
  const tampered = buildSign1(se.id, payload.map((b, i) => (i === payload.length - 3 ? b ^ 1 : b)), decodeFrame(good).tag)
  expectFrameError(t, () => verifyFrame(tampered, seKey), 'signature', /does not verify/, 'bit flip in samples')
  expectFrameError(t, () => verifyFrame(good, { profile: 'se', publicKey: (generateKey('p256') as any).publicKey }), 'signature', /does not verify/, 'other device key')
  expectFrameError(t, () => verifyFrame(good, bareKey), 'key', /bare-profile device; an ES256 signature is not accepted/, 'MAC key for an SE frame')
  const mac = signFrame(bare, { ...p, deviceId: bare.id })
  expectFrameError(t, () => verifyFrame(mac, { profile: 'bare', secret: new Uint8Array(32) }), 'signature', /HMAC/, 'wrong secret')
  expectFrameError(t, () => verifyFrame(mac, seKey), 'key', /signs with a secure element; a MAC is not accepted/, 'signature key for a MAC frame')
})

t.test('mangler: every truncation and single-byte change of a frame is rejected, never thrown as a non-FrameError', async (t) => {
  const frame = signFrame(bare, randomPayload(createRng(5), bare.id, { seconds: 1 }))
  let accepted = 0
  let wrongError = 0
  const tryOne = (b: Uint8Array) => {
    try {
      verifyFrame(b, bareKey)
      accepted++
    } catch (err) {
      if (!(err instanceof FrameError)) wrongError++
    }
  }
  for (let n = 0; n < frame.length; n++) tryOne(frame.subarray(0, n))
  for (let i = 0; i < frame.length; i++) for (const x of [1, 0x80, 0xff]) tryOne(frame.map((b, j) => (j === i ? b ^ x : b)))
  t.equal(accepted, 0, 'no mangled frame verifies')
  t.equal(wrongError, 0, 'every rejection is a FrameError')
  for (const junk of [null, undefined, 'frame', 42, {}, [1, 2]] as unknown[]) t.throws(() => decodeFrame(junk as Uint8Array), FrameError)
})

t.test('auth tokens: verify, bind to the device, and are not frames', async (t) => {
  const tok = signAuthToken(se, { iatMs: 1_790_000_000_000, counter: 7 })
  const d = verifyAuthToken(tok, seKey)
  t.same(d.claims, { deviceId: se.id, iatMs: 1_790_000_000_000, counter: 7 })
  const btok = signAuthToken(bare, { iatMs: 5, counter: 1 })
  t.equal(verifyAuthToken(btok, bareKey).claims.counter, 1)
  expectFrameError(t, () => verifyAuthToken(btok, { profile: 'bare', secret: new Uint8Array(32) }), 'signature', /HMAC/, 'token with wrong secret')
  expectFrameError(t, () => decodeFrame(tok), 'schema', /payload must be a CBOR map/, 'token is not a frame')
  expectFrameError(t, () => verifyAuthToken(signFrame(se, randomPayload(createRng(1), se.id)), seKey), 'size', /exceeds the 512-byte cap/, 'frame is not a token')
})
