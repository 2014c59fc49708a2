/**
 * The firmware bundle: firmware/main.ts and everything it imports, bundled by esbuild into
 * one minified ES2015 IIFE and passed through the Espruino syntax gate. Used by
 * `mhealth firmware build`, `mhealth flash` and the simulator (hardware-sim/rig.ts).
 *
 * Node only: nothing under firmware/build/ is part of the bundle (main.ts never imports it).
 */
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkEspruinoCompat } from './syntax-gate.ts'

export const FIRMWARE_ENTRY = join(dirname(fileURLToPath(import.meta.url)), '..', 'main.ts')

/** The bundle did not build, or uses what Espruino lacks; the message says what, for people. */
export class FirmwareBuildError extends Error {
  override name = 'FirmwareBuildError'
}

export interface BuildResult {
  code: string
  bytes: number
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
  const code = '(function(__req,__g){' + out.outputFiles[0]!.text.trim() + '})(require,this);\n'
  const bad = checkEspruinoCompat(code)
  if (bad.length > 0) {
    throw new FirmwareBuildError(`the bundle uses what Espruino 2v2x lacks: ${bad.slice(0, 10).map((v) => `${v.feature} at ${v.line}:${v.column}`).join(', ')}`)
  }
  return { code, bytes: Buffer.byteLength(code, 'latin1') }
}
