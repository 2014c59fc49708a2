import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { sharedData } from '../helpers/cli.ts'
import { es256Verify, ed25519Verify, hmacSha256Verify } from '../../protocol/node/primitives.ts'
import { fromHex } from '../../protocol/portable/bytes.ts'

const dir = join(sharedData, 'vectors', 'wycheproof')
const load = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8'))
const impls = ['node', 'noble'] as const

interface WTest { tcId: number; comment: string; msg: string; sig?: string; tag?: string; key?: string; result: 'valid' | 'invalid' | 'acceptable' }

// Each assertion is labelled with the vector's id and comment; a mismatch is
// reported individually rather than as one opaque count.
function run(t: Test, name: string, file: string, check: (impl: (typeof impls)[number], g: any, c: WTest) => boolean) {
  const data = load(file)
  for (const impl of impls) {
    t.test(`${name} (${impl}): ${data.numberOfTests} Wycheproof tests`, async (t) => {
      let n = 0
      const bad: string[] = []
      for (const g of data.testGroups) {
        for (const c of g.tests as WTest[]) {
          n++
          const got = check(impl, g, c)
          if (c.result === 'acceptable') continue
          if (got !== (c.result === 'valid')) bad.push(`tcId ${c.tcId} (${c.comment}): expected ${c.result}, got ${got ? 'valid' : 'invalid'}`)
        }
      }
      t.equal(n, data.numberOfTests, 'all tests ran')
      t.same(bad, [], 'every verdict matches')
    })
  }
}


run(t, 'ECDSA P-256 SHA-256 P1363', 'ecdsa_secp256r1_sha256_p1363_test.json', (impl, g, c) =>
  es256Verify(impl, fromHex(g.publicKey.uncompressed), fromHex(c.msg), fromHex(c.sig!)),
)
run(t, 'Ed25519', 'ed25519_test.json', (impl, g, c) => ed25519Verify(impl, fromHex(g.publicKey.pk), fromHex(c.msg), fromHex(c.sig!)))
run(t, 'HMAC-SHA256', 'hmac_sha256_test.json', (impl, g, c) => {
  const tag = fromHex(c.tag!)
  // A group's tagSize says how long a tag is; a tag of any other length is invalid.
  if (tag.length * 8 !== g.tagSize) return false
  return hmacSha256Verify(impl, fromHex(c.key!), fromHex(c.msg), tag)
})
