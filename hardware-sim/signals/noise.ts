/**
 * Noise-stress mixing in the manner of PhysioNet's `nst`: adds an NSTDB noise
 * record (`bw` baseline wander, `ma` muscle artefact, `em` electrode motion)
 * to a clean ECG at a chosen signal-to-noise ratio.
 *
 * Our exact method (documented in docs/signal.md):
 * - both signals are brought to microvolts with their header gains (nstdb's
 *   gain field is 0 = uncalibrated = 200 adu/mV; mitdb is 200 adu/mV);
 * - S = (median peak-to-peak QRS amplitude)^2 / 8, the power of a sinusoid of
 *   that amplitude; each beat's amplitude is max - min of the clean signal
 *   within ±50 ms of a reference beat annotation;
 * - N = mean square of the noise after removing its mean (whole noise record);
 * - the noise is scaled by a = sqrt(S / (N * 10^(SNR/10))) and added, in
 *   the clean record's ADC units, rounded;
 * - protocol 'nst' (default): as nst's standard protocol, no noise for the
 *   first 5 minutes, then 2-minute noisy and clean periods alternately;
 *   'continuous': noise over the whole record (harsher).
 * The noise record rewinds if shorter than the clean one.
 */

export interface NoiseMixOptions {
  fs: number
  snrDb: number
  /** Reference beat sample indices of the clean record (used to measure S). */
  beats: ArrayLike<number>
  /** adu per mV of the clean and noise signals (default 200 both). */
  cleanGain?: number
  noiseGain?: number
  protocol?: 'nst' | 'continuous'
}

export interface NoiseMixResult {
  samples: Int16Array
  /** Noise scale factor applied (in noise adu, before gain conversion). */
  scale: number
  /** Measured signal power S and noise power N (mV^2). */
  signalPower: number
  noisePower: number
  /** Intervals [start, end) in samples where noise was added. */
  noisy: Array<[number, number]>
}

export function qrsPeakToPeak(clean: ArrayLike<number>, beats: ArrayLike<number>, fs: number): number {
  const w = Math.round(0.05 * fs)
  const amps: number[] = []
  for (let k = 0; k < beats.length; k++) {
    const b = beats[k]
    if (b - w < 0 || b + w >= clean.length) continue
    let lo = Infinity
    let hi = -Infinity
    for (let i = b - w; i <= b + w; i++) {
      if (clean[i] < lo) lo = clean[i]
      if (clean[i] > hi) hi = clean[i]
    }
    amps.push(hi - lo)
  }
  if (amps.length === 0) throw new Error('qrsPeakToPeak: expected reference beats inside the record, got none')
  amps.sort((a, b) => a - b)
  return amps[amps.length >> 1]
}

export function mixNoise(clean: Int16Array, noise: ArrayLike<number>, opts: NoiseMixOptions): NoiseMixResult {
  if (!(opts.fs > 0)) throw new Error(`mixNoise: expected fs > 0, got ${opts.fs}`)
  if (!Number.isFinite(opts.snrDb)) throw new Error(`mixNoise: expected a finite SNR in dB, got ${opts.snrDb}`)
  if (noise.length === 0) throw new Error('mixNoise: expected a non-empty noise signal')
  const cg = opts.cleanGain ?? 200
  const ng = opts.noiseGain ?? 200
  const pp = qrsPeakToPeak(clean, opts.beats, opts.fs) / cg // mV
  const S = (pp * pp) / 8
  let mean = 0
  for (let i = 0; i < noise.length; i++) mean += noise[i]
  mean /= noise.length
  let ms = 0
  for (let i = 0; i < noise.length; i++) ms += (noise[i] - mean) ** 2
  const N = ms / noise.length / (ng * ng) // mV^2
  const a = Math.sqrt(S / (N * 10 ** (opts.snrDb / 10))) // multiplies noise in mV
  const toClean = (a * cg) / ng // noise adu -> clean adu
  const out = new Int16Array(clean.length)
  const noisy: Array<[number, number]> = []
  const protocol = opts.protocol ?? 'nst'
  const fs = opts.fs
  const on = (i: number): boolean => {
    if (protocol === 'continuous') return true
    const t = i / fs
    if (t < 300) return false
    return Math.floor((t - 300) / 120) % 2 === 0
  }
  let start = -1
  for (let i = 0; i < clean.length; i++) {
    const active = on(i)
    if (active && start < 0) start = i
    if (!active && start >= 0) {
      noisy.push([start, i])
      start = -1
    }
    const v = active ? clean[i] + Math.round((noise[i % noise.length] - mean) * toClean) : clean[i]
    out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v
  }
  if (start >= 0) noisy.push([start, clean.length])
  return { samples: out, scale: toClean, signalPower: S, noisePower: N, noisy }
}
