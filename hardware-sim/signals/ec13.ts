/**
 * The heart-rate test waveforms of ANSI/AAMI EC13:2002 (Cardiac monitors, heart rate meters,
 * and alarms) as EcgSources, for testing the displayed rate (issue 16):
 *
 *   3a  ventricular bigeminy                  displayed rate  80 bpm  (Figure 3a, 4.1.2.1 e)
 *   3b  slow alternating ventricular bigeminy                 60 bpm  (Figure 3b)
 *   3c  rapid alternating ventricular bigeminy                120 bpm (Figure 3c)
 *   3d  bidirectional systoles                                90 bpm  (Figure 3d)
 *   tall-t     tall T-wave rejection, 80 bpm (4.1.2.1 c)
 *   step-120, step-40  heart-rate step 80 -> 120 and 80 -> 40 bpm, response time (4.1.2.1 f)
 *
 * The expected rates are those EC13 (and IEC 60601-2-27 201.7.9.2.9.101 b 4, which took the
 * figures over) gives, as monitor manuals disclose them against it: every complex counts, so a
 * meter that counts only the normal beats of 3a shows half (40 bpm).
 *
 * The standard draws the figures; AAMI also supplies them as digitised recordings (PhysioNet's
 * aami-ec13, 720 Hz, in mV). The beat shapes and timings below were read off those recordings
 * (the first 2-4 s of aami3a, 3b, 3c, 3d): each complex is a sum of a few Gaussians fitted by
 * eye to amplitude, width and position; the intervals are rounded so each pattern gives exactly
 * the expected rate (the recordings run up to 5 % off it).
 * Amplitudes are as recorded (normal R waves of 0.2-0.4 mV, ventricular complexes 0.5-0.9 mV),
 * scaled by `amplitudeScale`.
 *
 * The tall-T and step waveforms are synthetic in EC13 too. Tall T: the test of 4.1.2.1 c
 * (as IEC 60601-2-27 restates it): a 1 mV QRS 100 ms wide, a T wave 180 ms wide ending 350 ms
 * after the QRS onset (QT 350 ms), at 80 bpm; its T amplitude is raised until the meter double
 * counts (1.2 mV is EC13's recommended minimum). The shapes are not given in what we could read:
 * a triangular QRS (EC13's synthetic QRS test pulses are triangles) and a half-sine T are
 * assumptions. Steps: a plain PQRST beat (1 mV R) at 80 bpm that changes rate at one beat.
 *
 * Everything is a function of time: deterministic, any sampling rate and pattern. Time 0 is
 * the start; the first beat comes at FIRST_BEAT_S so that its P wave lies inside the record.
 */
import type { EcgSource } from './types.ts'

/** Names of the waveforms, as in `ec13:NAME` sources. */
export const EC13_WAVEFORMS = ['3a', '3b', '3c', '3d', 'tall-t', 'step-120', 'step-40'] as const
export type Ec13Waveform = (typeof EC13_WAVEFORMS)[number]

export interface Ec13Options {
  /** Multiplies every amplitude (default 1: the recordings' own, in mV). */
  amplitudeScale?: number
  /** tall-t: T-wave amplitude in mV (default 1.2, the amplitude EC13 asks a meter to reject). */
  tWaveMv?: number
  /** step-*: seconds of 80 bpm before the rate changes (default 30). */
  stepS?: number
  /** Lead-off intervals [fromMs, toMs). */
  leadOff?: Array<[number, number]>
}

/** What each waveform is and the rate EC13 expects a meter to display for it. */
export const EC13_INFO: Record<Ec13Waveform, { title: string; expectedBpm: number }> = {
  '3a': { title: 'ventricular bigeminy', expectedBpm: 80 },
  '3b': { title: 'slow alternating ventricular bigeminy', expectedBpm: 60 },
  '3c': { title: 'rapid alternating ventricular bigeminy', expectedBpm: 120 },
  '3d': { title: 'bidirectional systoles', expectedBpm: 90 },
  'tall-t': { title: 'tall T waves (QRS 1 mV, 100 ms; T 180 ms, QT 350 ms)', expectedBpm: 80 },
  'step-120': { title: 'heart-rate step 80 -> 120 bpm', expectedBpm: 120 },
  'step-40': { title: 'heart-rate step 80 -> 40 bpm', expectedBpm: 40 },
}

