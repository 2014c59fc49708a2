/**
 * A raw red/IR recording as hard as a real finger on a MAX30102, with its ground truth: the
 * one entry point tests and scoring use (`realisticRecording`), a named scenario set, and a
 * CSV writer in the `t,red,ir` format `mhealth ppg spo2 --csv` reads.
 *
 * The pulse (Beer–Lambert, ratio of ratios from the model's physics, HRV, dicrotic wave) comes
 * from `PpgModel` with its own respiration, motion and ambient switched off; this module adds,
 * each switchable, the artefacts real spot checks carry, then the chip's front end:
 *   optical light → photocurrent (LED current) → + ambient residual → noise → ADC range,
 *   resolution (pulse width) and clipping → timestamps with jitter.
 * Magnitudes and where they come from are stated beside each default. Deterministic per seed.
 */
import { writeFileSync } from 'node:fs'
import { PpgModel, pulseShape, modelRatio } from './ppg.ts'
import { createRng, type Rng } from '../../protocol/node/rng.ts'
import { ADC_RANGE_NA, PULSE_WIDTH_US, RESOLUTION_BITS, LED_MA_PER_LSB, REF_LED_MA, REF_FULL_SCALE_NA } from '../devices/max30102.ts'

export interface DriftOptions {
  /** Peak baseline wander as a fraction of DC (default 0.01). Contact pressure, finger temperature and vasomotion move the DC by about 1 % over tens of seconds; Mayer waves (~0.1 Hz) add a slower vasomotor swing (Allen 2007, Physiol Meas 28:R1, review of PPG). */
  depth?: number
}

export interface RespirationOptions {
  /** Breathing rate, Hz (default 0.25 = 15 breaths/min; adults at rest breathe at 0.2-0.3 Hz). */
  rateHz?: number
  /** Baseline (DC) modulation as a fraction of DC (default 0.003, i.e. a fifth of a 1.5 % pulse) and pulse-amplitude modulation as a fraction of the AC (default 0.1): respiratory-induced intensity and amplitude variation, which Charlton et al. 2018 (Physiol Meas 39:054001) and Karlen et al. 2013 (IEEE TBME 60:1946) report as a few tens of % of the pulse and around 10 % of its amplitude. */
  dcDepth?: number
  acDepth?: number
}

export interface MotionBurstOptions {
  /** Bursts per minute (default 3). */
  perMinute?: number
  /** Burst length in seconds, uniform in [minS, maxS] (default 1-5 s). */
  minS?: number
  maxS?: number
  /** IR absorbance excursion during a burst, fraction of DC (default 0.1: motion in finger PPG is typically 5-10× the pulse, Allen 2007). */
  amplitude?: number
  /** Saturation of the blood that sloshes (default 0.7: venous blood). Its red/IR absorbance ratio (modelRatio(0.7) ≈ 1.6 in this model, against ≈ 0.5 for arterial blood at 97 %) plus a common path-length term makes the motion correlated in both channels but at another ratio: why motion drags SpO2 readings down (Goldman et al. 2000, J Clin Monit Comput 16:475). */
  venousSpo2?: number
}

export interface AmbientOptions {
  /** Ambient photocurrent at the photodiode, nA (default 400: indoor light leaking past a finger). */
  na?: number
  /** Mains frequency, Hz (default 50); lamps flicker at twice it. */
  mainsHz?: number
  /** Flicker depth as a fraction of the ambient level (default 0.3; IEEE 1789-2015 reports percent flicker from a few % to 100 % for common lamps). */
  flicker?: number
  /** Fraction of the ambient the chip's ambient light cancellation removes (default 0.995, a modelling choice: the datasheet specifies ALC but the residual depends on how fast the light changes). */
  cancellation?: number
  /** Slow changes: a person walking past, a lamp switched (default 0.2 of the level, over ~20 s). */
  slowDepth?: number
}

export interface ContactOptions {
  /** Light reaching the photodiode without crossing perfused tissue, as a fraction of the tissue DC (default 0.6): dilutes the PI and biases R, as a loose sensor does. */
  shunt?: number
  /** Contact changes (pressure steps) per minute (default 4), each a DC step of up to ±5 %. */
  stepsPerMinute?: number
}

