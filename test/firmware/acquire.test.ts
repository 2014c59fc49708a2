/**
 * The acquisition (firmware/acquire.ts) with the real MAX30003 and MAX30102 drivers against
 * the simulator's device models, on a scripted clock: drains on time keep every sample and
 * both lanes of a window cover the same time; a drain later than the FIFOs hold is a gap
 * (lane, index, estimated count), never invented samples; a held window is taken back.
 */
import t from 'tap'
import { Acquirer, type RawWindow } from '../../firmware/acquire.ts'
import { Max30003 as EcgDriver } from '../../firmware/drivers/max30003.ts'
import { Max30102 as PpgDriver } from '../../firmware/drivers/max30102.ts'
import { Max30003 as EcgModel } from '../../hardware-sim/devices/max30003.ts'
import { Max30102 as PpgModel } from '../../hardware-sim/devices/max30102.ts'
import { steadyFinger } from '../../hardware-sim/rig.ts'
import type { EcgSource } from '../../hardware-sim/signals/types.ts'
import { samplesAgree } from '../../protocol/portable/frame.ts'

const ramp: EcgSource = { mv: (ms) => -5 + ms / 4000, leadOff: () => false }

interface Harness {
  acq: Acquirer
  windows: { w: RawWindow; copy: { ecg: number[]; ecgLost: number; ppgN: number; ppgLost: number; gaps: number[]; t0: number; ppgOk: boolean } }[]
  setNow(ms: number): void
  drainAt(ms: number): void
  /** Runs the callbacks the acquisition scheduled (window hand-ons). */
  settle(): Promise<void>
}

function harness(o: { ecgHz?: number; drainMs?: number; hold?: boolean } = {}): Harness {
  let now = 0
  const ecgModel = new EcgModel({ source: ramp })
  const ppgModel = new PpgModel({ source: steadyFinger, seed: 3 })
  const ecg = new EcgDriver({ send: (tx) => ecgModel.transfer(tx, now) }, () => now)
  const ppg = new PpgDriver({
    writeTo: (_a: number, d: number[] | Uint8Array) => { if (!ppgModel.write(Uint8Array.from(d), now)) throw new Error('NACK') },
    readFrom: (_a: number, n: number) => ppgModel.read(n, now)!,
  }, 0x57)
  ecg.init({ rate: o.ecgHz ?? 128, gain: 20 })
  ppg.init({ sps: 100, average: 2 })
  const windows: Harness['windows'] = []
  const acq: Acquirer = new Acquirer(ecg, () => ecgModel.intb.level(now), ppg, { ecgHz: o.ecgHz ?? 128, ppgHz: 50, windowS: 2, drainMs: o.drainMs ?? 180 }, () => now, (w, token) => {
    const counts: number[] = []
    for (let i = 0; i < w.ecgN; i++) counts.push((((w.ecg[3 * i]! << 16) | (w.ecg[3 * i + 1]! << 8) | w.ecg[3 * i + 2]!) << 8) >> 14)
    windows.push({ w, copy: { ecg: counts, ecgLost: w.ecgLost, ppgN: w.ppgN, ppgLost: w.ppgLost, gaps: w.gaps.slice(), t0: w.t0, ppgOk: w.ppgOk } })
    if (!o.hold) acq.release(w, token)
  })
  acq.start()
  clearInterval(acq.timer) // the test drives the drains
  return {
    acq, windows,
    setNow: (ms) => { now = ms },
    drainAt: (ms) => {
      now = ms
      acq.drain()
    },
    settle: () => new Promise((r) => setTimeout(r, 5)),
  }
}

t.test('drains on time: every ECG sample once, in order; lanes agree; no gap', async (t) => {
  const h = harness()
  for (let ms = 180; ms <= 20_000; ms += 180) {
    h.drainAt(ms)
    await h.settle()
  }
  t.ok(h.windows.length >= 9, `${h.windows.length} windows`)
  const all = h.windows.flatMap((x) => x.copy.ecg)
  // The ramp rises 0.25 µV/ms; at gain 20 that is 0.65536 counts/ms, 5.12 counts per sample at 128 sps,
  // high-passed by the chip (DHPF 0.5 Hz) into a constant step: consecutive differences all alike.
  let jumps = 0
  for (let i = 200; i < all.length; i++) if (Math.abs(all[i]! - all[i - 1]! - (all[i - 1]! - all[i - 2]!)) > 3) jumps++
  t.equal(jumps, 0, 'no sample lost, repeated or reordered (the signal is smooth across every window boundary)')
  for (const { copy } of h.windows) {
    t.equal(copy.ecg.length + copy.ecgLost, 256, '256 ECG items per 2 s window')
    t.same(copy.gaps, [], 'no gap')
    t.ok(copy.ppgOk && samplesAgree(2, (copy.ppgN + copy.ppgLost) / 50), `PPG covers the window too (${copy.ppgN})`)
  }
  const t0s = h.windows.map((x) => x.copy.t0)
  for (let i = 2; i < t0s.length; i++) t.ok(Math.abs(t0s[i]! - t0s[i - 1]! - 2000) < 1, `t0 steps by 2 s (${t0s[i]! - t0s[i - 1]!})`)
  t.equal(h.acq.stats.ecgLost + h.acq.stats.ppgLost, 0)
})

