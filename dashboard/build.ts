/**
 * Builds the browser app: dashboard/web/app.ts and everything it imports
 * (cbor-x, @noble/*, the portable unpacker, the ledger's proof checker) bundled
 * by esbuild into one minified script, plus the HTML shell and stylesheet.
 *
 * Built once per process on first use (about a quarter of a second) and kept in
 * memory: there is no build artefact to go stale or to forget in a release.
 * `npx tsx dashboard/build.ts OUTDIR` writes the files for inspection.
 */
import { readFile, mkdir, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { staticFile, type StaticFile } from '../http/respond.ts'

/** Set by the gateway bundle (bin/bundle-cache.mjs), whose own URL is in the cache, not beside web/. */
declare const MHEALTH_DASHBOARD_WEB: string | undefined
const WEB = typeof MHEALTH_DASHBOARD_WEB === 'string' ? MHEALTH_DASHBOARD_WEB : join(dirname(fileURLToPath(import.meta.url)), 'web')

export interface WebAssets {
  html: StaticFile
  js: StaticFile
  css: StaticFile
}

let cached: Promise<WebAssets> | null = null

export function getWebAssets(): Promise<WebAssets> {
  cached ??= buildWebAssets().catch((err) => {
    cached = null // let the next request retry instead of caching a failure
    throw err
  })
  return cached
}

export async function buildWebAssets(): Promise<WebAssets> {
  const { build } = await import('esbuild')
  const out = await build({
    entryPoints: [join(WEB, 'app.ts')],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: ['es2020'],
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'silent',
  })
  const js = Buffer.from(out.outputFiles[0].contents)
  const [html, css] = await Promise.all([readFile(join(WEB, 'index.html')), readFile(join(WEB, 'app.css'))])
  return { html: staticFile('index.html', html), js: staticFile('app.js', js), css: staticFile('app.css', css) }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = process.argv[2] ?? 'dist/dashboard'
  const a = await buildWebAssets()
  await mkdir(dir, { recursive: true })
  await Promise.all([writeFile(join(dir, 'index.html'), a.html.body), writeFile(join(dir, 'app.js'), a.js.body), writeFile(join(dir, 'app.css'), a.css.body)])
  console.log(`wrote ${dir}/app.js (${a.js.body.length} bytes), index.html, app.css`)
}