export interface Artefacts {
  drift?: boolean | DriftOptions
  respiration?: boolean | RespirationOptions
  motion?: boolean | MotionBurstOptions
  ambient?: boolean | AmbientOptions
  contact?: boolean | ContactOptions
  /** Finger off the sensor during these [startS, endS) intervals. */
  fingerOff?: Array<[number, number]>
  /** Timestamp jitter, ms SD (default 2: host timestamps from polled FIFO bursts); `clockPpm` the sample clock's rate error (default 0). */
  jitter?: boolean | { sdMs?: number; clockPpm?: number }
}

export interface AdcOptions {
  /** ADC_RGE full scale, nA (default 4096). */
  rangeNa?: 2048 | 4096 | 8192 | 16384
  /** LED_PW, µs (default 411 = 18 bits; 215, 118, 69 → 17, 16, 15 bits). */
  pulseWidthUs?: 69 | 118 | 215 | 411
  /** LED1_PA (red) and LED2_PA (IR) register values, 0.2 mA per LSB (default 0x24 = 7.2 mA, the firmware's start). */
  led1Pa?: number
  led2Pa?: number
  /** ADC noise, counts RMS at 411 µs (default 3, the device model's 0.05 nA in the 4096 nA range); scales with 1/sqrt(pulse width). */
  noiseCounts?: number
}

export interface RecordingOptions {
  seconds: number
  /** Sample rate of the recording, Hz. */
  fs: number
  /** Arterial SpO2, %: constant or a function of time in seconds. */
  spo2: number | ((tS: number) => number)
  /** Mean pulse rate, bpm: constant or a function of time in seconds. */
  pulseRate: number | ((tS: number) => number)
  /** IR perfusion index, % (AC peak-to-trough / DC; default 1.5 %; Lima et al. 2002, Crit Care Med 30:1210: healthy adults median 1.4 %, low below ~0.7 %). */
  perfusion?: number
  seed: number
  adc?: AdcOptions
  artefacts?: Artefacts
}

export interface Recording {
  /** Timestamps, s (with jitter when enabled: strictly increasing). */
  t: Float64Array
  /** Raw ADC counts, 0..2^18-1, left-justified as the FIFO holds them. */
  red: Float64Array
  ir: Float64Array
  fs: number
  truth: {
    /** True arterial SpO2 (%) and instantaneous pulse rate (bpm, 60 / current beat length) per sample. */
    spo2: Float64Array
    pulseRate: Float64Array
    /** Start times (s) of the true beats. */
    beats: number[]
    /** 1 where the finger is on the sensor, 1 inside a motion burst. */
    fingerOn: Uint8Array
    motion: Uint8Array
    /** Samples at full scale or zero (clipped). */
    clipped: number
  }
}

const FULL = 262143

function opt<T extends object>(v: boolean | T | undefined, def: T): T | null {
  if (!v) return null
  return v === true ? def : Object.assign({}, def, v)
}

/** Peak-to-trough of the model's pulse shape, so `perfusion` is the PI a sensor measures. */
const SHAPE_SPAN = (() => {
  let lo = Infinity
  let hi = -Infinity
  for (let i = 0; i < 1000; i++) {
    const p = pulseShape(i / 1000, 0.35)
    if (p < lo) lo = p
    if (p > hi) hi = p
  }
  return hi - lo
})()

/** Slow wander: a few sinusoids of random phase between 0.01 and 0.1 Hz, normalised to peak `depth`. */
function wander(rng: Rng, depth: number, loHz: number, hiHz: number): (tS: number) => number {
  const k = 4
  const f: number[] = []
  const ph: number[] = []
  for (let i = 0; i < k; i++) {
    f.push(loHz + (hiHz - loHz) * rng.next())
    ph.push(2 * Math.PI * rng.next())
  }
  return (tS) => {
    let s = 0
    for (let i = 0; i < k; i++) s += Math.sin(2 * Math.PI * f[i] * tS + ph[i])
    return (depth * s) / k
  }
}

