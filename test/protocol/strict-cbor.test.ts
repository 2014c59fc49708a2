/**
 * The strict CBOR gate (protocol/node/cbor-strict.ts) and what the decoders do
 * with what it reports. Issue 19: map keys were compared by their bytes, so the
 * integer 2 and the half-float 2.0 passed as two keys and cbor-x kept the later
 * one; a half-float 7.0 passed as `seq`; a seq of 2^48 reached the ledger and
 * came back as `internal`.
 *
 * Driven first by the published vectors (RFC 8949 Appendix A, cose-wg/Examples),
 * then by the cases of the issue, each at the gate, through decodeFrame and
 * through the gateway's lean decoder (same verdict, same message).
 */
import t, { type Test } from 'tap'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Decoder, Tag } from 'cbor-x'
import { sharedData } from '../helpers/cli.ts'
import { assertStrictCbor } from '../../protocol/node/cbor-strict.ts'
import { decodeFrame, decodeFrameLean, decodeAuthToken } from '../../protocol/node/decode.ts'
import { FrameError } from '../../protocol/node/errors.ts'
import { generateKey } from '../../protocol/node/keys.ts'
import { signPayloadBytes, type DeviceSigningKey } from '../../protocol/node/sign.ts'
import { CborWriter } from '../../protocol/portable/cbor.ts'
import { buildMac0 } from '../../protocol/portable/cose.ts'
import { pack } from '../../protocol/portable/pack.ts'
import { fromHex } from '../../protocol/portable/bytes.ts'

const hex = (s: string) => fromHex(s.replace(/\s+/g, ''))

/** The gate's verdict: 'ok' (with the first float, if any) or its message. */
function gate(b: Uint8Array): { ok: true; float: ReturnType<typeof assertStrictCbor> } | { ok: false; message: string } {
  try {
    return { ok: true, float: assertStrictCbor(b) }
  } catch (err) {
    if (!(err instanceof FrameError) || err.code !== 'cbor') throw err
    return { ok: false, message: err.message }
  }
}

function refused(t: Test, h: string, msg: RegExp, label: string) {
  const r = gate(hex(h))
  t.notOk(r.ok, `${label}: refused`)
  if (!r.ok) t.match(r.message, msg, label)
}

t.test('RFC 8949 Appendix A: the gate accepts every item in preferred serialisation and refuses every other', async (t) => {
  interface Item { hex: string; roundtrip: boolean; decoded?: unknown; diagnostic?: string }
  const items: Item[] = JSON.parse(readFileSync(join(sharedData, 'vectors', 'cbor', 'appendix_a.json'), 'utf8'))
  // Refused although round-trip items: beyond our integer range, or not well-formed under RFC 8949 §3.3.
  const beyond: Record<string, RegExp> = {
    '1bffffffffffffffff': /beyond 2\^53/,
    '3bffffffffffffffff': /beyond 2\^53/,
    f818: /simple value in two-byte form/,
  }
  let accepted = 0
  let floats = 0
  for (const it of items) {
    const label = `${it.hex} (${it.diagnostic ?? JSON.stringify(it.decoded)})`
    const r = gate(fromHex(it.hex))
    if (beyond[it.hex]) {
      t.notOk(r.ok, `${label}: refused`)
      if (!r.ok) t.match(r.message, beyond[it.hex]!, label)
    } else if (it.roundtrip) {
      t.ok(r.ok, `${label}: accepted${r.ok ? '' : ': ' + r.message}`)
      accepted++
      // every float is reported with its value (JSON writes NaN and ±Infinity only in diagnostic)
      if (r.ok && r.float) {
        floats++
        const want = typeof it.decoded === 'number' ? it.decoded : Number(it.diagnostic!.replace(/^\d+\((.*)\)$/, '$1'))
        t.ok(Object.is(r.float.value, want), `${label}: float value ${r.float.value}`)
      }
    } else {
      // indefinite lengths, and floats a shorter float holds exactly
      t.notOk(r.ok, `${label}: refused`)
      if (!r.ok) t.match(r.message, /indefinite length|not in its shortest form/, label)
    }
  }
  t.equal(accepted, 62, 'the 65 round-trip items but those three accepted')
  t.equal(floats, 17, 'the 16 float items and the float inside tag 1 reported')
})