t.test('a drain later than the FIFOs hold: a gap in each lane with the samples lost, none invented', async (t) => {
  const h = harness()
  let ms = 0
  for (ms = 180; ms <= 3000; ms += 180) {
    h.drainAt(ms)
    await h.settle()
  }
  // A callback ran 700 ms: the MAX30003's 32 words (250 ms) and the MAX30102's 32 samples
  // (640 ms) both overflow.
  ms += 700
  h.drainAt(ms)
  await h.settle()
  for (ms += 180; ms <= 9000; ms += 180) {
    h.drainAt(ms)
    await h.settle()
  }
  const withGaps = h.windows.filter((x) => x.copy.gaps.length > 0)
  t.equal(withGaps.length, 1, 'one window has the gaps')
  const g = withGaps[0]!.copy.gaps
  const ecgGap = g[0] === 0 ? g.slice(0, 3) : g.slice(3, 6)
  const ppgGap = g[0] === 1 ? g.slice(0, 3) : g.slice(3, 6)
  t.equal(ecgGap[0], 0, 'an ECG gap')
  t.ok(ecgGap[2]! >= 100 && ecgGap[2]! <= 125, `ECG samples lost ~ 880 ms x 128 sps (${ecgGap[2]})`)
  t.equal(ppgGap[0], 1, 'a PPG gap')
  t.ok(ppgGap[2]! >= 5, `PPG samples lost (${ppgGap[2]})`)
  for (const { copy } of h.windows) {
    t.equal(copy.ecg.length + copy.ecgLost, 256, 'every window still covers 2 s: samples plus lost ones')
    t.ok(samplesAgree(2, (copy.ppgN + copy.ppgLost) / 50), `lanes agree, lost samples counted (${copy.ppgN} + ${copy.ppgLost})`)
  }
  t.ok(h.acq.stats.ecgLost > 0 && h.acq.stats.gaps >= 2, 'counted in the stats')
})

t.test('a stall longer than a window: whole windows are dropped frames, the timeline resumes after it', async (t) => {
  const h = harness()
  let ms = 0
  for (ms = 180; ms <= 2500; ms += 180) {
    h.drainAt(ms)
    await h.settle()
  }
  const before = h.windows.length
  ms += 5000 // a connect that blocked for 5 s
  h.drainAt(ms)
  await h.settle()
  for (ms += 180; ms <= 14_000; ms += 180) {
    h.drainAt(ms)
    await h.settle()
  }
  t.ok(h.acq.stats.skipped >= 1, `${h.acq.stats.skipped} whole windows not made`)
  t.equal(h.acq.dropped, h.acq.stats.skipped, 'reported as dropped frames (main.ts reads and zeroes it with the next frame)')
  const t0s = h.windows.slice(before - 1).map((x) => x.copy.t0)
  const span = t0s[t0s.length - 1]! - t0s[0]!
  t.ok(Math.abs(span / 2000 - Math.round(span / 2000)) < 0.01, 'windows stay on the 2 s grid across the stall')
  for (const { copy } of h.windows) {
    t.ok(copy.ecg.length > 0, 'every window has ECG samples')
    t.equal(copy.ecg.length + copy.ecgLost, 256)
  }
})

t.test('a window its consumer never releases is taken back, counted as dropped and as a fault', async (t) => {
  const h = harness({ hold: true })
  for (let ms = 180; ms <= 7000; ms += 180) {
    h.drainAt(ms)
    await h.settle()
  }
  t.ok(h.windows.length >= 3, `${h.windows.length} windows handed on although none came back`)
  t.ok(h.acq.stats.reclaimed >= 1, `${h.acq.stats.reclaimed} taken back`)
  t.equal(h.acq.faults, h.acq.stats.reclaimed)
  t.equal(h.acq.dropped, h.acq.stats.reclaimed)
  const w = h.windows[0]!.w
  const stale = w.token - 1
  h.acq.release(w, stale)
  t.ok(true, 'a late release with the old token changes nothing')
})