/** Motion bursts: start times from a Poisson process, each a band-limited (0.5-4 Hz) excursion under a smooth envelope. */
function motionBursts(rng: Rng, o: Required<MotionBurstOptions>, seconds: number): { at: (tS: number) => number; inside: (tS: number) => boolean } {
  const bursts: Array<{ s: number; e: number; f: number[]; ph: number[]; a: number[] }> = []
  let t = 0
  for (;;) {
    t += -Math.log(1 - rng.next()) * (60 / o.perMinute)
    if (t >= seconds) break
    const len = o.minS + (o.maxS - o.minS) * rng.next()
    const f: number[] = []
    const ph: number[] = []
    const a: number[] = []
    for (let i = 0; i < 3; i++) {
      f.push(0.5 + 3.5 * rng.next())
      ph.push(2 * Math.PI * rng.next())
      a.push(0.5 + rng.next())
    }
    bursts.push({ s: t, e: t + len, f, ph, a })
    t += len
  }
  return {
    at(tS) {
      for (const b of bursts) {
        if (tS < b.s || tS >= b.e) continue
        const env = Math.sin((Math.PI * (tS - b.s)) / (b.e - b.s)) // smooth on and off
        let v = 0
        for (let i = 0; i < 3; i++) v += b.a[i] * Math.sin(2 * Math.PI * b.f[i] * (tS - b.s) + b.ph[i])
        return (o.amplitude * env * v) / 1.5
      }
      return 0
    },
    inside: (tS) => bursts.some((b) => tS >= b.s && tS < b.e),
  }
}

/** Contact steps: the DC jumps by up to ±5 % at random times and eases to the new level over ~0.3 s. */
function contactSteps(rng: Rng, perMinute: number, seconds: number): (tS: number) => number {
  const steps: Array<[number, number]> = []
  let t = 0
  for (;;) {
    t += -Math.log(1 - rng.next()) * (60 / perMinute)
    if (t >= seconds) break
    steps.push([t, 0.1 * (rng.next() - 0.5)])
  }
  return (tS) => {
    let v = 0
    for (const [s, d] of steps) if (tS >= s) v += d * (1 - Math.exp(-(tS - s) / 0.1))
    return v
  }
}

function check(o: RecordingOptions): void {
  if (!o || typeof o !== 'object') throw new TypeError(`realisticRecording: expected options, got ${o}`)
  if (!(o.seconds > 0)) throw new RangeError(`seconds: expected > 0, got ${o.seconds}`)
  if (!(o.fs >= 1 && o.fs <= 3200)) throw new RangeError(`fs: expected 1..3200 Hz, got ${o.fs}`)
  if (typeof o.seed !== 'number') throw new TypeError(`seed: expected a number, got ${o.seed}`)
  const adc = o.adc ?? {}
  if (adc.rangeNa !== undefined && !(ADC_RANGE_NA as readonly number[]).includes(adc.rangeNa)) throw new RangeError(`adc.rangeNa: expected one of ${ADC_RANGE_NA.join(', ')}, got ${adc.rangeNa}`)
  if (adc.pulseWidthUs !== undefined && !(PULSE_WIDTH_US as readonly number[]).includes(adc.pulseWidthUs)) throw new RangeError(`adc.pulseWidthUs: expected one of ${PULSE_WIDTH_US.join(', ')}, got ${adc.pulseWidthUs}`)
  if (o.perfusion !== undefined && !(o.perfusion > 0 && o.perfusion <= 20)) throw new RangeError(`perfusion: expected 0 < PI <= 20 %, got ${o.perfusion}`)
}

