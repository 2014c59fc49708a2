import t from 'tap'
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.ts'
import { checkEspruinoCompat } from '../../firmware/build/syntax-gate.ts'
import { checkFirmwareBundle } from '../../firmware/build/bundle.ts'
import { tempDir } from '../helpers/tmp.ts'

t.test('firmware build: one gated bundle, size and JsVars printed, within budget', async (t) => {
  const dir = tempDir('mh-fwb-')
  const out = join(dir, 'fw.js')
  const r = await runCli(['firmware', 'build', '--out', out], { timeoutMs: 120_000 })
  t.equal(r.code, 0, r.stderr)
  const m = /bundle bytes: (\d+)/.exec(r.stdout)
  t.ok(m, 'prints the bundle size')
  const code = readFileSync(out, 'latin1')
  t.equal(Number(m![1]), code.length)
  t.ok(code.length <= 48 * 1024)
  t.same(checkEspruinoCompat(code), [], 'nothing Espruino lacks')
  t.match(code, /^\/\* mhealth-firmware mh-fw\/\d+\.\d+\.\d+ [0-9a-f]{64} \*\/\n\(function\(__req,__g\)\{/, 'starts with the marker line, then the IIFE')
  const id = checkFirmwareBundle(code)
  t.ok(r.stdout.includes(`firmware: ${id.version}\n`), 'prints the version the marker carries')
  t.ok(r.stdout.includes(`bundle: ${out}\n`), 'and where it wrote the bundle')
  t.same(readdirSync(dir), ['fw.js'], 'no temporary file left beside it')
  t.notMatch(code, /\brequire\("node:|Proxy|Symbol\b/, 'no Node imports, no esbuild helpers that need Proxy/Symbol')
  t.match(r.stdout, /JsVars once loaded from flash: \d+ of 16383/)
  const steady = Number(/JsVars steady state.*?: (\d+) of/.exec(r.stdout)![1])
  t.ok(steady > 0 && steady <= Math.floor(16383 * 0.6), `steady state ${steady} JsVars within 60%`)
  t.match(r.stdout, /JsVars peak within a second.*: \d+ of 16383/, 'the upper bound with unfreed garbage is shown too')
})

t.test('firmware build fails with a clear message over budget, writes nothing, and rejects bad options', async (t) => {
  const dir = tempDir('mh-fwb-')
  const r = await runCli(['firmware', 'build', '--out', join(dir, 'a.js'), '--no-memory', '--max-bytes', '1000'])
  t.equal(r.code, 1)
  t.match(r.stderr, /bundle is \d+ bytes, over the 1000-byte budget; nothing written to .*a\.js/)
  t.notOk(existsSync(join(dir, 'a.js')), 'no over-budget bundle left where flash would pick it up')
  // An earlier good bundle at --out survives a failed build untouched.
  const kept = join(dir, 'kept.js')
  writeFileSync(kept, 'an earlier bundle')
  const k = await runCli(['firmware', 'build', '--out', kept, '--no-memory', '--max-bytes', '1000'])
  t.equal(k.code, 1)
  t.match(k.stderr, /over the 1000-byte budget; .*kept\.js left as it was/)
  t.equal(readFileSync(kept, 'latin1'), 'an earlier bundle', 'the previous output is untouched')
  const v = await runCli(['firmware', 'build', '--out', join(dir, 'b.js'), '--max-vars', '100'], { timeoutMs: 120_000 })
  t.equal(v.code, 1)
  t.match(v.stderr, /steady-state memory is \d+ JsVars, over the budget of 100/)
  t.notOk(existsSync(join(dir, 'b.js')), 'nor an over-memory one')
  t.same(readdirSync(dir).sort(), ['kept.js'], 'and no temporary files')
  const b = await runCli(['firmware', 'build', '--board', 'ESP8266'])
  t.equal(b.code, 2)
  t.match(b.stderr, /--board must be one of ESP32, got 'ESP8266'/)
  const h = await runCli(['firmware', 'build', '--help'])
  t.equal(h.code, 0)
  t.match(h.stdout, /Usage: mhealth firmware build/)
  t.match(h.stdout, /mhealth-firmware VERSION SHA256/, '--help describes the marker')
  t.match(h.stdout, /a failed build leaves --out as it was/)
})
