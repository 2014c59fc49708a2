/**
 * The framer's fast path: samples packed as they are taken (Sampler lanes) and wrapped into
 * the frame map must give exactly the bytes of the protocol's encodePayload over the same
 * window, for any samples, flags and optional fields.
 */
import t from 'tap'
import { CborWriter } from '../../protocol/portable/cbor.ts'
import { encodePayload } from '../../protocol/portable/frame.ts'
import { decodeFrame } from '../../protocol/node/decode.ts'
import { buildMac0 } from '../../protocol/portable/cose.ts'
import { Sampler, type SampleWindow } from '../../firmware/sampler.ts'
import { Framer, buildPayload, type FrameMeta } from '../../firmware/framer.ts'

function rng(seed: number) {
  let s = seed >>> 0
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32)
}

/** Drives a real Sampler with scripted drivers and virtual time; collects its windows. */
function windows(seed: number, n: number, withPpg: boolean): SampleWindow[] {
  const r = rng(seed)
  let now = 0
  let ecgV = 2048
  const ecg = { sample: () => (ecgV = Math.max(0, Math.min(4095, ecgV + Math.round((r() - 0.5) * (r() < 0.05 ? 3000 : 40))))), leadOff: () => r() < 0.01 }
  let red = 120000
  const ppg = {
    lostSamples: 0, fingerOff: false, tempPending: false,
    read(rb: Uint32Array, ib: Uint32Array, at: number, max: number) {
      const k = Math.min(max - at, 9 + Math.floor(r() * 3))
      for (let i = 0; i < k; i++) {
        red = Math.max(0, Math.min(262143, red + Math.round((r() - 0.5) * 2000)))
        rb[at + i] = red
        ib[at + i] = Math.min(262143, red + 30000)
      }
      return k
    },
    readTemp() { this.tempPending = false; return 31.5 + r() },
    startTemp() { this.tempPending = true },
  }
  const out: SampleWindow[] = []
  const s = new Sampler(ecg as never, (withPpg ? ppg : null) as never, { ecgHz: 250, windowS: 1, ppgHz: 100, ppgPollMs: 100 }, () => now, (w) => out.push(w))
  // Drive tick/poll by hand in virtual time; windows are handed over synchronously here.
  ;(s as unknown as { swap: () => SampleWindow }).swap = ((orig) =>
    function (this: Sampler) {
      const full = this.bufs[this.cur]!
      const copy: SampleWindow = JSON.parse(JSON.stringify({ ...full, ecg: [], red: [], ir: [], pEcg: null, pRed: null, pIr: null }))
      copy.ecg = full.ecg.slice(0, full.ecgN)
      copy.red = full.red.slice(0, full.ppgN)
      copy.ir = full.ir.slice(0, full.ppgN)
      copy.tempC = full.tempC
      for (const k of ['pEcg', 'pRed', 'pIr'] as const) copy[k] = { buf: full[k].buf.slice(0, full[k].len), len: full[k].len, prev: full[k].prev }
      out.push(copy)
      return orig.call(this)
    })((s as unknown as { swap: () => SampleWindow }).swap)
  s.tStart = 0
  for (let ms = 0; out.length < n; ms += 1) {
    now = ms
    if (ms % 4 === 0 || r() < 0.02) s.tick()
    if (withPpg && ms % 100 === 0) s.pollPpg()
  }
  return out
}

t.test('encodeWindow equals encodePayload(buildPayload) byte for byte', async (t) => {
  const framer = new Framer(4096)
  let checked = 0
  for (const withPpg of [true, false]) {
    for (const w of windows(withPpg ? 7 : 8, 6, withPpg)) {
      for (const extra of [
        { batteryMv: 3987, extraFlags: 4, dropped: 0 },
        { batteryMv: undefined, extraFlags: 16, dropped: 3 },
      ]) {
        const m: FrameMeta = { deviceId: 'selftestselftestt', seq: 1000 + checked, boot: 3, t0: 1763990000123.4, ecgHz: 250, ppgHz: 100, fw: 'mh-fw/test', ...extra }
        const fast = framer.encodeWindow(w, m)
        const slow = encodePayload(new CborWriter(8192), buildPayload(w, m))
        t.same(Buffer.from(fast).toString('hex'), Buffer.from(slow).toString('hex'), `window ${checked} (${w.ecgN} ECG, ${w.ppgN} PPG, temp ${w.tempC === w.tempC})`)
        checked++
      }
    }
  }
  t.equal(checked, 24, '2 PPG settings x 6 windows x 2 metadata variants')
  // And the Node decoder reads the samples back.
  const w = windows(9, 1, true)[0]!
  const m: FrameMeta = { deviceId: 'selftestselftestt', seq: 1, boot: 1, t0: 1763990000000, ecgHz: 250, ppgHz: 100, fw: 'x', extraFlags: 0, dropped: 0 }
  const d = decodeFrame(buildMac0('selftestselftestt', framer.encodeWindow(w, m), new Uint8Array(32)))
  t.same(Array.from(d.payload.ecg as ArrayLike<number>), Array.from(w.ecg.subarray(0, w.ecgN)))
  t.same(Array.from(d.payload.ir as ArrayLike<number>), Array.from(w.ir.subarray(0, w.ppgN)))
})
