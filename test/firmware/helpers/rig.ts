/**
 * A virtual mHealth board for firmware tests: ESP32 (VirtualBoard) with an ATECC608
 * (and the wake convention: a write to I2C address 0x00), a MAX30102 on a steady
 * finger, an AD8232 on a synthetic ECG with its LO+/LO- pins, the firmware bundle in
 * .bootcde. Pins: ECG D36, LO+ D34, LO- D35, I2C D21/D22.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { VirtualBoard } from '../../../hardware-sim/board/board.ts'
import { Atecc608 as SeModel } from '../../../hardware-sim/devices/atecc608.ts'
import { Max30102 as PpgModel } from '../../../hardware-sim/devices/max30102.ts'
import { Ad8232 as EcgModel } from '../../../hardware-sim/devices/ad8232.ts'
import { EcgSynth } from '../../../hardware-sim/signals/ecg-synth.ts'
import { buildBundle } from '../../../cli/commands/firmware.ts'

let cached: string | null = null
export async function bundle(): Promise<string> {
  if (!cached) cached = (await buildBundle()).code
  return cached
}

export const steadyFinger = {
  light: (t: number) => {
    const pulse = 1 + 0.02 * Math.sin((2 * Math.PI * t) / 833)
    return { red: 0.3 * pulse, ir: 0.4 * pulse, ambient: 0.001 }
  },
  fingerOn: () => true,
}

export interface Rig {
  board: VirtualBoard
  se: SeModel
  lines: string[]
  dir: string
  /** Waits (running the board in real time if it is not running) for a console line. */
  close(): void
}

export async function makeRig(opts: { seed?: number; dir?: string } = {}): Promise<Rig> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'mh-rig-'))
  const se = new SeModel({ seed: opts.seed ?? 3, statePath: join(dir, 'atecc.json') })
  const wake = { address: 0, write: (_d: Uint8Array, now: number) => { se.wake(now); return false }, read: () => null }
  const ppg = new PpgModel({ source: steadyFinger, seed: 5 })
  const ecg = new EcgModel({ source: new EcgSynth({ seed: 9 }) })
  const board = new VirtualBoard({
    id: 'rig', storagePath: join(dir, 'flash.bin'),
    i2c: { I2C1: [se, ppg, wake] },
    analog: { 36: ecg.output },
    digitalIn: { 34: ecg.loPlus, 35: ecg.loMinus },
  })
  const lines: string[] = []
  board.console.on('line', (l: string) => lines.push(l))
  const code = await bundle()
  board.repl(`require("Storage").write(".bootcde", ${JSON.stringify(code)})`)
  return {
    board, se, lines, dir,
    close() {
      board.close()
      if (!opts.dir) rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Advances virtual time in steps until `cond` holds (for purely virtual waits). */
export function advanceUntil(board: VirtualBoard, cond: () => boolean, maxMs: number, stepMs = 10): void {
  for (let t = 0; t < maxMs && !cond(); t += stepMs) board.advance(stepMs)
  if (!cond()) throw new Error(`condition not reached within ${maxMs} virtual ms`)
}
