/**
 * Derived vitals per device, computed on the gateway side from the signed raw
 * samples with the same portable signal library the boards run (signal/).
 *
 * A frame that carries its own hr/pr/spo2 (the board computed them) is taken at
 * its word, marked source 'device'; otherwise the values come from a streaming
 * EcgMonitor/PpgMonitor per device, fed frame after frame, marked 'gateway'.
 * Monitors are stateful, so frames must arrive in order per device; a gap
 * (sequence jump, reboot, sample-rate or unit change, or a version-2 gap
 * record: samples a chip's FIFO lost inside the frame) restarts them rather
 * than splicing unrelated signal together, so no beat is ever measured across
 * missing signal.
 *
 * Units fed to the ECG chain (signal/ecg.ts takes integers of any scale at any
 * rate): version 1 frames give 12-bit AD8232 ADC codes (0..4095, saturated at
 * either end); version 2 frames give signed MAX30003 counts, converted here to
 * whole microvolts (counts × ecgUvPerLsb), saturated at the chip's full scale
 * ±VREF/gain. Samples the MAX30003 tagged as fast-recovery are fed as no
 * signal (like lead-off), so the detector starts over once they end.
 *
 * ECG findings (`FrameVitals.ecg`, type EcgFindings): after each frame the same
 * EcgMonitor also says which rhythm it sees (signal/rhythm.ts), how many V beats
 * (PVCs) it classified in the last minute (signal/beat-class.ts) and the signal
 * quality. They are the gateway's own (boards send none), absent on a lead-off
 * frame and until the monitor has judged something (a heart rate shown, or a
 * rhythm such as asystole called). A restart (any gap above) loses the rhythm
 * state with the rest: no label is carried across missing signal, and the
 * PVC count starts again from zero over a window that grows back to a minute.
 *
 * Trend points are kept per patient for `keepMs` (default one hour) in plain
 * arrays trimmed from the front: a board sends about one frame per second, so an
 * hour is ~3,600 points per series.
 */
import { EcgMonitor } from '../signal/ecg.ts'
import type { RhythmLabel } from '../signal/rhythm.ts'
import { PpgMonitor } from '../signal/ppg.ts'
import { noCalibrations, type Spo2CalibrationSource } from '../gateway/spo2-calibration-dir.ts'
import { FLAG_FINGER_OFF, FLAG_LEAD_OFF, LANE_ECG, LANE_PPG, type FramePayload } from '../protocol/portable/frame.ts'

export interface TrendPoint {
  t: number
  value: number
  quality: number
}

/** One frame's rhythm call (EcgFindings.rhythm) in the trends. */
export interface RhythmPoint {
  t: number
  rhythm: RhythmLabel | null
  quality: number
}

export interface Trends {
  hr: TrendPoint[]
  pr: TrendPoint[]
  spo2: TrendPoint[]
  /** PVC/min (EcgFindings.pvcPerMin) per frame with findings; quality is the ECG quality. */
  pvcPerMin: TrendPoint[]
  /** The rhythm call per frame with findings. */
  rhythm: RhythmPoint[]
}

export type VitalSource = 'device' | 'gateway'

export interface Vital {
  value: number
  quality: number
  source: VitalSource
  /**
   * SpO2 computed by the gateway: the ID of the R->SpO2 calibration that produced it
   * (gateway/spo2-calibration-dir.ts), so the value can be recomputed from the signed raw
   * samples. Absent on other vitals and on a board's own SpO2.
   */
  calibration?: string
}

export type { RhythmLabel } from '../signal/rhythm.ts'

/**
 * What the gateway's ECG chain says at the end of a frame: the input the alarms build on.
 * Always computed on the gateway from the raw ECG (source 'gateway'); absent, never a
 * placeholder, while the leads are off or before the monitor has judged anything.
 */
export interface EcgFindings {
  /**
   * The rhythm the analysis calls now, the first active one in signal/rhythm.ts's priority
   * order: VF, ASYSTOLE, VT, NOISE, AF, TACHY, BRADY. null: none of these is present. That is
   * not a diagnosis of sinus rhythm (other rhythms are not analysed), and AF can only be called
   * once ~24 beats have been seen since the monitor (re)started (see windowS). NOISE means the
   * signal cannot be judged: no other call is made while it lasts.
   */
  rhythm: RhythmLabel | null
  /** V beats (PVCs) classified in the last windowS seconds: a count per minute once windowS is 60. */
  pvcPerMin: number
  /** Seconds of signal since the monitor (re)started, at most 60: what pvcPerMin counts over. */
  windowS: number
  /** ECG signal quality 0-100 at the end of the frame (EcgMonitor.quality). */
  quality: number
  /** End of the frame's ECG (ms since epoch, board clock): the time the findings hold for. */
  at: number
}

