/**
 * The repository's import graph and its house rules: which folder may import which
 * (only downward), no cycles (type-only imports count: they still couple the files),
 * and no source file over the size a reader can hold in their head.
 *
 * Used by test/architecture/layers.test.ts, and runnable to print the current state:
 *   npx tsx scripts/import-graph.ts
 */
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * Layers from the ground up. A folder may import its own files and any folder of a
 * strictly lower layer; folders that share a layer do not import each other.
 * docs/contributing.md shows the same map.
 */
export const LAYERS: readonly (readonly string[])[] = [
  ['protocol', 'http'],
  ['signal', 'ledger'],
  ['datasets', 'firmware'],
  ['gateway', 'hardware-sim'],
  ['dashboard'],
  ['demo'],
  ['cli'],
  ['bin'],
  ['testing'],
  ['bench', 'scripts'],
  ['test'],
]

/** Folders whose files are checked for size and take part in the graph. */
export const SOURCE_EXT = /\.(ts|mts|mjs|js)$/
export const MAX_LINES = 600

export interface ImportEdge {
  from: string // repo-relative file
  to: string // repo-relative file
  typeOnly: boolean
}

export interface HouseReport {
  files: { path: string; lines: number }[]
  edges: ImportEdge[]
  upward: ImportEdge[]
  sideways: ImportEdge[]
  cycles: string[][]
  oversized: { path: string; lines: number }[]
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

export function layerOf(path: string): number {
  const top = path.split('/')[0]
  const i = LAYERS.findIndex((l) => l.includes(top))
  return i
}

/** Portable code may not import Node-only code, even within its own layer. */
function portableViolation(from: string, to: string): boolean {
  return from.startsWith('protocol/portable/') && !to.startsWith('protocol/portable/')
}

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue
    const p = join(dir, name)
    const st = statSync(p)
    if (st.isDirectory()) walk(p, out)
    else if (SOURCE_EXT.test(name) && !name.endsWith('.d.ts') && !name.endsWith('.d.mts')) out.push(p)
  }
}

// import ... from '...'; export ... from '...'; import('...'); import '...'
const IMPORT_RE = /(?:^|[^\w.])(import|export)\s+(type\s+)?(?:[\w*{}\s,$]*?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm

function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1')
}

export function importsOf(file: string, src: string): { spec: string; typeOnly: boolean }[] {
  const out: { spec: string; typeOnly: boolean }[] = []
  const text = stripComments(src)
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[3] ?? m[4]
    if (!spec) continue
    out.push({ spec, typeOnly: Boolean(m[2]) })
  }
  void file
  return out
}

function resolveSpec(fromAbs: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined
  const base = resolve(dirname(fromAbs), spec)
  for (const cand of [base, base + '.ts', base + '.mjs', base + '.js', join(base, 'index.ts')]) {
    if (existsSync(cand) && statSync(cand).isFile()) return cand
  }
  return undefined
}

export function analyse(dir = root): HouseReport {
  const abs: string[] = []
  for (const layer of LAYERS) for (const top of layer) if (existsSync(join(dir, top))) walk(join(dir, top), abs)
  const files = abs.map((p) => ({ path: relative(dir, p).split(sep).join('/'), lines: readFileSync(p, 'utf8').split('\n').length }))
  const edges: ImportEdge[] = []
  for (const p of abs) {
    const from = relative(dir, p).split(sep).join('/')
    for (const imp of importsOf(from, readFileSync(p, 'utf8'))) {
      const target = resolveSpec(p, imp.spec)
      if (!target) continue
      const to = relative(dir, target).split(sep).join('/')
      if (to.startsWith('..')) continue // ../shared data, outside the repo
      edges.push({ from, to, typeOnly: imp.typeOnly })
    }
  }
  const upward: ImportEdge[] = []
  const sideways: ImportEdge[] = []
  for (const e of edges) {
    const a = layerOf(e.from)
    const b = layerOf(e.to)
    const sameTop = e.from.split('/')[0] === e.to.split('/')[0]
    if (portableViolation(e.from, e.to)) upward.push(e)
    else if (b > a) upward.push(e)
    else if (b === a && !sameTop) sideways.push(e)
  }
  // Tests are the top layer and import everything; they take no part in cycle checks
  // except among themselves, which the same search covers.
  const cycles = findCycles(files.map((f) => f.path), edges)
  const oversized = files.filter((f) => f.lines > MAX_LINES && !f.path.startsWith('test/')).sort((x, y) => y.lines - x.lines)
  return { files, edges, upward, sideways, cycles, oversized }
}

/** Strongly connected components of size > 1 (and self-loops): each is a cycle. Tarjan. */
export function findCycles(nodes: string[], edges: ImportEdge[]): string[][] {
  const adj = new Map<string, string[]>()
  for (const n of nodes) adj.set(n, [])
  for (const e of edges) adj.get(e.from)?.push(e.to)
  let index = 0
  const idx = new Map<string, number>()
  const low = new Map<string, number>()
  const onStack = new Set<string>()
  const stack: string[] = []
  const out: string[][] = []
  const strong = (v: string): void => {
    idx.set(v, index)
    low.set(v, index)
    index++
    stack.push(v)
    onStack.add(v)
    for (const w of adj.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!))
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        comp.push(w)
      } while (w !== v)
      if (comp.length > 1 || (adj.get(v) ?? []).includes(v)) out.push(comp.sort())
    }
  }
  for (const n of nodes) if (!idx.has(n)) strong(n)
  return out
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = analyse()
  const largest = [...r.files].filter((f) => !f.path.startsWith('test/')).sort((a, b) => b.lines - a.lines).slice(0, 8)
  console.log(`source files: ${r.files.length}, import edges: ${r.edges.length}`)
  console.log('largest files:')
  for (const f of largest) console.log(`  ${String(f.lines).padStart(5)}  ${f.path}`)
  console.log(`files over ${MAX_LINES} lines: ${r.oversized.length}`)
  console.log(`upward imports: ${r.upward.length}`)
  for (const e of r.upward) console.log(`  ${e.from} -> ${e.to}${e.typeOnly ? ' (type)' : ''}`)
  console.log(`imports between folders of one layer: ${r.sideways.length}`)
  for (const e of r.sideways) console.log(`  ${e.from} -> ${e.to}${e.typeOnly ? ' (type)' : ''}`)
  console.log(`import cycles: ${r.cycles.length}`)
  for (const c of r.cycles) console.log(`  ${c.join(' <-> ')}`)
}
