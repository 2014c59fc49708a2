// The gateway as one bundled ES module, built from the TypeScript sources on first use and
// rebuilt when any of them changes. Plain JavaScript: it runs before (instead of) the
// TypeScript loader. Bundles live in node_modules/.cache/mhealth/, so the bundle's bare
// imports (aedes, better-sqlite3, ...) resolve to the project's node_modules.
import { build, stop as stopEsbuild, version as esbuildVersion } from 'esbuild'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..')
/** Where the project's bundles go, unless a call says otherwise. */
export const defaultCacheDir = join(repoRoot, 'node_modules', '.cache', 'mhealth')
/** A superseded bundle is removed once it is this old (a gateway loads its files at start). */
const KEEP_OLD_MS = 3600_000

/** Builds under way in this process (esbuild's service stops after the last). */
let building = 0

/**
 * @typedef {{ dir: string, esbuild: string, inputs: Record<string, [number, number]> }} Stamp
 * inputs: source path (relative to the repo) -> [mtimeMs, size] when the bundle was built.
 */

/**
 * @typedef {{ root?: string, cacheDir?: string }} Where
 * root: the directory sources are named from (the repo); cacheDir: where bundles go.
 */

/** @param {string} cacheDir @param {string} name @returns {Stamp | null} */
function readStamp(cacheDir, name) {
  try {
    return JSON.parse(readFileSync(join(cacheDir, `${name}.json`), 'utf8'))
  } catch {
    return null
  }
}

/** @param {string} root @param {string} cacheDir @param {Stamp} s */
function fresh(root, cacheDir, s) {
  if (s.esbuild !== esbuildVersion) return false
  try {
    statSync(join(cacheDir, s.dir))
    for (const [p, [mtime, size]] of Object.entries(s.inputs)) {
      const st = statSync(join(root, p))
      if (st.mtimeMs !== mtime || st.size !== size) return false
    }
    return true
  } catch {
    return false
  }
}

/**
 * Builds `entries` ({ outName: sourcePath relative to the repo }) into one cache directory
 * unless an up-to-date build exists; returns that directory. Safe when several processes
 * start at once: each builds into its own directory and the stamp is replaced atomically.
 * @param {string} name
 * @param {Record<string, string>} entries
 * @param {Where} [where]
 * @returns {Promise<string>}
 */
export async function cachedBundle(name, entries, where = {}) {
  const root = where.root ?? repoRoot
  const cacheDir = where.cacheDir ?? defaultCacheDir
  const have = readStamp(cacheDir, name)
  if (have && fresh(root, cacheDir, have)) return join(cacheDir, have.dir)
  mkdirSync(cacheDir, { recursive: true })
  const dir = mkdtempSync(join(cacheDir, `${name}-`))
  // mkdtemp makes it 0700: other users running the same install must be able to load it.
  chmodSync(dir, 0o755)
  building++
  try {
    const result = await build({
      absWorkingDir: root,
      entryPoints: Object.fromEntries(Object.entries(entries).map(([out, src]) => [out, join(root, src)])),
      outdir: dir,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      // dashboard/build.ts finds the browser sources by its own URL, which in a bundle is the cache's.
      define: { MHEALTH_DASHBOARD_WEB: JSON.stringify(join(root, 'dashboard', 'web')) },
      metafile: true,
      logLevel: 'silent',
    })
    /** @type {Stamp['inputs']} */
    const inputs = {}
    for (const p of Object.keys(result.metafile.inputs)) {
      const st = statSync(join(root, p))
      inputs[relative(root, join(root, p))] = [st.mtimeMs, st.size]
    }
    const tmp = `${dir}.json`
    writeFileSync(tmp, JSON.stringify({ dir: relative(cacheDir, dir), esbuild: esbuildVersion, inputs }))
    renameSync(tmp, join(cacheDir, `${name}.json`))
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  } finally {
    // esbuild's service is a child process: a gateway running for months does not need it.
    if (--building === 0) await stopEsbuild()
  }
  prune(cacheDir, name, dir)
  return dir
}

/** @param {string} cacheDir @param {string} name @param {string} keep */
function prune(cacheDir, name, keep) {
  const now = Date.now()
  for (const d of readdirSync(cacheDir)) {
    const p = join(cacheDir, d)
    if (!d.startsWith(`${name}-`) || p === keep) continue
    try {
      if (now - statSync(p).mtimeMs > KEEP_OLD_MS) rmSync(p, { recursive: true, force: true })
    } catch {
      // Another process pruned it first.
    }
  }
}

/**
 * The gateway's bundle: its entry module's path. The verify workers' entry sits next to it
 * under the name gateway/verify-pool.ts loads (verify-worker-boot.mjs).
 * @returns {Promise<string>}
 */
export async function gatewayBundle() {
  const entries = { gateway: 'cli/gateway-entry.ts', 'verify-worker-boot': 'gateway/verify-worker.ts' }
  try {
    return join(await cachedBundle('gateway', entries), 'gateway.mjs')
  } catch (err) {
    if (!['EACCES', 'EPERM', 'EROFS'].includes(/** @type {any} */ (err).code)) throw err
    // Installed read-only (e.g. by root): build in the user's cache, with a node_modules link
    // there so the bundle's bare imports still resolve to the project's packages.
    const cacheDir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'mhealth')
    mkdirSync(cacheDir, { recursive: true })
    const link = join(cacheDir, 'node_modules')
    try {
      if (readlinkSync(link) !== join(repoRoot, 'node_modules')) throw new Error('stale link')
    } catch {
      rmSync(link, { force: true })
      symlinkSync(join(repoRoot, 'node_modules'), link)
    }
    return join(await cachedBundle('gateway', entries, { cacheDir }), 'gateway.mjs')
  }
}