/** One component of a complex: mV at dt seconds from the beat's fiducial point, zero outside [from, to]. */
interface Wave {
  from: number
  to: number
  mv: (dt: number) => number
}

function gauss(at: number, mv: number, sd: number): Wave {
  const k = -1 / (2 * sd * sd)
  // 4 sd: the tail beyond is under 0.04 % of the peak, below any ADC step here.
  return { from: at - 4 * sd, to: at + 4 * sd, mv: (dt) => mv * Math.exp(k * (dt - at) * (dt - at)) }
}

function triangle(at: number, mv: number, width: number): Wave {
  const h = width / 2
  return { from: at - h, to: at + h, mv: (dt) => mv * (1 - Math.abs(dt - at) / h) }
}

function halfSine(from: number, to: number, mv: number): Wave {
  return { from, to, mv: (dt) => mv * Math.sin((Math.PI * (dt - from)) / (to - from)) }
}

/** A complex: its waves and a label (N normal, V ventricular) for the reference annotations. */
interface Beat {
  label: 'N' | 'V'
  waves: Wave[]
}

/*
 * Complexes read off the aami-ec13 recordings. Offsets in s from the complex's main peak,
 * amplitudes in mV from the isoelectric line, widths as Gaussian standard deviations.
 */

// 3a: small upright normal beat (R 0.37 mV with a shoulder, inverted T); the PVC a small r
// and a deep, wide S (0.75 mV, ~90 ms) with a broad upright T 0.3 s later.
const N_3A: Beat = {
  label: 'N',
  waves: [gauss(-0.17, 0.08, 0.03), gauss(0, 0.36, 0.014), gauss(0.04, 0.12, 0.018), gauss(0.22, -0.12, 0.05)],
}
const V_3A: Beat = {
  label: 'V',
  waves: [gauss(-0.035, 0.13, 0.012), gauss(0, -0.5, 0.013), gauss(0.012, -0.26, 0.028), gauss(0.07, -0.1, 0.03), gauss(0.29, 0.26, 0.055)],
}

// 3b: a narrow normal beat (R 0.25 mV) followed by a PVC whose polarity alternates: an upright
// one (0.85 mV, ~95 ms, discordant T) and an inverted one (0.6 mV) with a tall T (0.5 mV).
const N_3B: Beat = {
  label: 'N',
  waves: [gauss(-0.18, 0.04, 0.025), gauss(0, 0.25, 0.007), gauss(0.022, -0.12, 0.01), gauss(0.06, -0.07, 0.025), gauss(0.31, 0.11, 0.05)],
}
const VUP_3B: Beat = {
  label: 'V',
  waves: [gauss(-0.028, 0.36, 0.028), gauss(0, 0.55, 0.012), gauss(0.24, -0.24, 0.07)],
}
const VDN_3B: Beat = {
  label: 'V',
  waves: [gauss(0, -0.5, 0.013), gauss(0.03, -0.25, 0.025), gauss(0.28, 0.5, 0.045)],
}

// 3c: a sharp deep complex (rS, S 0.8 mV) and, 0.35 s later, a smaller inverted one (0.55 mV)
// that falls where a T wave would: a meter taking it for one shows half the rate.
const A_3C: Beat = {
  label: 'V',
  waves: [gauss(-0.022, 0.2, 0.006), gauss(0, -0.55, 0.008), gauss(0.022, -0.4, 0.012), gauss(0.2, 0.09, 0.05)],
}
const B_3C: Beat = {
  label: 'V',
  waves: [gauss(-0.035, -0.2, 0.025), gauss(0, -0.45, 0.012), gauss(0.17, 0.12, 0.04)],
}

// 3d: a narrow normal beat (R 0.22 mV, depressed ST), then two ventricular complexes of
// opposite polarity: a broad upright one (0.46 mV) and a flat-bottomed inverted one (0.5 mV)
// with a broad T (0.29 mV) right behind it.
const N_3D: Beat = {
  label: 'N',
  waves: [gauss(-0.14, 0.12, 0.012), gauss(-0.03, -0.1, 0.008), gauss(0, 0.22, 0.007), gauss(0.15, -0.1, 0.06)],
}
const VUP_3D: Beat = {
  label: 'V',
  waves: [gauss(0, 0.4, 0.025), gauss(0.03, 0.2, 0.02), gauss(0.2, -0.27, 0.055)],
}
const VDN_3D: Beat = {
  label: 'V',
  waves: [gauss(0, -0.4, 0.016), gauss(0.045, -0.35, 0.02), gauss(0.21, 0.29, 0.06)],
}

