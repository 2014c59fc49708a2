/**
 * Frames a virtual board keeps in its flash ring (firmware/store.ts layout), read from Node
 * through the board's REPL, and spies on what the sensor models hand out, for tests that
 * compare the frames' bytes with what the chips' FIFOs gave.
 */
import type { VirtualBoard } from '../../../hardware-sim/board/board.ts'
import type { BoardRig } from '../../../hardware-sim/rig.ts'

/** A Storage file's bytes (undefined when absent). */
export function storageFile(board: VirtualBoard, name: string): Uint8Array | undefined {
  const r = board.repl(`(function(){var s=require("Storage").read(${JSON.stringify(name)});return s===undefined?"":btoa(s)})()`)
  if (!r.ok) throw new Error(`reading ${name}: ${String(r.value)}`)
  const b64 = String(r.value)
  return b64 === '' ? undefined : new Uint8Array(Buffer.from(b64, 'base64'))
}

/**
 * Every committed, unacknowledged record of the ring (segments mh.q0..mh.q{n-1}), oldest
 * segment first: segment = 'M' 'Q' gen(4) records; record = A5 len(2) payload commit(1) acked(1).
 */
export function ringFrames(board: VirtualBoard, segments = 12): Uint8Array[] {
  const segs: { gen: number; records: Uint8Array[] }[] = []
  for (let s = 0; s < segments; s++) {
    const f = storageFile(board, 'mh.q' + s)
    if (!f || f[0] !== 0x4d || f[1] !== 0x51) continue
    const gen = ((f[2]! << 24) >>> 0) + (f[3]! << 16) + (f[4]! << 8) + f[5]!
    const records: Uint8Array[] = []
    for (let off = 6; off + 5 <= f.length && f[off] === 0xa5;) {
      const len = (f[off + 1]! << 8) | f[off + 2]!
      if (f[off + 3 + len] === 0 && f[off + 4 + len] === 0xff) records.push(f.slice(off + 3, off + 3 + len))
      off += len + 5
    }
    segs.push({ gen, records })
  }
  return segs.sort((a, b) => a.gen - b.gen).flatMap((s) => s.records)
}

/**
 * Records every sample word the MAX30003 model hands out in FIFO burst reads (ETAG 0..3:
 * samples; EMPTY and OVERFLOW words are not samples), as 3-byte words in order.
 */
export function spyEcgWords(rig: BoardRig): number[][] {
  const words: number[][] = []
  const dev = rig.ecgFifo
  const orig = dev.transfer.bind(dev)
  dev.transfer = (tx: Uint8Array, nowMs: number) => {
    const rx = orig(tx, nowMs)
    if (tx[0] === ((0x20 << 1) | 1)) {
      for (let o = 1; o + 3 <= rx.length; o += 3) if (((rx[o + 2]! >> 3) & 7) <= 3) words.push([rx[o]!, rx[o + 1]!, rx[o + 2]!])
    }
    return rx
  }
  return words
}

/** Records every byte the MAX30102 model hands out from FIFO_DATA (register 0x07), in order. */
export function spyPpgBytes(rig: BoardRig): number[] {
  const bytes: number[] = []
  const dev = rig.ppg!
  const write = dev.write.bind(dev)
  const read = dev.read.bind(dev)
  let reg = -1
  dev.write = (data: Uint8Array, nowMs: number) => {
    if (data.length > 0) reg = data[0]!
    return write(data, nowMs)
  }
  dev.read = (n: number, nowMs: number) => {
    const r = read(n, nowMs)
    if (reg === 0x07 && r) bytes.push(...r)
    return r
  }
  return bytes
}
