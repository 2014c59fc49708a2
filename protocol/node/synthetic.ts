/**
 * A frame of plausible synthetic samples for tools and examples that need one
 * without running the simulator: an ECG-like spike train on a 12-bit ADC
 * around mid-scale and a pulsatile PPG at MAX30102 scale.
 */
import type { FramePayload } from '../portable/frame.ts'
import { createRng } from './rng.ts'

export function syntheticPayload(deviceId: string, o: { seconds: number; seq: number; seed: number; t0: number; hrBpm?: number }): FramePayload {
  const rng = createRng(o.seed + o.seq)
  const hr = o.hrBpm ?? 72
  const beat = 60 / hr
  const ecg: number[] = []
  for (let i = 0; i < 250 * o.seconds; i++) {
    const ph = ((i / 250 + o.seq * o.seconds) % beat) / beat
    const qrs = 700 * Math.exp(-((ph - 0.3) ** 2) / 0.0004)
    const tw = 120 * Math.exp(-((ph - 0.6) ** 2) / 0.004)
    ecg.push(Math.max(0, Math.min(4095, Math.round(2048 + qrs + tw + 6 * rng.gaussian()))))
  }
  const red: number[] = []
  const ir: number[] = []
  for (let i = 0; i < 100 * o.seconds; i++) {
    const ph = ((i / 100 + o.seq * o.seconds) % beat) / beat
    const pulse = Math.exp(-((ph - 0.25) ** 2) / 0.01) + 0.3 * Math.exp(-((ph - 0.55) ** 2) / 0.008)
    red.push(Math.round(110000 - 900 * pulse + 40 * rng.gaussian()))
    ir.push(Math.round(140000 - 1800 * pulse + 40 * rng.gaussian()))
  }
  return { v: 1, deviceId, seq: o.seq, boot: 1, t0: o.t0, ecgHz: 250, ecg, ppgHz: 100, red, ir, flags: 0, dropped: 0, batteryMv: 3900, fw: '0.1.0' }
}