t.test('cose-wg/Examples: every message and protected header passes the gate; the same headers with a key repeated by value do not', async (t) => {
  const dir = join(sharedData, 'vectors', 'cose')
  const walk = (d: string): string[] => readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : f.endsWith('.json') ? [join(d, f)] : []))
  const cborx = new Decoder({ mapsAsObjects: false, useRecords: false } as ConstructorParameters<typeof Decoder>[0])
  let n = 0
  for (const f of walk(dir)) {
    const v = JSON.parse(readFileSync(f, 'utf8'))
    if (!v.output?.cbor) continue
    const label = f.slice(dir.length + 1)
    const msg = fromHex(v.output.cbor)
    const r = gate(msg)
    t.ok(r.ok, `${label}: message${r.ok ? '' : ': ' + r.message}`)
    t.equal(r.ok && r.float, null, `${label}: no float`)
    // tags unwrapped (CWT nests the COSE tag in tag 61) down to the COSE array
    let top = cborx.decode(msg) as unknown
    while (top instanceof Tag) top = top.value
    const prot = (top as unknown[])[0] as Uint8Array
    if (prot.length) t.ok(gate(prot).ok, `${label}: protected header`)
    n++
  }
  t.equal(n, 19, '19 examples with an output')
  // sign-pass-01's protected header is a10126, {1: -7}; label 1 again as the half-float 1.0 (f93c00)
  refused(t, 'a2 0126 f93c00 27', /duplicate map key 1 at byte 3/, '{1: -7, 1.0: -8}')
  refused(t, 'a2 f93c00 27 0126', /duplicate map key 1 at byte 5/, '{1.0: -8, 1: -7}')
  t.ok(gate(hex('a1 f93c00 26')).ok, '{1.0: -7} alone is well-formed (the header check refuses it, below)')
})

t.test('map keys are compared by value', async (t) => {
  // the cases of the issue: int 2 against float 2.0 in each width
  refused(t, 'a2 02 01 f94000 02', /duplicate map key 2 at byte 3/, 'int 2, then half-float 2.0')
  refused(t, 'a2 f94000 02 02 01', /duplicate map key 2 at byte 5/, 'half-float 2.0, then int 2')
  refused(t, 'a2 02 01 fa40000000 02', /not in its shortest form/, 'single-precision 2.0: a half holds it, so it is refused before any comparison')
  refused(t, 'a2 02 01 fb4000000000000000 02', /not in its shortest form/, 'double-precision 2.0: likewise')
  refused(t, 'a2 1a00010000 01 fa47800000 02', /duplicate map key 65536/, 'int 65536, single 65536.0 (beyond half range, so single is shortest)')
  refused(t, 'a2 1b001fffffffffffff 01 fb433fffffffffffff 02', /duplicate map key 9007199254740991/, 'int 2^53-1, double 2^53-1')
  refused(t, 'a2 20 01 f9bc00 02', /duplicate map key -1/, 'int -1, half -1.0')
  refused(t, 'a2 00 01 f98000 02', /duplicate map key 0/, 'int 0, half -0.0')
  refused(t, 'a2 f97e00 01 f97e00 02', /duplicate map key NaN/, 'two NaNs')
  refused(t, 'a2 6161 01 6161 02', /duplicate map key "a"/, 'text "a" twice')
  refused(t, 'a2 4101 01 4101 02', /duplicate map key/, "h'01' twice")
  refused(t, '81 a2 02 01 f94000 02', /duplicate map key 2 at byte 4/, 'in a nested map')
  // genuinely distinct keys of different types stay distinct
  for (const [h, label] of [
    ['a3 01 01 6131 02 4131 03', 'int 1, text "1", bytes h\'31\''],
    ['a2 01 01 20 02', 'int 1, int -1'],
    ['a2 01 01 f93e00 02', 'int 1, half 1.5'],
    ['a2 6161 01 4161 02', 'text "a", bytes h\'61\''],
    ['a2 f97c00 01 f9fc00 02', 'Infinity, -Infinity'],
  ] as const) t.ok(gate(hex(h)).ok, `${label}: accepted`)
  // keys with no value comparison cbor-x honours (it builds a fresh object for each) are refused
  for (const [h, label] of [['a1 80 01', 'array'], ['a1 a0 01', 'map'], ['a1 c10a 01', 'tagged'], ['a1 f5 01', 'true'], ['a1 f6 01', 'null']] as const)
    refused(t, h, /map key must be an integer, float, text or byte string/, `${label} key`)
})

