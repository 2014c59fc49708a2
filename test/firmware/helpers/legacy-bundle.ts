/**
 * The AD8232 firmware (firmware/legacy-ad8232.ts) bundled the way firmware/build/bundle.ts
 * bundles the default entry (esbuild, ES2015 IIFE, minified, the board's require and global
 * passed in) and passed through the same Espruino syntax gate.
 */
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkEspruinoCompat } from '../../../firmware/build/syntax-gate.ts'

export const LEGACY_ENTRY = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'firmware', 'legacy-ad8232.ts')

export async function legacyBundle(): Promise<string> {
  const esbuild = await import('esbuild')
  const out = await esbuild.build({
    entryPoints: [LEGACY_ENTRY], bundle: true, write: false, format: 'iife', target: 'es2015', platform: 'neutral',
    minify: true, charset: 'ascii', legalComments: 'none', logLevel: 'silent',
    tsconfigRaw: { compilerOptions: { useDefineForClassFields: false } },
    define: { require: '__req', global: '__g' },
  })
  const code = '(function(__req,__g){' + out.outputFiles[0]!.text.trim() + '})(require,this);\n'
  const bad = checkEspruinoCompat(code)
  if (bad.length > 0) throw new Error('the AD8232 bundle uses what Espruino lacks: ' + bad.slice(0, 5).map((v) => v.feature).join(', '))
  return code
}
