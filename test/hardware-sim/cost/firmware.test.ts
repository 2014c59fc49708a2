import t, { type Test } from 'tap'
import vm from 'node:vm'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildBundle } from '../../../firmware/build/bundle.ts'
import { VirtualBoard } from '../../../hardware-sim/board/board.ts'
import { checkEspruinoCompat } from '../../../firmware/build/syntax-gate.ts'
import { instrument } from '../../../hardware-sim/cost/instrument.ts'
import { measureFirmwareCosts } from '../../../hardware-sim/cost/firmware-costs.ts'

/** Loads `code` on a fresh unprovisioned board, runs the firmware's pure REPL helpers, returns what they printed. */
function runHelpers(t: Test, code: string): { lines: string[]; board: VirtualBoard } {
  const dir = mkdtempSync(join(tmpdir(), 'cost-fw-'))
  const board = new VirtualBoard({ id: 'cost', storagePath: join(dir, 'flash.bin') })
  t.teardown(() => {
    board.close()
    rmSync(dir, { recursive: true, force: true })
  })
  board.load(code)
  board.repl('require("Storage").write("probe", "the quick brown fox")')
  board.repl('print("HASH " + mhHash("probe"))')
  board.repl('print("STATUS " + JSON.parse(mhStatus()).up)')
  board.repl('selfTest()')
  board.advance(100)
  return { lines: board.console.lines.filter((l) => /^(SELFTEST|HASH|STATUS)/.test(l)), board }
}

t.test('the instrumented firmware bundle compiles, passes the Espruino gate and computes what the original does', async (t) => {
  const { code } = await buildBundle()
  const r = instrument(code)
  t.doesNotThrow(() => new vm.Script(r.code, { filename: 'firmware.instrumented.js' }))
  t.same(checkEspruinoCompat(r.code), [], 'the inserted charges use nothing Espruino lacks')
  t.ok(r.sites.length > 1000, `${r.sites.length} charge sites`)
  t.ok(r.sites.some((s) => /^[\w$]+\.[A-Za-z]{4,}$/.test(s.fn)), 'method names survive minification into the site names (class.method)')

  const plain = runHelpers(t, code)
  const inst = runHelpers(t, 'var __cost={u:0};\n' + r.code)
  t.ok(plain.lines.length >= 5, `${plain.lines.length} lines printed`)
  t.same(inst.lines, plain.lines, 'selfTest (CBOR, SHA-256, HMAC, COSE), mhHash and mhStatus print the same')
  const units = Number(inst.board.repl('__cost.u').value)
  t.ok(units > 10_000, `the helpers ran ${units} units`)
})

t.test('the firmware-costs harness counts callbacks and the frame build on a streaming rig', async (t) => {
  const r = await measureFirmwareCosts({ profile: 'bare', seconds: 2 })
  t.ok(r.frames >= 1, `${r.frames} frames`)
  t.ok(r.frameBuild > 1000, `frame build ${Math.round(r.frameBuild)} units`)
  t.ok(Object.keys(r.callbacks).length >= 2, Object.keys(r.callbacks).join(', '))
  for (const [k, v] of Object.entries(r.callbacks)) t.ok(v.count > 0 && v.sum > 0, `${k} ran and was charged`)
  // Counts, sums and longest runs all cover the measured seconds only (not the warm-up's first frame).
  for (const [k, v] of Object.entries(r.callbacks)) t.ok(v.max <= v.sum && v.max * v.count >= v.sum, `${k}: mean ${(v.sum / v.count).toFixed(0)} <= max ${v.max} <= sum ${v.sum}`)
  t.ok(Object.keys(r.callbacks).some((k) => /^[\w$]+$/.test(k)), 'a callback that calls a method is named by the method (the label sees through the charges)')
  if (r.tick) {
    t.ok(r.ticks >= 450 && r.ticks <= 550, `${r.ticks} ECG ticks in 2 s`)
    t.ok(r.tick.mean > 100 && r.tick.max >= r.tick.mean, `tick ${Math.round(r.tick.mean)} units`)
  }
})
