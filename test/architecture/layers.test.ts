/**
 * The house rules of docs/contributing.md, checked on every run: imports go only downward
 * through the layers, no import cycles (type-only imports included), no source file over
 * MAX_LINES. scripts/import-graph.ts prints the same report for a human.
 */
import t from 'tap'
import { analyse, findCycles, layerOf, importsOf, MAX_LINES, LAYERS } from '../../scripts/import-graph.ts'

const report = analyse()
const show = (e: { from: string; to: string; typeOnly: boolean }) => `${e.from} -> ${e.to}${e.typeOnly ? ' (type-only)' : ''}`

t.test('the graph is read: every layer folder has files and imports were resolved', async (t) => {
  for (const top of ['protocol', 'http', 'ledger', 'firmware', 'gateway', 'hardware-sim', 'cli', 'testing', 'test']) {
    t.ok(report.files.some((f) => f.path.startsWith(top + '/')), `${top}/ has source files`)
  }
  // A parser that silently found nothing would pass every rule below.
  t.ok(report.edges.length > 500, `resolved ${report.edges.length} relative imports`)
  t.ok(report.edges.some((e) => e.typeOnly), 'type-only imports are seen')
})

t.test('imports only go downward', async (t) => {
  t.same(report.upward.map(show), [], 'no import from a higher layer (or from portable code into Node code)')
  t.same(report.sideways.map(show), [], 'no import between different folders of one layer')
})

t.test('no import cycles, type-only imports included', async (t) => {
  t.same(report.cycles, [])
})

t.test(`no source file over ${MAX_LINES} lines`, async (t) => {
  t.same(report.oversized.map((f) => `${f.path}: ${f.lines}`), [])
})

// The checker itself: each rule fails on a made-up violation.
t.test('the checker catches what it should', async (t) => {
  t.equal(layerOf('cli/main.ts') > layerOf('gateway/gateway.ts'), true, 'cli sits above gateway')
  t.equal(layerOf('protocol/portable/cbor.ts'), 0, 'protocol is the ground floor')
  t.equal(LAYERS.flat().length, new Set(LAYERS.flat()).size, 'each folder is in one layer')
  const a = { from: 'a.ts', to: 'b.ts', typeOnly: true }
  const b = { from: 'b.ts', to: 'c.ts', typeOnly: false }
  const c = { from: 'c.ts', to: 'a.ts', typeOnly: false }
  t.same(findCycles(['a.ts', 'b.ts', 'c.ts'], [a, b, c]), [['a.ts', 'b.ts', 'c.ts']], 'a three-file cycle through a type-only import')
  t.same(findCycles(['a.ts', 'b.ts', 'c.ts'], [a, b]), [], 'a chain is not a cycle')
  const imps = importsOf('x.ts', [
    "import type { A } from './a.ts'",
    "import { b, type B } from '../b.ts'",
    "export { c } from './c.ts'",
    "const d = await import('./d.ts')",
    "// import { e } from './e.ts'",
    "import './f.ts'",
  ].join('\n'))
  t.same(imps, [
    { spec: './a.ts', typeOnly: true },
    { spec: '../b.ts', typeOnly: false },
    { spec: './c.ts', typeOnly: false },
    { spec: './d.ts', typeOnly: false },
    { spec: './f.ts', typeOnly: false },
  ], 'static, re-export, dynamic and bare imports are found; comments are not')
})
