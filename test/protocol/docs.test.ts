import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from '../helpers/cli.ts'
import { exampleText, exampleFrame } from '../../scripts/protocol-example.ts'
import { verifyFrame } from '../../protocol/node/verify.ts'

t.test('docs/protocol.md worked example equals what the code produces', async (t) => {
  const doc = readFileSync(join(repoRoot, 'docs', 'protocol.md'), 'utf8')
  const m = /<!-- example:begin -->\n```\n([\s\S]*?)\n```\n<!-- example:end -->/.exec(doc)
  t.ok(m, 'example block present')
  t.equal(m![1], exampleText())
})

t.test('the worked example verifies with its secret', async (t) => {
  const e = exampleFrame()
  t.equal(verifyFrame(e.frame, { profile: 'bare', secret: e.secret }).payload.seq, 42)
})
