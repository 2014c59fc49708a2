/**
 * The MAX30102 read sample by sample into typed arrays: what version-1 frames need (the
 * AD8232 firmware, legacy-ad8232.ts, delta-packs red and IR per sample). The frame-v2
 * firmware uses Max30102.burst() and never decodes a sample on the board.
 */
import { Max30102, FULL_SCALE } from './max30102.ts'

export class Max30102Decoding extends Max30102 {
  /**
   * Reads every sample waiting in the FIFO into red/ir from index `at`, at most `max`.
   * Returns the count. An overflow (OVF_COUNTER > 0) means the FIFO filled and
   * OVF_COUNTER samples were lost: counted in lostSamples and `lost` (see burst()). LED control uses the burst's mean.
   */
  read(red: Uint32Array, ir: Uint32Array, at: number, max: number): number {
    const d = this.burst(max - at)
    if (!d) return 0
    const n = this.n
    let sumIr = 0
    let sumRed = 0
    for (let i = 0; i < n; i++) {
      const o = i * 6
      red[at + i] = ((d[o] << 16) | (d[o + 1] << 8) | d[o + 2]) & FULL_SCALE
      ir[at + i] = ((d[o + 3] << 16) | (d[o + 4] << 8) | d[o + 5]) & FULL_SCALE
      sumRed += red[at + i]
      sumIr += ir[at + i]
    }
    this.control(sumRed / n, sumIr / n)
    return n
  }
}