/** A clean PQRST (R 1 mV) for the step test, narrow enough for 120 bpm. */
const N_STEP: Beat = {
  label: 'N',
  waves: [gauss(-0.16, 0.15, 0.02), gauss(-0.025, -0.1, 0.008), gauss(0, 1, 0.01), gauss(0.025, -0.25, 0.008), gauss(0.22, 0.3, 0.04)],
}

/**
 * Tall-T complex: triangular QRS of 1 mV and 100 ms (peak at 0, onset at -50 ms), half-sine T of
 * 180 ms ending 350 ms after the QRS onset (QT 350 ms), so from +120 to +300 ms.
 */
function tallT(tWaveMv: number): Beat {
  const onset = -0.05
  return { label: 'N', waves: [triangle(0, 1, 0.1), halfSine(onset + 0.35 - 0.18, onset + 0.35, tWaveMv)] }
}

/** A run of beats repeating `pattern` (each beat followed by its RR interval, s) from `start` until `end`. */
interface Segment {
  start: number
  end: number
  pattern: Array<{ beat: Beat; rr: number }>
  /** Offsets of the pattern's beats within one cycle, and the cycle's length. */
  offsets: number[]
  cycle: number
}

function segment(start: number, end: number, pattern: Array<{ beat: Beat; rr: number }>): Segment {
  const offsets: number[] = []
  let cycle = 0
  for (const p of pattern) {
    offsets.push(cycle)
    cycle += p.rr
  }
  return { start, end, pattern, offsets, cycle }
}

/** First beat's time: its P wave (at most 0.2 s before it) starts after time 0. */
export const FIRST_BEAT_S = 0.3

export class Ec13Source implements EcgSource {
  readonly waveform: Ec13Waveform
  /** The rate EC13 expects a meter to display (for the steps, the rate after the step). */
  readonly expectedBpm: number
  /** Step waveforms: the time (s) of the last beat at 80 bpm, from which the new interval runs; undefined otherwise. */
  readonly stepAtS: number | undefined
  private readonly segments: Segment[]
  private readonly scale: number
  private readonly reachBefore: number // largest extent of a complex before its fiducial point, s
  private readonly reachAfter: number // ...and after it
  private readonly leadOffs: Array<[number, number]>

