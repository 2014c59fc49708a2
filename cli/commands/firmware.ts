import { dirname, resolve, basename, join } from 'node:path'
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { group, print, type Command } from '../command.ts'
import { parseCli, stringOpt, choiceOpt, intOpt } from '../args.ts'
import { CliError } from '../errors.ts'
import { BUNDLE_BUDGET, ESP32_VARS, VARS_BUDGET } from '../../firmware/build/budget.ts'
import type { BuildResult } from '../../firmware/build/bundle.ts'

/**
 * The bundle as the CLI builds it (`firmware build`, `flash`): a failed build or memory
 * check is one line and exit 1, not a stack trace.
 */
async function cliStep<T>(step: () => Promise<T>): Promise<T> {
  // Loaded on use: every command module is imported when the CLI starts.
  const { FirmwareBuildError } = await import('../../firmware/build/bundle.ts')
  try {
    return await step()
  } catch (e) {
    if (e instanceof FirmwareBuildError) throw new CliError(e.message)
    throw e
  }
}

export async function buildFirmware(): Promise<BuildResult> {
  const { buildBundle } = await import('../../firmware/build/bundle.ts')
  return cliStep(() => buildBundle())
}

async function estimateMemory(code: string) {
  const m = await import('../../hardware-sim/bundle-memory.ts')
  return cliStep(() => m.estimateMemory(code))
}

/**
 * Writes `data` beside `path` under a temporary name, then renames it over `path`: a crash or
 * a full disk mid-write leaves the previous file whole, never a truncated bundle.
 */
function writeAtomically(path: string, data: string): void {
  mkdirSync(dirname(path), { recursive: true })
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`)
  try {
    writeFileSync(tmp, data, 'latin1')
    renameSync(tmp, path)
  } catch (e) {
    rmSync(tmp, { force: true })
    throw e
  }
}

const build: Command = {
  name: 'build',
  summary: 'bundle the firmware into one minified Espruino file and check its budgets',
  usage: [
    'Usage: mhealth firmware build [--board ESP32] [--out dist/firmware.js] [--no-memory] [--max-bytes N] [--max-vars N]',
    '',
    'Bundles firmware/ (TypeScript) with esbuild into one ES2015 IIFE, refuses syntax and',
    'built-ins Espruino 2v2x lacks, prints the size and the JsVars it costs on a virtual ESP32,',
    `and fails (exit 1) over budget: bundle <= ${BUNDLE_BUDGET} bytes, steady state <= 60% of ${ESP32_VARS} JsVars.`,
    'The bundle starts with a marker line, /* mhealth-firmware VERSION SHA256 */ (SHA-256 of the',
    'rest), which `mhealth flash` requires. The file is written only when every check passes',
    '(via a temporary file and a rename): a failed build leaves --out as it was.',
    '',
    'Options:',
    '  --board NAME   target board (only ESP32)',
    '  --out FILE     where to write the bundle (default dist/firmware.js)',
    '  --no-memory    skip the virtual-board memory check',
    `  --max-bytes N  bundle budget in bytes (default ${BUNDLE_BUDGET})`,
    `  --max-vars N   steady-state JsVar budget (default ${VARS_BUDGET})`,
  ].join('\n'),
  async run(argv, io) {
    const p = parseCli(argv, { board: { type: 'string' }, out: { type: 'string' }, 'no-memory': { type: 'boolean' }, 'max-bytes': { type: 'string' }, 'max-vars': { type: 'string' } })
    choiceOpt(p, 'board', ['ESP32'] as const, 'ESP32')
    const maxBytes = intOpt(p, 'max-bytes', BUNDLE_BUDGET, 1)
    const maxVars = intOpt(p, 'max-vars', VARS_BUDGET, 1, ESP32_VARS)
    const outPath = resolve(stringOpt(p, 'out') ?? 'dist/firmware.js')
    const b = await buildFirmware()
    print(io, `firmware: ${b.version}`)
    print(io, `bundle bytes: ${b.bytes} (budget ${maxBytes}, ${((100 * b.bytes) / maxBytes).toFixed(1)}%)`)
    let failed = ''
    if (b.bytes > maxBytes) failed = `bundle is ${b.bytes} bytes, over the ${maxBytes}-byte budget`
    if (!p.values['no-memory']) {
      const m = await estimateMemory(b.code)
      print(io, `JsVars once loaded from flash: ${m.loaded} of ${m.total}`)
      print(io, `JsVars steady state (streaming, buffers allocated): ${m.steady} of ${m.total} (${((100 * m.steady) / m.total).toFixed(1)}%, budget ${maxVars})`)
      print(io, `JsVars peak within a second, unfreed garbage included (upper bound): ${m.peak} of ${m.total}`)
      if (m.steady > maxVars && !failed) failed = `steady-state memory is ${m.steady} JsVars, over the budget of ${maxVars}`
    }
    // Nothing is written unless every check passed, so an over-budget bundle can never be
    // picked up by a later `flash --bundle`; an earlier good bundle at --out stays as it was.
    if (failed) throw new CliError(`${failed}; ${existsSync(outPath) ? `${outPath} left as it was` : `nothing written to ${outPath}`}`)
    writeAtomically(outPath, b.code)
    print(io, `bundle: ${outPath}`)
    return 0
  },
}

export const command: Command = group('firmware', 'build the Espruino firmware bundle', [build])
