import t from 'tap'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { spawnGateway } from '../gateway/helpers/process.ts'
import { repoRoot } from '../helpers/cli.ts'
import { cachedBundle as build } from '../../bin/bundle-cache.mjs'

function project(t: { teardown(f: () => void): void }) {
  const root = mkdtempSync(join(tmpdir(), 'mh-bundle-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  writeFileSync(join(root, 'main.ts'), "import { word } from './word.ts'\nexport const greeting: string = 'hello ' + word\n")
  writeFileSync(join(root, 'word.ts'), "export const word: string = 'world'\n")
  return { root, cacheDir: join(root, 'cache') }
}

const load = async (dir: string) => (await import(pathToFileURL(join(dir, 'main.mjs')).href + `?${Math.random()}`)).greeting as string

t.test('a bundle is built once and reused until one of its sources changes', async (t) => {
  const where = project(t)
  const a = await build('p', { main: 'main.ts' }, where)
  t.equal(await load(a), 'hello world')
  t.equal(await build('p', { main: 'main.ts' }, where), a, 'unchanged sources: the same bundle')
  const stamp = JSON.parse(readFileSync(join(where.cacheDir, 'p.json'), 'utf8'))
  t.same(Object.keys(stamp.inputs).sort(), ['main.ts', 'word.ts'], 'the stamp lists every source the bundle holds')

  // An imported module (not the entry) changes: same size, only the mtime and content differ.
  writeFileSync(join(where.root, 'word.ts'), "export const word: string = 'WORLD'\n")
  utimesSync(join(where.root, 'word.ts'), new Date(), new Date(Date.now() + 5000))
  const b = await build('p', { main: 'main.ts' }, where)
  t.not(b, a, 'a changed source gives a new bundle')
  t.equal(await load(b), 'hello WORLD')
  t.ok(existsSync(a), 'the superseded bundle stays for a while (a process may still be starting from it)')
})

t.test('several processes starting at once each end with a complete bundle', async (t) => {
  const where = project(t)
  const dirs = await Promise.all([1, 2, 3, 4].map(() => build('p', { main: 'main.ts' }, where)))
  for (const d of dirs) t.equal(await load(d), 'hello world')
  const stamp = JSON.parse(readFileSync(join(where.cacheDir, 'p.json'), 'utf8'))
  t.ok(dirs.map((d) => d.split('/').pop()).includes(stamp.dir), 'the stamp names one of the builds')
  t.same(readdirSync(where.cacheDir).filter((f) => f.endsWith('.json') && f !== 'p.json'), [], 'no temporary stamp left behind')
})

t.test('a source that does not compile fails the build and leaves no bundle or stamp', async (t) => {
  const where = project(t)
  writeFileSync(join(where.root, 'word.ts'), 'export const word = (\n')
  await t.rejects(build('p', { main: 'main.ts' }, where), /Unexpected end of file|Expected/)
  t.same(readdirSync(where.cacheDir), [], 'nothing half-built in the cache')
})

t.test('mhealth gateway runs from its bundle, and from source with MHEALTH_FROM_SOURCE=1', async (t) => {
  for (const fromSource of [false, true]) {
    const data = mkdtempSync(join(tmpdir(), 'mh-gw-bundle-'))
    t.teardown(() => rmSync(data, { recursive: true, force: true }))
    const gw = await spawnGateway(data, [], fromSource ? { MHEALTH_FROM_SOURCE: '1' } : {})
    const res = await fetch(`http://127.0.0.1:${gw.ready.ports.http}/healthz`)
    t.equal(res.status, 200, `${fromSource ? 'source' : 'bundle'}: healthy`)
    t.equal(await gw.stop(), 0)
    t.notMatch(gw.stderr(), /could not bundle/, 'no fallback')
    if (!fromSource) {
      const stamp = JSON.parse(readFileSync(join(repoRoot, 'node_modules', '.cache', 'mhealth', 'gateway.json'), 'utf8'))
      t.ok(existsSync(join(repoRoot, 'node_modules', '.cache', 'mhealth', stamp.dir, 'verify-worker-boot.mjs')), 'the verify workers\' entry sits next to the bundle')
      t.ok(Object.keys(stamp.inputs).includes('gateway/gateway.ts'))
    }
  }
})