t.test('floats: one encoding each, and the first one is reported with where it stands', async (t) => {
  refused(t, 'fa3fc00000', /not in its shortest form/, '1.5 in single precision')
  refused(t, 'fb3ff8000000000000', /not in its shortest form/, '1.5 in double precision')
  refused(t, 'f97e01', /NaN other than 0xf97e00/, 'a half NaN with a payload')
  t.same(gate(hex('f93e00')), { ok: true, float: { at: 0, value: 1.5, bits: 16, key: null, isKey: false } }, 'top-level half')
  t.same(gate(hex('a2 01 00 02 f94700')), { ok: true, float: { at: 4, value: 7, bits: 16, key: 2, isKey: false } }, '{1: 0, 2: 7.0}: under key 2')
  t.same(gate(hex('a1 0a 82 fa47c35000 00')), { ok: true, float: { at: 3, value: 100000, bits: 32, key: 10, isKey: false } }, 'nested under key 10')
  t.same(gate(hex('a1 f94000 01')), { ok: true, float: { at: 1, value: 2, bits: 16, key: null, isKey: true } }, 'a float key')
  t.same(gate(hex('a2 01 f93c00 02 f94000')), { ok: true, float: { at: 2, value: 1, bits: 16, key: 1, isKey: false } }, 'the first float')
  t.equal((gate(hex('a2 01 00 02 07')) as { float: unknown }).float, null, 'no float: null')
})

t.test('bignums only beyond 64 bits, without leading zeros (RFC 8949 §3.4.3)', async (t) => {
  refused(t, 'c2 4102', /bignum/, 'tag 2 holding 2')
  refused(t, 'c3 48 ffffffffffffffff', /bignum/, 'tag 3 of 8 bytes')
  refused(t, 'c2 49 000100000000000000', /bignum/, 'a leading zero')
  refused(t, 'c2 02', /bignum .* not a byte string/, 'tag 2 of an integer')
  t.ok(gate(hex('c2 49 010000000000000000')).ok, '2^64')
})

// ---- through the decoders --------------------------------------------------

const se = generateKey('p256') as DeviceSigningKey
type Write = (w: CborWriter) => void
const u = (n: number): Write => (w) => w.uint(n)
/** Shortest float holding x: half-float 7.0 is f94700. */
const half = (x: number): Write => (w) => w.float(x)
/** A valid version-1 payload (seq 5), keys in order: values in `over` replace by key; `extra` entries are appended. */
function payload(over: Record<number, Write> = {}, extra: Array<[key: Write, value: Write]> = []): Uint8Array {
  const base: Array<[number, Write]> = [
    [0, u(1)], [1, (w) => w.ascii(se.id)], [2, u(5)], [3, u(1)], [4, u(1_790_000_000_000)],
    [5, u(250)], [6, (w) => w.bytes(pack([1, 2, 3]))], [13, u(0)], [14, u(0)], [16, (w) => w.ascii('fw')],
  ]
  const w = new CborWriter(256).mapHeader(base.length + extra.length)
  for (const [k, v] of base) (over[k] ?? v)(w.uint(k))
  for (const [k, v] of extra) { k(w); v(w) }
  return w.copy()
}

/** decodeFrame and decodeFrameLean must agree: both refuse with `code` and `msg`, or both accept. */
function expectBoth(t: Test, p: Uint8Array, code: string | null, msg: RegExp | null, label: string) {
  const frame = signPayloadBytes(se, p)
  for (const [name, fn] of [['decodeFrame', decodeFrame], ['decodeFrameLean', decodeFrameLean]] as const) {
    try {
      const f = fn(frame)
      if (code) t.fail(`${label} (${name}): accepted with seq ${f.payload.seq}`)
      else t.pass(`${label} (${name}): accepted`)
    } catch (err) {
      if (!code) { t.fail(`${label} (${name}): ${(err as Error).message}`); continue }
      t.equal((err as FrameError).code, code, `${label} (${name}): code ${code}`)
      t.match((err as Error).message, msg!, `${label} (${name}): ${(err as Error).message}`)
    }
  }
}