/** A realistic raw recording with its truth. See the module comment. */
export function realisticRecording(o: RecordingOptions): Recording {
  check(o)
  const a = o.artefacts ?? {}
  const adc = o.adc ?? {}
  const sub = (k: number) => createRng((o.seed * 2654435761 + k * 0x9e3779b9) >>> 0)
  const spo2 = (tS: number) => (typeof o.spo2 === 'function' ? o.spo2(tS) : o.spo2)
  const bpm = (tS: number) => (typeof o.pulseRate === 'function' ? o.pulseRate(tS) : o.pulseRate)
  const dcRed = 0.3
  const dcIr = 0.45
  const model = new PpgModel({
    seed: o.seed,
    spo2: (ms) => spo2(ms / 1000),
    bpm: (ms) => bpm(ms / 1000),
    perfusionIndex: (o.perfusion ?? 1.5) / 100 / SHAPE_SPAN,
    dcRed, dcIr, respDepth: 0, ambient: 0,
  })

  const drift = opt(a.drift, { depth: 0.01 } as DriftOptions)
  const driftF = drift ? wander(sub(1), drift.depth!, 0.01, 0.1) : null
  const resp = opt(a.respiration, { rateHz: 0.25, dcDepth: 0.003, acDepth: 0.1 } as RespirationOptions)
  const respPh = 2 * Math.PI * sub(2).next()
  const motion = opt(a.motion, { perMinute: 3, minS: 1, maxS: 5, amplitude: 0.1, venousSpo2: 0.7 } as MotionBurstOptions)
  const motionF = motion ? motionBursts(sub(3), motion as Required<MotionBurstOptions>, o.seconds) : null
  const vR = modelRatio(motion ? motion.venousSpo2! : 0.7)
  const amb = opt(a.ambient, { na: 400, mainsHz: 50, flicker: 0.3, cancellation: 0.995, slowDepth: 0.2 } as AmbientOptions)
  const ambSlow = amb ? wander(sub(4), amb.slowDepth!, 0.02, 0.08) : null
  const contact = opt(a.contact, { shunt: 0.6, stepsPerMinute: 4 } as ContactOptions)
  const contactF = contact ? contactSteps(sub(5), contact.stepsPerMinute!, o.seconds) : null
  const jit = opt(a.jitter, { sdMs: 2, clockPpm: 0 })
  const off = a.fingerOff ?? []

  const rangeNa = adc.rangeNa ?? 4096
  const pwUs = adc.pulseWidthUs ?? 411
  const bits = RESOLUTION_BITS[PULSE_WIDTH_US.indexOf(pwUs)]
  const lsbMask = ~((1 << (18 - bits)) - 1)
  const maRed = (adc.led1Pa ?? 0x24) * LED_MA_PER_LSB
  const maIr = (adc.led2Pa ?? 0x24) * LED_MA_PER_LSB
  // The full scale is a current (datasheet: ADC_RGE in nA), so a photocurrent gives the same
  // count at any pulse width; a shorter pulse integrates less charge, which costs bits and SNR.
  const noise = (adc.noiseCounts ?? 3) * Math.sqrt(411 / pwUs)
  const toCounts = (na: number) => (na / rangeNa) * 262144
  const noiseRng = sub(6)
  const jitRng = sub(7)

  const n = Math.round(o.fs * o.seconds)
  const t = new Float64Array(n)
  const red = new Float64Array(n)
  const ir = new Float64Array(n)
  const tSpo2 = new Float64Array(n)
  const tRate = new Float64Array(n)
  const on = new Uint8Array(n)
  const inMotion = new Uint8Array(n)
  const beats: number[] = []
  let lastBeat = -1
  let clipped = 0
  const rate = 1 + (jit ? jit.clockPpm! : 0) * 1e-6
  for (let i = 0; i < n; i++) {
    const ts = i / o.fs / rate // when the chip really sampled
    const l = model.light(ts * 1000)
    const beat = model.currentBeat()
    if (beat.index !== lastBeat) {
      beats.push(beat.start / 1000)
      lastBeat = beat.index
    }
    tSpo2[i] = spo2(ts)
    tRate[i] = 60000 / beat.length
    // pulsatile absorbance the model applied, so respiration can modulate its depth
    let aRed = -Math.log(l.red / dcRed)
    let aIr = -Math.log(l.ir / dcIr)
    let dc = 1
    if (resp) {
      const s = Math.sin(2 * Math.PI * resp.rateHz! * ts + respPh)
      aRed *= 1 + resp.acDepth! * s
      aIr *= 1 + resp.acDepth! * s
      dc += resp.dcDepth! * s
    }
    if (driftF) dc += driftF(ts)
    if (contactF) dc += contactF(ts)
    let mIr = 0
    if (motionF) {
      mIr = motionF.at(ts)
      inMotion[i] = motionF.inside(ts) ? 1 : 0
    }
    const finger = !off.some((iv) => ts >= iv[0] && ts < iv[1])
    on[i] = finger ? 1 : 0
    // motion: venous blood moves (absorbance at the venous ratio) and the path length changes (common term)
    let fr = finger ? dcRed * dc * Math.exp(-aRed - mIr * vR) * (1 + 0.5 * mIr) : 0.005 * dcRed
    let fi = finger ? dcIr * dc * Math.exp(-aIr - mIr) * (1 + 0.5 * mIr) : 0.005 * dcIr
    if (contact && finger) {
      fr += contact.shunt! * dcRed * 0.8 // shunted light skips the tissue: less red absorbed on the way
      fi += contact.shunt! * dcIr * 0.6
    }
    let naRed = REF_FULL_SCALE_NA * ((fr * maRed) / REF_LED_MA)
    let naIr = REF_FULL_SCALE_NA * ((fi * maIr) / REF_LED_MA)
    if (amb) {
      // a finger shields the photodiode; without it the room reaches it tenfold
      const level = amb.na! * (1 + ambSlow!(ts)) * (finger ? 1 : 10)
      const flick = 1 + amb.flicker! * Math.sin(2 * Math.PI * 2 * amb.mainsHz! * ts)
      // the red and IR slots sample the flicker at slightly different instants (≈ one pulse width apart)
      const flickIr = 1 + amb.flicker! * Math.sin(2 * Math.PI * 2 * amb.mainsHz! * (ts + pwUs * 2e-6))
      naRed += (1 - amb.cancellation!) * level * flick
      naIr += (1 - amb.cancellation!) * level * flickIr
    }
    const q = (na: number) => {
      const c = Math.floor(toCounts(na) + noise * noiseRng.gaussian())
      if (c >= FULL || c <= 0) clipped++
      return Math.min(FULL, Math.max(0, c)) & lsbMask
    }
    red[i] = q(naRed)
    ir[i] = q(naIr)
    let tt = i / o.fs
    if (jit) tt += (jit.sdMs! / 1000) * jitRng.gaussian()
    if (i > 0 && tt <= t[i - 1]) tt = t[i - 1] + 1e-6 // timestamps never go backwards
    t[i] = tt
  }
  return { t, red, ir, fs: o.fs, truth: { spo2: tSpo2, pulseRate: tRate, beats, fingerOn: on, motion: inMotion, clipped } }
}