export interface FrameVitals {
  hr?: Vital
  pr?: Vital
  spo2?: Vital
  /** Rhythm, PVC/min and ECG quality (gateway-computed; see EcgFindings). */
  ecg?: EcgFindings
}

interface DeviceState {
  ecg: EcgMonitor | null
  /** Rate and unit the ECG monitor was built for. */
  ecgKind: string
  ppg: PpgMonitor | null
  ppgHz: number
  /** The calibration the PPG monitor was built with. */
  calId: string
  lastSeq: number
  boot: number
}

const round1 = (v: number): number => Math.round(v * 10) / 10

/** Full scale of the MAX30003's signed 18-bit ECG counts. */
const ECG_COUNTS_MIN = -131072
const ECG_COUNTS_MAX = 131071

/** A fresh ECG monitor for the frame's rate and unit (see the module comment). */
function ecgMonitor(p: FramePayload): EcgMonitor {
  const uv = p.ecgUvPerLsb
  if (uv === undefined) return new EcgMonitor({ fs: p.ecgHz! })
  return new EcgMonitor({ fs: p.ecgHz!, adcMin: Math.round(ECG_COUNTS_MIN * uv), adcMax: Math.round(ECG_COUNTS_MAX * uv) })
}

const ecgKind = (p: FramePayload): string => (p.ecgUvPerLsb === undefined ? `adc@${p.ecgHz}` : `uV/${p.ecgUvPerLsb}@${p.ecgHz}`)

/** Sample indexes of one lane at which a gap record says samples were lost, ascending (`n` = after the last sample). */
function gapsAt(p: FramePayload, lane: number): number[] {
  const out: number[] = []
  if (p.gaps) for (const g of p.gaps) if (g.lane === lane) out.push(g.at)
  return out.sort((a, b) => a - b)
}

/** The monitor's findings now, or undefined while it has judged nothing (no rate shown, no rhythm called). */
function findings(m: EcgMonitor, hr: number | undefined, at: number): EcgFindings | undefined {
  const label = m.rhythmLabel()
  if (label === '' && hr === undefined) return undefined
  return { rhythm: label === '' ? null : label, pvcPerMin: m.pvcPerMinute(), windowS: Math.min(60, Math.floor(m.rhythm.count / m.fs)), quality: m.quality(), at }
}

export class VitalsTracker {
  private readonly devices = new Map<string, DeviceState>()
  private readonly trends = new Map<string, Trends>()
  private readonly keepMs: number
  private readonly calibrations: Spo2CalibrationSource

  constructor(o: { keepMs?: number; calibrations?: Spo2CalibrationSource } = {}) {
    this.keepMs = o.keepMs ?? 3600_000
    this.calibrations = o.calibrations ?? noCalibrations
  }

  /** Feeds one frame of a device (in sequence order); returns its vitals and records them as trend points. */
  add(patientId: string, p: FramePayload): FrameVitals {
    const v = this.compute(p)
    const tr = this.trendsOf(patientId)
    const t = p.t0
    if (v.hr) tr.hr.push({ t, value: v.hr.value, quality: v.hr.quality })
    if (v.pr) tr.pr.push({ t, value: v.pr.value, quality: v.pr.quality })
    if (v.spo2) tr.spo2.push({ t, value: v.spo2.value, quality: v.spo2.quality })
    if (v.ecg) {
      tr.pvcPerMin.push({ t, value: v.ecg.pvcPerMin, quality: v.ecg.quality })
      tr.rhythm.push({ t, rhythm: v.ecg.rhythm, quality: v.ecg.quality })
    }
    const cut = t - this.keepMs
    for (const s of [tr.hr, tr.pr, tr.spo2, tr.pvcPerMin, tr.rhythm]) {
      let i = 0
      while (i < s.length && s[i].t < cut) i++
      if (i > 0) s.splice(0, i)
    }
    return v
  }

  /** Trend points of a patient with t in [fromMs, toMs], oldest first. */
  range(patientId: string, fromMs: number, toMs: number): Trends {
    const tr = this.trends.get(patientId)
    const pick = <P extends { t: number }>(s: P[] | undefined): P[] => (s ? s.filter((x) => x.t >= fromMs && x.t <= toMs) : [])
    return { hr: pick(tr?.hr), pr: pick(tr?.pr), spo2: pick(tr?.spo2), pvcPerMin: pick(tr?.pvcPerMin), rhythm: pick(tr?.rhythm) }
  }

