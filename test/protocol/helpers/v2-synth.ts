/**
 * Version-2 frames the way a board builds them: ECGSYN's lead potential
 * (hardware-sim/signals/ecg-synth.ts) turned into MAX30003 ECG FIFO words
 * (hardware-sim/devices/max30003-map.ts: counts = mV × gain × 2^17 / VREF,
 * tags in D[5:3]), a pulsatile PPG as MAX30102 SpO2-mode FIFO bytes, one
 * contiguous stream per device, with optional lost samples (gaps).
 */
import { EcgSynth } from '../../../hardware-sim/signals/ecg-synth.ts'
import { ETAG, countsFromMv, fifoWord } from '../../../hardware-sim/devices/max30003-map.ts'
import { FLAG_GAP, FRAME_VERSION_2, LANE_ECG, type FramePayloadV2, type Gap } from '../../../protocol/portable/frame.ts'

/** 24-bit words to big-endian bytes, as an SPI burst read returns them. */
export function wordBytes(words: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(words.length * 3)
  for (let i = 0; i < words.length; i++) {
    out[3 * i] = (words[i]! >>> 16) & 255
    out[3 * i + 1] = (words[i]! >>> 8) & 255
    out[3 * i + 2] = words[i]! & 255
  }
  return out
}

/** MAX30102 SpO2-mode FIFO bytes: red then IR, 3 bytes each, 18-bit values in D[17:0]. */
export function ppgBytes(red: ArrayLike<number>, ir: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(red.length * 6)
  for (let i = 0; i < red.length; i++) {
    for (const [o, v] of [[0, red[i]!], [3, ir[i]!]] as const) {
      out[6 * i + o] = (v >>> 16) & 3
      out[6 * i + o + 1] = (v >>> 8) & 255
      out[6 * i + o + 2] = v & 255
    }
  }
  return out
}

/** ECG counts as FIFO words; every `burst`-th word carries the end-of-FIFO tag a drain's last word has. */
export function ecgWordBytes(counts: ArrayLike<number>, burst = 16): Uint8Array {
  const words: number[] = []
  for (let i = 0; i < counts.length; i++) words.push(fifoWord(counts[i]!, (i + 1) % burst === 0 ? ETAG.VALID_EOF : ETAG.VALID))
  return wordBytes(words)
}

export interface V2StreamOptions {
  deviceId: string
  ecgHz: 128 | 256 | 512
  gain?: 20 | 40 | 80 | 160
  hrBpm?: number
  /** PPG rate; 0 = no PPG lane. Default 100. */
  ppgHz?: number
  seconds?: number
  t0: number
  seed?: number
}

/** A board's contiguous sample stream, cut into version-2 frames. */
export class V2Stream {
  readonly synth: EcgSynth
  private ecgI = 0
  private ppgI = 0
  readonly o: Required<V2StreamOptions>

  constructor(o: V2StreamOptions) {
    this.o = { gain: 80, hrBpm: 72, ppgHz: 100, seconds: 1, seed: 3, ...o }
    this.synth = new EcgSynth({ seed: this.o.seed, heartRateBpm: this.o.hrBpm, hrvStdBpm: 1, amplitudeMv: 1.2 })
  }

  private pleth(i: number): [number, number] {
    const beat = 60 / this.o.hrBpm
    const ph = ((i / this.o.ppgHz) % beat) / beat
    const pulse = Math.exp(-((ph - 0.25) ** 2) / 0.01) + 0.3 * Math.exp(-((ph - 0.55) ** 2) / 0.008)
    return [Math.round(110000 - 900 * pulse), Math.round(140000 - 1800 * pulse)]
  }

  /**
   * The next window. `ecgLost` drops that many ECG samples at index `ecgLostAt`
   * of this window (the chip's FIFO overflowed there): the signal runs on, the
   * frame records a gap and carries FLAG_GAP.
   */
  next(seq: number, opt: { ecgLost?: number; ecgLostAt?: number; flags?: number; boot?: number; over?: Partial<FramePayloadV2> } = {}): FramePayloadV2 {
    const { ecgHz, gain, ppgHz, seconds } = this.o
    const t0 = this.o.t0 + Math.round((this.ecgI * 1000) / ecgHz)
    const lost = opt.ecgLost ?? 0
    const at = opt.ecgLostAt ?? Math.floor((ecgHz * seconds) / 2)
    const counts: number[] = []
    for (let k = 0; k < ecgHz * seconds; k++) {
      const i = this.ecgI++
      if (lost > 0 && k >= at && k < at + lost) continue
      counts.push(countsFromMv(this.synth.mv((i * 1000) / ecgHz), gain))
    }
    const gaps: Gap[] = lost > 0 ? [{ lane: LANE_ECG, at, lost }] : []
    const p: FramePayloadV2 = {
      v: FRAME_VERSION_2, deviceId: this.o.deviceId, seq, boot: opt.boot ?? 1, t0,
      ecgHz, ecgGain: gain, ecgRaw: ecgWordBytes(counts),
      flags: (opt.flags ?? 0) | (gaps.length ? FLAG_GAP : 0), dropped: 0, fw: '0.2.0',
    }
    if (gaps.length) p.gaps = gaps
    if (ppgHz > 0) {
      const red: number[] = []
      const ir: number[] = []
      for (let k = 0; k < ppgHz * seconds; k++) {
        const [r, x] = this.pleth(this.ppgI++)
        red.push(r)
        ir.push(x)
      }
      p.ppgHz = ppgHz
      p.ppgRaw = ppgBytes(red, ir)
    }
    return { ...p, ...opt.over }
  }
}
