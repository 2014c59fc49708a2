/**
 * The firmware bundle: firmware/main.ts and everything it imports, bundled by esbuild into
 * one minified ES2015 IIFE, passed through the Espruino syntax gate and stamped with a
 * marker line. Used by `mhealth firmware build`, `mhealth flash` and the simulator
 * (hardware-sim/rig.ts).
 *
 * Node only: nothing under firmware/build/ is part of the bundle (main.ts never imports it).
 */
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createHash } from 'node:crypto'
import { checkEspruinoCompat, type Violation } from './syntax-gate.ts'

export const FIRMWARE_ENTRY = join(dirname(fileURLToPath(import.meta.url)), '..', 'main.ts')

/** The bundle did not build, or uses what Espruino lacks; the message says what, for people. */
export class FirmwareBuildError extends Error {
  override name = 'FirmwareBuildError'
}

export interface BuildResult {
  code: string
  bytes: number
  /** The firmware's FW_VERSION (firmware/main.ts), e.g. "mh-fw/0.1.0", as the marker carries it. */
  version: string
}

/**
 * One minified IIFE for Espruino: ES2015 target (esbuild lowers nothing we rely on, and its
 * helpers are gated with the rest), no Node built-ins, class fields as plain assignments.
 * The output then goes through the Espruino syntax gate.
 */
export async function buildBundle(opts: { minify?: boolean } = {}): Promise<BuildResult> {
  const esbuild = await import('esbuild')
  let out
  try {
    out = await esbuild.build({
      entryPoints: [FIRMWARE_ENTRY],
      bundle: true,
      write: false,
      format: 'iife',
      target: 'es2015',
      platform: 'neutral',
      minify: opts.minify !== false,
      charset: 'ascii',
      legalComments: 'none',
      logLevel: 'silent',
      tsconfigRaw: { compilerOptions: { useDefineForClassFields: false } },
      // Espruino's require("Storage"/"net"/...) must stay a plain call: left alone, esbuild
      // routes it through a helper that uses Proxy (absent on Espruino). The bundle gets
      // the board's require as a parameter instead.
      // `global` likewise arrives as a parameter: the script's top-level `this` (the root
      // scope on Espruino), so the bundle does not depend on a `global` binding.
      define: { require: '__req', global: '__g' },
    })
  } catch (e) {
    const errs = (e as { errors?: { text: string; location?: { file: string; line: number } }[] }).errors ?? []
    throw new FirmwareBuildError('firmware build failed: ' + (errs.map((x) => `${x.location ? `${x.location.file}:${x.location.line}: ` : ''}${x.text}`).join('; ') || (e as Error).message))
  }
  const body = '(function(__req,__g){' + out.outputFiles[0]!.text.trim() + '})(require,this);\n'
  const bad = checkEspruinoCompat(body)
  if (bad.length > 0) {
    throw new FirmwareBuildError(`the bundle uses what Espruino 2v2x lacks: ${describeViolations(bad)}`)
  }
  const code = stampBundle(body)
  return { code, bytes: Buffer.byteLength(code, 'latin1'), version: firmwareVersion(body) }
}

function describeViolations(bad: Violation[]): string {
  return bad.slice(0, 10).map((v) => `${v.feature} at ${v.line}:${v.column}`).join(', ')
}

/**
 * The FW_VERSION literal firmware/main.ts defines ("mh-fw/..."), found in the bundle itself:
 * main.ts cannot be imported in Node (it runs the firmware), and the bundle is what the
 * marker vouches for.
 */