  forget(deviceId: string): void {
    this.devices.delete(deviceId)
  }

  private trendsOf(patientId: string): Trends {
    let tr = this.trends.get(patientId)
    if (!tr) this.trends.set(patientId, (tr = { hr: [], pr: [], spo2: [], pvcPerMin: [], rhythm: [] }))
    return tr
  }

  private compute(p: FramePayload): FrameVitals {
    let s = this.devices.get(p.deviceId)
    const contiguous = s !== undefined && s.boot === p.boot && p.seq === s.lastSeq + 1
    if (!s || !contiguous) {
      s = { ecg: null, ecgKind: '', ppg: null, ppgHz: 0, calId: '', lastSeq: p.seq, boot: p.boot }
      this.devices.set(p.deviceId, s)
    }
    s.lastSeq = p.seq
    const out: FrameVitals = {}
    const leadOff = (p.flags & FLAG_LEAD_OFF) !== 0
    const fingerOff = (p.flags & FLAG_FINGER_OFF) !== 0

    if (p.hr) out.hr = { value: p.hr.value, quality: p.hr.quality, source: 'device' }
    if (p.ecg && p.ecgHz) {
      // Fed even when the board sent hr, so the monitor stays warm if a later frame omits it.
      const kind = ecgKind(p)
      if (!s.ecg || s.ecgKind !== kind) {
        s.ecg = ecgMonitor(p)
        s.ecgKind = kind
      }
      const uv = p.ecgUvPerLsb
      const fast = p.ecgFast
      const gaps = gapsAt(p, LANE_ECG)
      let g = 0
      for (let i = 0; i < p.ecg.length; i++) {
        // Lost samples before sample i: what the detector holds belongs to signal that no longer continues here.
        for (; g < gaps.length && gaps[g] <= i; g++) s.ecg = ecgMonitor(p)
        const x = uv === undefined ? p.ecg[i] : Math.round(p.ecg[i] * uv)
        s.ecg.push(x, leadOff || (fast !== undefined && fast[i] === 1))
      }
      const hr = s.ecg.heartRate()
      if (!out.hr && hr !== undefined && !leadOff) out.hr = { value: round1(hr), quality: s.ecg.quality(), source: 'gateway' }
      // Read before a gap after the last sample restarts the monitor: these findings end here.
      const lost = gaps.length > 0 && p.gaps ? p.gaps.reduce((a, x) => a + (x.lane === LANE_ECG ? x.lost : 0), 0) : 0
      const ecg = leadOff ? undefined : findings(s.ecg, hr, p.t0 + Math.round(((p.ecg.length + lost) * 1000) / p.ecgHz))
      if (ecg) out.ecg = ecg
      // Samples lost after the last one: the next frame starts over.
      if (g < gaps.length) s.ecg = ecgMonitor(p)
    }

    if (p.pr) out.pr = { value: p.pr.value, quality: p.pr.quality, source: 'device' }
    if (p.spo2) out.spo2 = { value: p.spo2.value, quality: p.spo2.quality, source: 'device' }
    if (p.red && p.ir && p.ppgHz && p.red.length === p.ir.length) {
      const cal = this.calibrations.forDevice(p.deviceId)
      const fresh = () => new PpgMonitor({ fs: p.ppgHz!, calibration: cal.curve })
      // A new calibration starts a new window: no reading mixes two curves.
      if (!s.ppg || s.ppgHz !== p.ppgHz || s.calId !== cal.id) {
        s.ppg = fresh()
        s.ppgHz = p.ppgHz
        s.calId = cal.id
      }
      const gaps = gapsAt(p, LANE_PPG)
      let g = 0
      for (let i = 0; i < p.red.length; i++) {
        for (; g < gaps.length && gaps[g] <= i; g++) s.ppg = fresh()
        s.ppg.push(p.red[i], p.ir[i])
      }
      const r = s.ppg.reading()
      if (g < gaps.length) s.ppg = fresh()
      if (!fingerOff && r.fingerOn) {
        if (!out.pr && r.pulseRate !== undefined) out.pr = { value: round1(r.pulseRate), quality: r.quality, source: 'gateway' }
        if (!out.spo2 && r.spo2 !== undefined) out.spo2 = { value: round1(r.spo2), quality: r.quality, source: 'gateway', calibration: cal.id }
      }
    }
    if (fingerOff) {
      delete out.pr
      delete out.spo2
    }
    return out
  }
}
