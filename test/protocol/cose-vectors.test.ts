import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { sharedData } from '../helpers/cli.ts'
import { verifyCoseSign1, ALG_EDDSA } from '../../protocol/node/cose-generic.ts'
import { ALG_ES256 } from '../../protocol/portable/cose.ts'
import { CborWriter } from '../../protocol/portable/cbor.ts'
import { ed25519Sign } from '../../protocol/node/primitives.ts'
import { fromHex, toHex, utf8Encode, concatBytes } from '../../protocol/portable/bytes.ts'

const coseDir = join(sharedData, 'vectors', 'cose')
const b64u = (s: string) => new Uint8Array(Buffer.from(s, 'base64url'))

function p256Key(k: { x: string; y: string }) {
  return { alg: ALG_ES256 as typeof ALG_ES256, publicKey: concatBytes([new Uint8Array([4]), b64u(k.x), b64u(k.y)]) }
}

const files = [
  ...readdirSync(join(coseDir, 'sign1-tests')).map((f) => join('sign1-tests', f)),
  join('RFC8152', 'Appendix_C_2_1.json'),
].sort()

for (const impl of ['node', 'noble'] as const) {
  t.test(`every ES256 COSE_Sign1 example (${impl})`, async (t) => {
    let pass = 0
    let fail = 0
    for (const f of files) {
      const v = JSON.parse(readFileSync(join(coseDir, f), 'utf8'))
      const signer = v.input.sign0 ?? v.input.sign?.signers?.[0]
      if (!signer || signer.alg !== 'ES256') continue
      const ext = signer.external ? fromHex(signer.external) : undefined
      const r = verifyCoseSign1(fromHex(v.output.cbor), p256Key(signer.key), { externalAad: ext, impl })
      if (v.fail) {
        t.notOk(r.ok, `${f} (${v.title}) must fail`)
        fail++
      } else {
        t.ok(r.ok, `${f} (${v.title}) verifies${r.ok ? '' : ': ' + r.reason}`)
        pass++
      }
    }
    t.equal(pass, 4, 'four passing examples (3 sign1-tests + RFC 8152 C.2.1)')
    t.equal(fail, 6, 'six failing examples')
  })
}

t.test('eddsa-sig-01 reproduced byte for byte with our CBOR writer and Ed25519', async (t) => {
  const v = JSON.parse(readFileSync(join(coseDir, 'eddsa-examples', 'eddsa-sig-01.json'), 'utf8'))
  const key = v.input.sign0.key
  const priv = fromHex(key.d_hex)
  const pub = fromHex(key.x_hex)
  const payload = utf8Encode(v.input.plaintext)
  // protected {1: -8 (EdDSA), 3: 0 (content type)}, unprotected {4: kid '11'}
  const prot = new CborWriter(16).mapHeader(2).uint(1).int(-8).uint(3).uint(0).copy()
  const tbs = new CborWriter(64).arrayHeader(4).ascii('Signature1').bytes(prot).bytes(new Uint8Array(0)).bytes(payload).copy()
  t.equal(toHex(tbs), v.intermediates.ToBeSign_hex.toLowerCase(), 'Sig_structure matches the intermediate')
  const sig = ed25519Sign(priv, pub, tbs)
  const msg = new CborWriter(128).tag(18).arrayHeader(4).bytes(prot).mapHeader(1).uint(4).bytes(utf8Encode('11')).bytes(payload).bytes(sig).copy()
  t.equal(toHex(msg), v.output.cbor.toLowerCase(), 'COSE_Sign1 bytes identical')
  for (const impl of ['node', 'noble'] as const) t.ok(verifyCoseSign1(msg, { alg: ALG_EDDSA, publicKey: pub }, { impl }).ok, `verifies (${impl})`)
})
