/**
 * Measures what a virtual board costs, for fleet sizing. Run:
 *   node --import tsx --expose-gc hardware-sim/board/bench.ts [boards]
 * Prints ratios measured side by side in one run (no absolute claims).
 * (Lives here because bench/ belongs to the lead; move it when merging.)
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { VirtualBoard } from './board.ts'

const N = Number(process.argv[2] ?? 100)
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined)
const dir = mkdtempSync(join(tmpdir(), 'vboard-bench-'))

function heapMB(): number {
  gc()
  gc()
  return process.memoryUsage().heapUsed / 1e6
}

const FIRMWARE = `(function () {
  var buf = new Uint16Array(250); var i = 0; var frames = 0;
  setInterval(function () { buf[i++ % 250] = analogRead(D36) * 4096; }, 4);
  setInterval(function () { frames++; var s = E.toString(new Uint8Array(buf.buffer, 0, 64)); require('crypto').SHA256(s); }, 1000);
})();`

const base = heapMB()
const rss0 = process.memoryUsage().rss / 1e6
const boards: VirtualBoard[] = []
let t = performance.now()
for (let k = 0; k < N; k++) boards.push(new VirtualBoard({ id: `b${k}`, storagePath: join(dir, `f${k}.bin`), analog: { 36: { voltage: (ms) => 1.65 + Math.sin(ms / 100) } } }))
const createMs = (performance.now() - t) / N
const idle = heapMB()
const rss1 = process.memoryUsage().rss / 1e6
for (const b of boards) b.load(FIRMWARE)
const loaded = heapMB()

t = performance.now()
const SIM_MS = 10_000
for (const b of boards.slice(0, 10)) b.advance(SIM_MS)
const runMs = (performance.now() - t) / 10
const callbacks = SIM_MS / 4 + SIM_MS / 1000

console.log(`boards: ${N}`)
console.log(`create: ${createMs.toFixed(2)} ms per board`)
console.log(`idle board: ${((idle - base) / N).toFixed(3)} MB JS heap each, ${((rss1 - rss0) / N).toFixed(3)} MB RSS each`)
console.log(`with a 250 Hz sampling firmware loaded: ${((loaded - base) / N).toFixed(3)} MB JS heap each`)
console.log(`10 s virtual of that firmware (${callbacks} callbacks): ${runMs.toFixed(1)} ms real => ${(SIM_MS / runMs).toFixed(0)}x real time per board, ${((runMs * 1000) / callbacks).toFixed(1)} us per callback`)
console.log(`JsVars in use on board 0: ${boards[0].memory().usage} of ${boards[0].memory().total}`)
for (const b of boards) b.close()
rmSync(dir, { recursive: true, force: true })
