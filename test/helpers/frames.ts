import type { FramePayload } from '../../protocol/portable/frame.ts'
import { createRng, type Rng } from '../../protocol/node/rng.ts'

/** A plausible random frame: ECG 12-bit around mid-scale, PPG 18-bit, optional derived values. */
export function randomPayload(rng: Rng, deviceId: string, opts: { seconds?: number; seq?: number } = {}): FramePayload {
  const seconds = opts.seconds ?? rng.int(1, 5)
  const ecgHz = [125, 250, 500][rng.int(0, 2)]
  const ppgHz = [50, 100, 200][rng.int(0, 2)]
  const ecg: number[] = []
  let e = 2048
  for (let i = 0; i < ecgHz * seconds; i++) ecg.push((e = Math.max(0, Math.min(4095, e + rng.int(-40, 40)))))
  const red: number[] = []
  const ir: number[] = []
  let r = rng.int(50000, 200000)
  let x = rng.int(50000, 200000)
  for (let i = 0; i < ppgHz * seconds; i++) {
    red.push((r = Math.max(0, Math.min(262143, r + rng.int(-900, 900)))))
    ir.push((x = Math.max(0, Math.min(262143, x + rng.int(-900, 900)))))
  }
  const p: FramePayload = {
    v: 1, deviceId, seq: opts.seq ?? rng.int(0, 2 ** 40), boot: rng.int(0, 5000), t0: 1_790_000_000_000 + rng.int(0, 1e9),
    ecgHz, ecg, ppgHz, red, ir, flags: rng.int(0, 31), dropped: rng.int(0, 3), fw: '0.1.0',
  }
  if (rng.next() < 0.5) p.hr = { value: rng.int(300, 1800) / 10, quality: rng.int(0, 100) }
  if (rng.next() < 0.5) p.pr = { value: rng.int(300, 1800) / 10, quality: rng.int(0, 100) }
  if (rng.next() < 0.5) p.spo2 = { value: rng.int(700, 1000) / 10, quality: rng.int(0, 100) }
  if (rng.next() < 0.7) p.batteryMv = rng.int(3300, 4200)
  if (rng.next() < 0.5) p.tempC = rng.int(2000, 4000)
  return p
}

export { createRng }
