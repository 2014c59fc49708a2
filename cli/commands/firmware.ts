import { join, dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { group, print, type Command } from '../command.ts'
import { parseCli, stringOpt, choiceOpt, intOpt } from '../args.ts'
import { CliError } from '../errors.ts'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const FIRMWARE_ENTRY = join(root, 'firmware', 'main.ts')

/** Budgets from the issue: bundle bytes, and steady-state JsVars as a share of the ESP32's 16,383. */
export const BUNDLE_BUDGET = 48 * 1024
export const ESP32_VARS = 16383
export const VARS_BUDGET = Math.floor(ESP32_VARS * 0.6)

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
    throw new CliError('firmware build failed: ' + (errs.map((x) => `${x.location ? `${x.location.file}:${x.location.line}: ` : ''}${x.text}`).join('; ') || (e as Error).message))
  }
  const code = '(function(__req,__g){' + out.outputFiles[0]!.text.trim() + '})(require,this);\n'
  const { checkEspruinoCompat } = await import('../../hardware-sim/board/syntax-gate.ts')
  const bad = checkEspruinoCompat(code)
  if (bad.length > 0) {
    throw new CliError(`the bundle uses what Espruino 2v2x lacks: ${bad.slice(0, 10).map((v: { feature: string; line: number; column: number }) => `${v.feature} at ${v.line}:${v.column}`).join(', ')}`)
  }
  return { code, bytes: Buffer.byteLength(code, 'latin1') }
}

export interface MemoryEstimate {
  /** JsVars in use after the code loaded from flash, before it runs anything. */
  loaded: number
  /** JsVars in use while streaming (offline, frames into the flash ring), buffers allocated. */
  steady: number
  /** Highest reading within a second of streaming, garbage not yet freed included (upper bound). */
  peak: number
  total: number
}

/**
 * Loads the bundle from Storage (.bootcde, as after `mhealth flash`) on a virtual ESP32 wired
 * like a real board (hardware-sim/rig.ts: ATECC608, MAX30102, AD8232, battery), SE profile,
 * gateway unreachable so frames go to the flash ring; runs 10 virtual seconds so every
 * buffer, the ring and the MQTT client exist, collects garbage (Espruino frees at once, V8
 * later) and reads the JsVar usage.
 */
export async function estimateMemory(code: string): Promise<MemoryEstimate> {
  const { createBoardRig } = await import('../../hardware-sim/rig.ts')
  const { nodeHash } = await import('../../protocol/node/hash-node.ts')
  const { deviceIdFromPublicKey } = await import('../../protocol/portable/device-id.ts')
  const rig = await createBoardRig({ id: 'memcheck', bundle: code, gcPump: false, battery: false })
  try {
    const { board } = rig
    await board.collect()
    const loaded = board.memory().usage
    const id = deviceIdFromPublicKey(nodeHash, rig.readPublicKey())
    rig.configure({ id, profile: 'se', slot: 0, t: Date.now(), gw: { host: '127.0.0.1', mqttPort: 1, httpPort: 1 } })
    board.boot()
    let peak = 0
    for (let i = 0; i < 10; i++) {
      board.advance(1000)
      // Before collecting: live data plus this second's garbage, an upper bound.
      peak = Math.max(peak, board.memory().usage)
      await board.collect()
    }
    const s = rig.status()
    if (!s || !s.up || !(s.stats.frames >= 8)) throw new CliError(`the firmware did not stream on the virtual board: ${rig.lines.slice(-5).join(' | ')}`)
    return { loaded, steady: board.memory().usage, peak, total: board.memory().total }
  } finally {
    rig.close()
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
    const { mkdirSync, writeFileSync } = await import('node:fs')
    const b = await buildBundle()
    mkdirSync(dirname(outPath), { recursive: true })
    writeFileSync(outPath, b.code, 'latin1')
    print(io, `bundle: ${outPath}`)
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
    if (failed) throw new CliError(failed)
    return 0
  },
}

export const command: Command = group('firmware', 'build the Espruino firmware bundle', [build])