export const SCENARIOS = ['clean', 'motion', 'ambient', 'low-perfusion', 'poor-contact', 'finger-off', 'hypoxia-ramp'] as const
export type ScenarioName = (typeof SCENARIOS)[number]

/**
 * The options of a named scenario. Every scenario breathes, drifts and has timestamp jitter, as
 * every real recording does ("clean" means no motion, ambient or contact problem, not ideal).
 */
export function scenario(name: ScenarioName, base: { seconds: number; fs: number; seed: number }): RecordingOptions {
  const common: RecordingOptions = {
    seconds: base.seconds, fs: base.fs, seed: base.seed, spo2: 97, pulseRate: 72, perfusion: 1.5,
    artefacts: { respiration: true, drift: true, jitter: true },
  }
  const art = common.artefacts!
  switch (name) {
    case 'clean':
      return common
    case 'motion':
      return { ...common, artefacts: { ...art, motion: { perMinute: 6 } } }
    case 'ambient':
      return { ...common, artefacts: { ...art, ambient: { na: 2000, flicker: 0.5, mainsHz: 60 } } }
    case 'low-perfusion':
      return { ...common, perfusion: 0.2 }
    case 'poor-contact':
      return { ...common, perfusion: 0.8, artefacts: { ...art, contact: true, motion: { perMinute: 2, amplitude: 0.03 } } }
    case 'finger-off': {
      const s = base.seconds
      return { ...common, artefacts: { ...art, fingerOff: [[0.3 * s, 0.7 * s]] } }
    }
    case 'hypoxia-ramp':
      return { ...common, spo2: (tS) => 98 - (28 * Math.min(tS, base.seconds)) / base.seconds, pulseRate: (tS) => 72 + (18 * tS) / base.seconds }
    default:
      throw new RangeError(`scenario: expected one of ${SCENARIOS.join(', ')}, got ${name}`)
  }
}

/** The recording as CSV: header `t,red,ir`, t in seconds (µs resolution), raw ADC counts. */
export function recordingCsv(r: Recording): string {
  const lines = ['t,red,ir']
  for (let i = 0; i < r.t.length; i++) lines.push(`${r.t[i].toFixed(6)},${r.red[i]},${r.ir[i]}`)
  return lines.join('\n') + '\n'
}

export function writeRecordingCsv(path: string, r: Recording): void {
  writeFileSync(path, recordingCsv(r))
}

/** Ground truth per whole second: the mean true SpO2 and pulse rate of the samples in [k, k + 1) s. */
export function truthPerSecond(r: Recording): Array<{ t: number; spo2: number; pulseRate: number }> {
  const out: Array<{ t: number; spo2: number; pulseRate: number }> = []
  const secs = Math.floor(r.t.length / r.fs)
  for (let k = 0; k < secs; k++) {
    let s = 0
    let p = 0
    const i0 = Math.round(k * r.fs)
    const i1 = Math.round((k + 1) * r.fs)
    for (let i = i0; i < i1; i++) {
      s += r.truth.spo2[i]
      p += r.truth.pulseRate[i]
    }
    out.push({ t: k, spo2: s / (i1 - i0), pulseRate: p / (i1 - i0) })
  }
  return out
}
