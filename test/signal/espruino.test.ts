/**
 * The signal library, bundled like the firmware and run on the virtual board,
 * detects the same beats and gives the same PPG readings as on Node, inside
 * the board's memory budget.
 */
import t from 'tap'
import { join } from 'node:path'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as esbuild from 'esbuild'
import { VirtualBoard } from '../../hardware-sim/board/board.ts'
import { readRecord } from '../../datasets/wfdb.ts'
import { QrsDetector } from '../../signal/qrs.ts'
import { PpgMonitor } from '../../signal/ppg.ts'
import { syntheticPpg } from './fixtures/ppg-formula.ts'
import { dataDir } from './data.ts'
import { repoRoot } from '../helpers/cli.ts'

const SECONDS = 90

/** MIT-BIH 100 (360 Hz) resampled linearly to the board's 250 Hz, as 11-bit ADC codes. */
function ecgAt250(): Int16Array {
  const rec = readRecord(join(dataDir, 'ecg', 'mitdb', '100'))
  const x = rec.samples[0]
  const out = new Int16Array(SECONDS * 250)
  for (let i = 0; i < out.length; i++) {
    const pos = (i * rec.fs) / 250
    const j = Math.floor(pos)
    out[i] = Math.round(x[j] + (x[j + 1] - x[j]) * (pos - j))
  }
  return out
}

t.test('QRS and PPG monitors run unchanged on the virtual board', async (t) => {
  const ecg = ecgAt250()
  const built = await esbuild.build({
    entryPoints: [join(repoRoot, 'test/signal/fixtures/board-monitor.ts')],
    bundle: true, write: false, format: 'iife', target: 'es2015', minify: true, platform: 'neutral',
  })
  const code = built.outputFiles[0].text

  const dir = mkdtempSync(join(tmpdir(), 'mh-signal-board-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  let next = 0
  const board = new VirtualBoard({
    id: 'signal', storagePath: join(dir, 'flash.bin'),
    // One ADC read per 4 ms tick: hand out the record sample by sample (code r <-> r/4095 * 3.3 V).
    analog: { 36: { voltage: () => (ecg[Math.min(next++, ecg.length - 1)] / 4095) * 3.3 } },
  })
  t.teardown(() => board.close())
  board.load(code)
  board.advance(SECONDS * 1000)
  const mem = board.memory()
  t.notOk(mem.outOfMemory, 'no out-of-memory')
  t.ok(mem.usage < 16383 * 0.25, `QRS + PPG monitors in ${mem.usage} JsVars (under a quarter of the ESP32's 16,383)`)

  const lines = board.console.lines
  const boardBeats = lines.filter((l: string) => l.startsWith('BEAT ')).map((l: string) => Number(l.slice(5)))
  const nodeBeats: number[] = []
  const qrs = new QrsDetector({ fs: 250, onBeat: (r) => nodeBeats.push(r) })
  for (let i = 0; i < next && i < ecg.length; i++) qrs.push(ecg[i])
  t.ok(boardBeats.length > SECONDS, `${boardBeats.length} beats in ${SECONDS} s`)
  t.same(boardBeats, nodeBeats, 'the board detects exactly the beats Node detects')

  const boardPpg = lines.filter((l: string) => l.startsWith('PPG '))
  const nodePpg: string[] = []
  const ppg = new PpgMonitor({
    fs: 100,
    onReading: (r) => nodePpg.push(`PPG ${r.at} ${r.pulseRate === undefined ? '-' : r.pulseRate.toFixed(3)} ${r.spo2 === undefined ? '-' : r.spo2.toFixed(3)}`),
  })
  for (let k = 0; k < SECONDS * 100; k++) { const s = syntheticPpg(k, 100); ppg.push(s.red, s.ir) }
  // advance() is virtual time: the board read exactly the SECONDS * 100 samples Node is fed.
  t.equal(boardPpg.length, SECONDS, 'one PPG reading per second')
  t.same(boardPpg, nodePpg, 'same PPG readings on the board and on Node')
  const last = boardPpg[boardPpg.length - 1].split(' ')
  t.ok(Math.abs(Number(last[2]) - 75) < 3, `pulse rate ${last[2]} bpm for a 75 bpm pulse`)
})
