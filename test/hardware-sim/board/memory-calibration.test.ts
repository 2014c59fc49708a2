/**
 * The JsVar model against the real interpreter. fixtures/firmware-2026-12-07.js is the
 * firmware bundle (36,959 bytes, built from commit 574cd62) that was run on Espruino 2v29
 * (Linux build with the ESP32 variable layout: 16,383 JsVars of 14 bytes), which measured
 * (../shared/docs/espruino-facts.md):
 *   - from Storage (.bootcde): about 2,260 JsVars loaded, 4,200-4,260 while streaming;
 *   - sent to RAM: 4,618 before provisioning.
 * The virtual board must report figures within 15 % of those and never below them.
 */
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { estimateMemory } from '../../../hardware-sim/bundle-memory.ts'

const bundle = readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'firmware-2026-12-07.js'), 'latin1')

/** Within `tolerance` of `real`, never under it. */
function calibrated(t: Test, what: string, sim: number, realLow: number, realHigh: number, tolerance = 0.15): void {
  t.ok(sim >= realHigh && sim <= realLow * (1 + tolerance), `${what}: simulator ${sim}, real ${realLow === realHigh ? realLow : `${realLow}-${realHigh}`} (${(((sim - realHigh) / realHigh) * 100).toFixed(1)} % over)`)
}

t.test('the firmware bundle of 2026-12-07: loaded, sent to RAM and streaming, as measured on Espruino 2v29', async (t) => {
  const m = await estimateMemory(bundle)
  calibrated(t, 'loaded from Storage', m.loaded, 2260, 2260)
  calibrated(t, 'sent to RAM', m.loadedFromRam, 4618, 4618)
  calibrated(t, 'steady while streaming', m.steady, 4200, 4260)
  t.ok(m.loadedFromRam - m.loaded > 2000, `RAM keeps a copy of every function's code: +${m.loadedFromRam - m.loaded} JsVars (real +2,358)`)
  t.ok(m.peak >= m.steady, `peak ${m.peak} (unfreed garbage included) is an upper bound`)
})