function firmwareVersion(body: string): string {
  const found = new Set([...body.matchAll(/["'`](mh-fw\/[\w.+-]+)["'`]/g)].map((m) => m[1]!))
  if (found.size !== 1) throw new FirmwareBuildError(`expected the bundle to define one FW_VERSION 'mh-fw/...' (firmware/main.ts), found ${found.size === 0 ? 'none' : [...found].join(', ')}`)
  return [...found][0]!
}

// ------------------------------------------------------------------ the bundle marker

/**
 * Every bundle starts with one line, `/* mhealth-firmware VERSION SHA256 *\/`, SHA256 being
 * the hex SHA-256 of everything after that line. `mhealth flash` refuses a file without it
 * (so a text file or someone else's script never lands in .bootcde), and a board can check
 * a stored bundle against it without knowing what was flashed (a torn .bootcde after a power
 * loss shows as a body that no longer matches). A block comment on its own line costs
 * Espruino nothing: the lexer skips it, and it sits outside every function.
 */
export const MARKER_PREFIX = '/* mhealth-firmware '
const MARKER_RE = /^\/\* mhealth-firmware (mh-fw\/[\w.+-]+) ([0-9a-f]{64}) \*\/$/

function sha256Hex(s: string): string {
  return createHash('sha256').update(Buffer.from(s, 'latin1')).digest('hex')
}

function markerLine(version: string, body: string): string {
  return `${MARKER_PREFIX}${version} ${sha256Hex(body)} */`
}

/** What a marker line says, or undefined when `line` is not one. */
export function parseMarker(line: string): { version: string; bodySha256: string } | undefined {
  const m = MARKER_RE.exec(line)
  return m ? { version: m[1]!, bodySha256: m[2]! } : undefined
}

/** A bundle body (the gated IIFE) with its marker line in front: what buildBundle returns. */
export function stampBundle(body: string): string {
  return markerLine(firmwareVersion(body), body) + '\n' + body
}

/** What a bundle's marker says, once checked against the bundle. */
export interface BundleIdentity {
  /** FW_VERSION, e.g. "mh-fw/0.1.0". */
  version: string
  /** Hex SHA-256 of the body (everything after the marker line). */
  bodySha256: string
  /** Hex SHA-256 of the whole file, as the board will hash it. */
  sha256: string
}

/** A file that is not a firmware bundle `mhealth firmware build` wrote (or was changed since). */
export class NotFirmwareError extends Error {
  override name = 'NotFirmwareError'
}

/**
 * Checks that `code` is a firmware bundle fit to flash: JavaScript that Espruino can run
 * (the syntax gate), starting with a marker line whose hash matches the rest. Throws
 * NotFirmwareError saying which check failed.
 */
export function checkFirmwareBundle(code: string): BundleIdentity {
  if (typeof code !== 'string') throw new TypeError(`expected the bundle as a string, got ${typeof code}`)
  if (code.length === 0) throw new NotFirmwareError('the file is empty')
  const bad = checkEspruinoCompat(code)
  const syntax = bad.find((v) => v.feature.startsWith('syntax error'))
  if (syntax) throw new NotFirmwareError(`it is not JavaScript: ${syntax.feature.replace(/^syntax error \((.*)\)$/, '$1')}`)
  if (bad.length > 0) throw new NotFirmwareError(`it uses what Espruino 2v2x lacks: ${describeViolations(bad)}`)
  const nl = code.indexOf('\n')
  const first = nl < 0 ? code : code.slice(0, nl)
  const m = parseMarker(first)
  if (!m) {
    const what = first.startsWith(MARKER_PREFIX) ? `a malformed marker line '${first.slice(0, 120)}'` : `no '${MARKER_PREFIX}VERSION SHA256 */' first line`
    throw new NotFirmwareError(`it is not an mhealth firmware bundle (${what}; 'mhealth firmware build' writes one)`)
  }
  const body = nl < 0 ? '' : code.slice(nl + 1)
  if (body.trim() === '') throw new NotFirmwareError('it has no code after its marker line')
  const bodySha256 = sha256Hex(body)
  if (bodySha256 !== m.bodySha256) throw new NotFirmwareError(`it was changed after it was built: its body has SHA-256 ${bodySha256}, its marker says ${m.bodySha256}`)
  return { version: m.version, bodySha256, sha256: sha256Hex(code) }
}
