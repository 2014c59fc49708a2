import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from '../helpers/cli.ts'
import { exampleText, exampleFrame, exampleTextV2, exampleFrameV2 } from '../../scripts/protocol-example.ts'
import { verifyFrame } from '../../protocol/node/verify.ts'

const doc = readFileSync(join(repoRoot, 'docs', 'protocol.md'), 'utf8')
const block = (name: string): string | undefined => new RegExp(`<!-- ${name}:begin -->\\n\`\`\`\\n([\\s\\S]*?)\\n\`\`\`\\n<!-- ${name}:end -->`).exec(doc)?.[1]

t.test('docs/protocol.md worked example equals what the code produces', async (t) => {
  const m = block('example')
  t.ok(m !== undefined, 'example block present')
  t.equal(m, exampleText())
})

t.test('the worked example verifies with its secret', async (t) => {
  const e = exampleFrame()
  t.equal(verifyFrame(e.frame, { profile: 'bare', secret: e.secret }).payload.seq, 42)
})

t.test('docs/protocol.md version-2 example equals what the code produces', async (t) => {
  const m = block('example-v2')
  t.ok(m !== undefined, 'version-2 example block present')
  t.equal(m, exampleTextV2())
})

t.test('the version-2 example verifies and decodes to the values the doc states', async (t) => {
  const e = exampleFrameV2()
  const p = verifyFrame(e.frame, { profile: 'bare', secret: e.secret }).payload
  // Worked out by hand from the words: D[23:6] two's complement, D[17:0] of each triplet.
  t.same(Array.from(p.ecg!), [0, 1000, -1000, 12583])
  t.ok(p.ecg instanceof Int32Array)
  t.same(Array.from(p.red!), [110000, 109100])
  t.same(Array.from(p.ir!), [140000, 138200])
  t.equal(p.ecgUvPerLsb, 1e6 / (131072 * 80))
  t.equal(p.ecgGain, 80)
  t.same(p.gaps, [{ lane: 0, at: 2, lost: 1 }])
  t.same(p.rr, [812])
  t.equal(p.faults, 1)
  t.equal(p.flags, 96)
  t.equal(p.ecgFast, undefined, 'no fast-recovery samples')
  t.match(doc, /`00 fa 07` = 0000 0000 1111\n1010 0000 0111 → sample 0x003e8 = 1000/, 'the doc splits a word by hand')
})