  constructor(waveform: Ec13Waveform, opts: Ec13Options = {}) {
    if (!EC13_WAVEFORMS.includes(waveform)) throw new RangeError(`waveform: expected one of ${EC13_WAVEFORMS.join(', ')}, got ${JSON.stringify(waveform)}`)
    const scale = opts.amplitudeScale ?? 1
    if (!(scale > 0)) throw new RangeError(`amplitudeScale: expected > 0, got ${scale}`)
    const tMv = opts.tWaveMv ?? 1.2
    if (!(tMv >= 0 && tMv <= 10)) throw new RangeError(`tWaveMv: expected 0..10, got ${tMv}`)
    const stepS = opts.stepS ?? 30
    if (!(stepS >= 5)) throw new RangeError(`stepS: expected >= 5, got ${stepS}`)
    this.waveform = waveform
    this.expectedBpm = EC13_INFO[waveform].expectedBpm
    this.scale = scale
    this.leadOffs = (opts.leadOff ?? []).map(([a, b]) => {
      if (!(b > a)) throw new RangeError(`leadOff: expected [fromMs, toMs) with toMs > fromMs, got [${a}, ${b}]`)
      return [a, b] as [number, number]
    })
    const t0 = FIRST_BEAT_S
    let stepAt: number | undefined
    switch (waveform) {
      case '3a':
        // N -> PVC 0.55 s, PVC -> N 0.95 s (recording: ~0.55 and ~1.0 s): 2 beats per 1.5 s
        this.segments = [segment(t0, Infinity, [{ beat: N_3A, rr: 0.55 }, { beat: V_3A, rr: 0.95 }])]
        break
      case '3b':
        // N -> PVC 0.58 s, PVC -> N 1.42 s, the PVC's polarity alternating: 2 beats per 2 s
        this.segments = [segment(t0, Infinity, [{ beat: N_3B, rr: 0.58 }, { beat: VUP_3B, rr: 1.42 }, { beat: N_3B, rr: 0.58 }, { beat: VDN_3B, rr: 1.42 }])]
        break
      case '3c':
        // 0.35 s then 0.65 s (recording: 0.37 and 0.68 s): 2 beats per second
        this.segments = [segment(t0, Infinity, [{ beat: A_3C, rr: 0.35 }, { beat: B_3C, rr: 0.65 }])]
        break
      case '3d':
        // N -> up 0.54 s, up -> down 0.45 s, down -> N 1.01 s (as recorded): 3 beats per 2 s
        this.segments = [segment(t0, Infinity, [{ beat: N_3D, rr: 0.54 }, { beat: VUP_3D, rr: 0.45 }, { beat: VDN_3D, rr: 1.01 }])]
        break
      case 'tall-t':
        this.segments = [segment(t0, Infinity, [{ beat: tallT(tMv), rr: 0.75 }])]
        break
      case 'step-120':
      case 'step-40': {
        // The step falls on a beat: the last 80 bpm beat is the first of the new rate's intervals.
        const n = Math.ceil((stepS - t0) / 0.75)
        stepAt = t0 + n * 0.75
        const rr = waveform === 'step-120' ? 0.5 : 1.5
        this.segments = [segment(t0, stepAt, [{ beat: N_STEP, rr: 0.75 }]), segment(stepAt, Infinity, [{ beat: N_STEP, rr }])]
        break
      }
    }
    this.stepAtS = stepAt
    let before = 0
    let after = 0
    for (const s of this.segments) {
      for (const p of s.pattern) {
        for (const w of p.beat.waves) {
          if (-w.from > before) before = -w.from
          if (w.to > after) after = w.to
        }
      }
    }
    this.reachBefore = before
    this.reachAfter = after
  }

  /** Lead potential in mV at tMs: the sum of the complexes that reach that instant. */
  mv(tMs: number): number {
    if (!Number.isFinite(tMs) || tMs < 0) throw new RangeError(`tMs: expected a finite time >= 0, got ${tMs}`)
    const t = tMs / 1000
    let v = 0
    for (const s of this.segments) {
      // beats at tb with tb - reachBefore <= t <= tb + reachAfter, inside [start, end)
      const lo = t - this.reachAfter
      const hi = t + this.reachBefore
      if (hi < s.start || lo >= s.end) continue
      const c0 = Math.max(0, Math.floor((lo - s.start) / s.cycle))
      const c1 = Math.floor((hi - s.start) / s.cycle)
      for (let c = c0; c <= c1; c++) {
        for (let j = 0; j < s.pattern.length; j++) {
          const tb = s.start + c * s.cycle + s.offsets[j]!
          if (tb >= s.end || tb < lo || tb > hi) continue
          const dt = t - tb
          for (const w of s.pattern[j]!.beat.waves) if (dt >= w.from && dt <= w.to) v += w.mv(dt)
        }
      }
    }
    return v * this.scale
  }

  leadOff(tMs: number): boolean {
    for (const [a, b] of this.leadOffs) if (tMs >= a && tMs < b) return true
    return false
  }

  /** The reference: every complex's fiducial time (s) and label, from 0 up to `untilS`. */
  beats(untilS: number): Array<{ t: number; label: 'N' | 'V' }> {
    const out: Array<{ t: number; label: 'N' | 'V' }> = []
    for (const s of this.segments) {
      for (let c = 0; s.start + c * s.cycle < Math.min(s.end, untilS); c++) {
        for (let j = 0; j < s.pattern.length; j++) {
          const tb = s.start + c * s.cycle + s.offsets[j]!
          if (tb < s.end && tb < untilS) out.push({ t: tb, label: s.pattern[j]!.beat.label })
        }
      }
    }
    return out
  }
}

/** Parses `ec13:NAME` (NAME one of EC13_WAVEFORMS); undefined for anything else. */
export function parseEc13(spec: string): Ec13Waveform | undefined {
  const m = /^ec13:(.+)$/.exec(spec)
  return m && (EC13_WAVEFORMS as readonly string[]).includes(m[1]!) ? (m[1] as Ec13Waveform) : undefined
}