t.test('frames: no duplicate keys by value, no floats where the schema has integers', async (t) => {
  expectBoth(t, payload(), null, null, 'the baseline')
  // the frame: seq 5 by the integer key, then 9 by the half-float key, which cbor-x kept
  expectBoth(t, payload({}, [[half(2), u(9)]]), 'cbor', /duplicate map key 2/, 'seq under int 2 and half-float 2.0')
  expectBoth(t, payload({}, [[half(13), u(1)]]), 'cbor', /duplicate map key 13/, 'flags under int 13 and half-float 13.0')
  expectBoth(t, payload({ 2: half(7) }), 'schema', /^seq \(key 2\): got the float 7 \(16-bit, at byte \d+\); the frame schema has integers, never floats$/, 'seq as the half-float 7.0')
  expectBoth(t, payload({ 2: (w) => w.float(100000) }), 'schema', /seq \(key 2\): got the float 100000 \(32-bit/, 'seq as a single')
  expectBoth(t, payload({ 2: (w) => w.float(2 ** 40 + 0.5) }), 'schema', /seq \(key 2\): got the float .* \(64-bit/, 'seq as a double')
  expectBoth(t, payload({ 0: half(1) }), 'schema', /v \(key 0\): got the float 1/, 'version 1.0')
  expectBoth(t, payload({ 4: (w) => w.float(1_790_000_000_000) }), 'schema', /t0 \(key 4\): got the float/, 't0 as a double')
  expectBoth(t, payload({}, [[u(10), (w) => w.arrayHeader(2).float(700).uint(90)]]), 'schema', /hr \(key 10\): got the float 700/, 'hr value inside its array')
  expectBoth(t, payload({}, [[u(17), half(-5.5)]]), 'schema', /tempC \(key 17\): got the float -5.5/, 'tempC')
  expectBoth(t, payload({ 16: half(1) }), 'schema', /fw \(key 16\): got the float 1/, 'a float where text is expected')
  expectBoth(t, payload({}, [[half(15), u(3900)]]), 'schema', /payload key 15 is a 16-bit float/, 'a float key with no integer twin')
  expectBoth(t, payload({}, [[u(99), half(1)]]), 'schema', /key 99: got the float 1/, 'a float under an unknown key')
  // keys of different types that are genuinely distinct: the gate lets them through, the schema (integer keys only) decides
  expectBoth(t, payload({}, [[(w) => w.ascii('2'), u(9)]]), 'schema', /unknown payload key "2"/, 'text "2" beside int 2')
})

t.test('seq and t0 are below 2^48 (the ledger stores them in 48 bits): refused as schema errors', async (t) => {
  expectBoth(t, payload({ 2: u(2 ** 48 - 1) }), null, null, 'seq 2^48-1')
  expectBoth(t, payload({ 2: u(2 ** 48) }), 'schema', /^seq \(key 2\) must be at most 281474976710655, got 281474976710656$/, 'seq 2^48')
  expectBoth(t, payload({ 2: u(2 ** 53 - 1) }), 'schema', /seq \(key 2\) must be at most/, 'seq 2^53-1')
  expectBoth(t, payload({ 4: u(2 ** 48 - 1) }), null, null, 't0 2^48-1')
  expectBoth(t, payload({ 4: u(2 ** 48) }), 'schema', /t0 \(key 4\) must be at most 281474976710655/, 't0 2^48')
})

t.test('protected header and auth token: integers only', async (t) => {
  const good = payload()
  const withProt = (prot: string) => new CborWriter(512).tag(18).arrayHeader(4).bytes(hex(prot)).mapHeader(0).bytes(good).bytes(new Uint8Array(64)).copy()
  const kid = '51' + Buffer.from(se.id).toString('hex')
  const header = (fn: () => unknown, code: string, msg: RegExp, label: string) => {
    try {
      fn()
      t.fail(`${label}: accepted`)
    } catch (err) {
      t.equal((err as FrameError).code, code, `${label}: code`)
      t.match((err as Error).message, msg, label)
    }
  }
  header(() => decodeFrame(withProt('a2 01 f9c700 04' + kid)), 'header', /protected header: got the float -7 \(16-bit, at byte 2\); its labels and alg are integers/, 'alg -7.0')
  header(() => decodeFrame(withProt('a2 f93c00 26 04' + kid)), 'header', /protected header: got the float 1/, 'label 1.0')
  header(() => decodeFrame(withProt('a3 01 26 04' + kid + 'f93c00 26')), 'cbor', /duplicate map key 1/, 'label 1 and 1.0')
  const bare = generateKey('hmac') as Extract<DeviceSigningKey, { type: 'hmac' }>
  const tok = (iat: (w: CborWriter) => void) => buildMac0(bare.id, (() => { const w = new CborWriter(128).arrayHeader(4).ascii('mh-auth').ascii(bare.id); iat(w); return w.uint(1).copy() })(), new Uint8Array(32))
  t.equal(decodeAuthToken(tok(u(1_790_000_000_000))).claims.iatMs, 1_790_000_000_000, 'integer iatMs')
  header(() => decodeAuthToken(tok((w) => w.float(1_790_000_000_000))), 'schema', /auth token payload: got the float 1790000000000 \(64-bit/, 'iatMs as a double')
})
