/**
 * The firmware's COSE with precomputed constant bytes against the protocol's generic code:
 * the same COSE_Mac0 / COSE_Sign1 bytes and Sig_structure digest for payloads of any size
 * (including past the staging buffers' first size), the same auth-token payload, and the
 * small CBOR writer against the general encoder.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { nodeHash } from '../../protocol/node/hash-node.ts'
import { buildMac0, buildSign1, mac0ToBeMaced, sign1ToBeSigned, protectedHeader, ALG_ES256, ALG_HMAC256 } from '../../protocol/portable/cose.ts'
import { hmacSha256 } from '../../protocol/portable/hash.ts'
import { authPayload as protocolAuthPayload } from '../../protocol/portable/auth-token.ts'
import { CborWriter } from '../../protocol/portable/cbor.ts'
import { bareSigner, seSigner, authPayloads, coseConstants } from '../../firmware/signer.ts'
import { CborOut } from '../../firmware/cbor-out.ts'
import type { Atecc608 } from '../../firmware/drivers/atecc608.ts'

const kid = 'selftestselftestt'

t.test('bare: COSE_Mac0 equals the generic construction, for payloads of every size', async (t) => {
  const key = new Uint8Array(32).map((_, i) => 200 - i)
  const s = bareSigner(nodeHash, key, kid, () => 0)
  for (const n of [0, 1, 23, 24, 255, 256, 1000, 2047, 2048, 2049, 4000, 1500]) {
    const payload = new Uint8Array(n).map((_, i) => (i * 31 + n) & 255)
    let got: Uint8Array | null = null
    s.sign(payload, (err, cose) => { got = cose && new Uint8Array(cose) })
    const want = buildMac0(kid, payload, hmacSha256(nodeHash, key, mac0ToBeMaced(kid, payload)))
    t.same(Buffer.from(got!).toString('hex'), Buffer.from(want).toString('hex'), `${n} bytes`)
  }
  t.equal(s.stats.count, 12)
  t.throws(() => bareSigner(nodeHash, new Uint8Array(16), kid, () => 0), /secret of 16 bytes, not 32/)
})

t.test('SE: the part gets the Sig_structure digest, and its signature becomes the generic COSE_Sign1', async (t) => {
  let digest: Uint8Array | null = null
  let answer: ((err: string | null, sig: Uint8Array | null) => void) | null = null
  const se = { signDigest: (_slot: number, d: Uint8Array, cb: (err: string | null, sig: Uint8Array | null) => void) => { digest = d; answer = cb } } as unknown as Atecc608
  const s = seSigner(nodeHash, se, 0, kid, () => 0)
  for (const n of [10, 1500, 3000]) {
    const payload = new Uint8Array(n).map((_, i) => (i * 7) & 255)
    let got: Uint8Array | null = null
    s.sign(payload, (err, cose) => { got = cose && new Uint8Array(cose) })
    t.equal(Buffer.from(digest!).toString('hex'), createHash('sha256').update(sign1ToBeSigned(kid, payload)).digest('hex'), `${n} bytes: digest of the Sig_structure`)
    t.equal(got, null, 'nothing until the part answers')
    const sig = new Uint8Array(64).map((_, i) => i + n)
    answer!(null, sig)
    t.same(Buffer.from(got!).toString('hex'), Buffer.from(buildSign1(kid, payload, sig)).toString('hex'), `${n} bytes: COSE_Sign1`)
  }
  let err = ''
  s.sign(new Uint8Array(5), (e) => { err = String(e) })
  answer!('timeout after 250 ms', null)
  t.equal(err, 'secure element: timeout after 250 ms')
  t.equal(s.stats.errors, 1)
})

t.test('constants: protected header, structures\' prefixes, auth-token payload', async (t) => {
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
  const se = coseConstants(ALG_ES256, kid)
  const bare = coseConstants(ALG_HMAC256, kid)
  const empty = new Uint8Array(0)
  // Sig_structure / MAC_structure of an empty payload = prefix + bstr head 0x40.
  t.equal(hex(se.toBeSigned) + '40', hex(sign1ToBeSigned(kid, empty)))
  t.equal(hex(bare.toBeSigned) + '40', hex(mac0ToBeMaced(kid, empty)))
  const w = new CborWriter(64)
  w.tag(18).arrayHeader(4).bytes(protectedHeader(ALG_ES256, kid)).mapHeader(0)
  t.equal(hex(se.head), hex(w.copy()))
  // One writer for every token, as on the board: a short token after a long one is not left with the long one's tail.
  const auth = authPayloads(kid)
  for (const [iat, ctr] of [[1700000000123, 0], [1, 23], [4294967296, 65536], [1700000000124, 1]] as const) {
    t.equal(hex(auth(iat, ctr)), hex(protocolAuthPayload({ deviceId: kid, iatMs: iat, counter: ctr })), `auth payload iat ${iat} counter ${ctr}`)
  }
})

t.test('CborOut heads and strings equal the general encoder\'s', async (t) => {
  const values = [0, 1, 23, 24, 255, 256, 65535, 65536, 4294967295, 4294967296, 1700000000000, 9007199254740991]
  for (const major of [0, 2, 4]) {
    for (const v of values) {
      const a = new CborOut(16).h(major, v)
      const b = new CborWriter(16).head(major, v)
      t.same([...a.b.subarray(0, a.p)], [...b.result()], `major ${major}, ${v}`)
    }
  }
  for (const v of [-1, -24, -25, -256, -257, -65537, 3125]) t.same([...new CborOut(16).int(v).copy()], [...new CborWriter(16).int(v).result()], `int ${v}`)
  t.same([...new CborOut(64).str(3, 'mh-fw/0.2.0').copy()], [...new CborWriter(64).ascii('mh-fw/0.2.0').result()], 'text')
  t.same([...new CborOut(64).str(2, kid).copy()], [...new CborWriter(64).bytes(Buffer.from(kid)).result()], 'kid as bytes')
})
