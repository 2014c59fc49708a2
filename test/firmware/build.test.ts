import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.ts'
import { checkEspruinoCompat } from '../../firmware/build/syntax-gate.ts'
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
  t.notMatch(code, /\brequire\("node:|Proxy|Symbol\b/, 'no Node imports, no esbuild helpers that need Proxy/Symbol')
  t.match(r.stdout, /JsVars once loaded from flash: \d+ of 16383/)
  const steady = Number(/JsVars steady state.*?: (\d+) of/.exec(r.stdout)![1])
  t.ok(steady > 0 && steady <= Math.floor(16383 * 0.6), `steady state ${steady} JsVars within 60%`)
  t.match(r.stdout, /JsVars peak within a second.*: \d+ of 16383/, 'the upper bound with unfreed garbage is shown too')
})

t.test('firmware build fails with a clear message over budget, and rejects bad options', async (t) => {
  const dir = tempDir('mh-fwb-')
  const r = await runCli(['firmware', 'build', '--out', join(dir, 'a.js'), '--no-memory', '--max-bytes', '1000'])
  t.equal(r.code, 1)
  t.match(r.stderr, /bundle is \d+ bytes, over the 1000-byte budget/)
  const v = await runCli(['firmware', 'build', '--out', join(dir, 'b.js'), '--max-vars', '100'], { timeoutMs: 120_000 })
  t.equal(v.code, 1)
  t.match(v.stderr, /steady-state memory is \d+ JsVars, over the budget of 100/)
  const b = await runCli(['firmware', 'build', '--board', 'ESP8266'])
  t.equal(b.code, 2)
  t.match(b.stderr, /--board must be one of ESP32, got 'ESP8266'/)
  const h = await runCli(['firmware', 'build', '--help'])
  t.equal(h.code, 0)
  t.match(h.stdout, /Usage: mhealth firmware build/)
})
