import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { VirtualBoard, type VirtualBoardOptions } from '../../../hardware-sim/board/board.ts'
import type { I2CDevice } from '../../../hardware-sim/hardware.ts'

/** A board with its Storage file in a fresh temp dir, closed and removed when the test ends. */
export function makeBoard(t: Test, opts: Partial<VirtualBoardOptions> = {}): { board: VirtualBoard; dir: string; storagePath: string } {
  const dir = mkdtempSync(join(tmpdir(), 'vboard-'))
  const storagePath = join(dir, 'flash.bin')
  const board = new VirtualBoard({ id: 'test-board', storagePath, ...opts })
  t.teardown(() => {
    board.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { board, dir, storagePath }
}

/** A tiny register-file I2C device: write [reg, ...values] stores, write [reg] then read n returns from reg. */
export class FakeRegisters implements I2CDevice {
  readonly regs = new Uint8Array(256)
  private ptr = 0
  asleep = false
  readonly log: Array<{ op: 'w' | 'r'; bytes: number[]; at: number }> = []
  constructor(readonly address: number) {}
  write(data: Uint8Array, nowMs: number): boolean {
    if (this.asleep) return false
    this.log.push({ op: 'w', bytes: [...data], at: nowMs })
    this.ptr = data[0]
    for (let i = 1; i < data.length; i++) this.regs[(this.ptr + i - 1) & 0xff] = data[i]
    return true
  }
  read(n: number, nowMs: number): Uint8Array | null {
    if (this.asleep) return null
    this.log.push({ op: 'r', bytes: [n], at: nowMs })
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = this.regs[(this.ptr + i) & 0xff]
    return out
  }
}
