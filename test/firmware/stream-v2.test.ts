/**
 * The built bundle on the virtual board streams version-2 frames (offline: into its flash
 * ring) whose ECG bytes are exactly the MAX30003's FIFO words and whose PPG bytes are exactly
 * the MAX30102's FIFO bytes, in the order the chips handed them out: nothing invented,
 * dropped, reordered or re-encoded on the board. Frames verify and decode with the protocol's
 * own decoder.
 */
import t from 'tap'
import { nodeHash } from '../../protocol/node/hash-node.ts'
import { deviceIdFromBytes } from '../../protocol/portable/device-id.ts'
import { verifyFrame } from '../../protocol/node/verify.ts'
import { decodeFifoWord } from '../../hardware-sim/devices/max30003.ts'
import { createBoardRig } from '../../hardware-sim/rig.ts'
import { DEFAULTS } from '../../firmware/config.ts'
import { ringFrames, spyEcgWords, spyPpgBytes } from './helpers/board-frames.ts'

const secret = new Uint8Array(32).fill(0x11)
const id = deviceIdFromBytes(nodeHash, new Uint8Array(10).fill(3))

t.test('v2 frames carry the chips\' FIFO bytes as read, at the configured rates', async (t) => {
  const rig = await createBoardRig({ seed: 7, se: false, boot: false })
  t.teardown(() => rig.close())
  rig.configure({ id, profile: 'bare', secret: Buffer.from(secret).toString('hex'), t: Date.now(), gw: { host: '127.0.0.1', mqttPort: 1, httpPort: 1 } })
  const words = spyEcgWords(rig)
  const ppgBytes = spyPpgBytes(rig)
  rig.board.boot()
  rig.board.advance(21_000)
  const raw = ringFrames(rig.board)
  t.ok(raw.length >= 9, `${raw.length} frames in the flash ring`)
  const frames = raw.map((b) => verifyFrame(b, { profile: 'bare', secret }).payload).sort((a, b) => a.seq - b.seq)
  const ecg: number[] = []
  const ppg: number[] = []
  let prevT0 = -1
  for (const p of frames) {
    t.equal(p.v, 2, `seq ${p.seq}: version 2`)
    t.equal(p.ecgHz, DEFAULTS.ecgHz)
    t.equal(p.ppgHz, DEFAULTS.ppgHz)
    t.equal(p.ecgGain, DEFAULTS.ecgGain)
    t.equal((p.ecg as Int32Array).length, DEFAULTS.ecgHz * DEFAULTS.windowS, `seq ${p.seq}: a window of ECG`)
    // The first window's PPG also holds what the MAX30102 made while the MAX30003 waited for
    // its PLL (up to a drain period); later windows split each burst at the window's edge.
    const tol = p.seq === frames[0]!.seq ? 0.1 * DEFAULTS.ppgHz * DEFAULTS.windowS : 3
    t.ok(Math.abs((p.red as Uint32Array).length - DEFAULTS.ppgHz * DEFAULTS.windowS) <= tol, `seq ${p.seq}: a window of PPG (${(p.red as Uint32Array).length})`)
    t.notOk(p.gaps, 'no gap')
    if (prevT0 >= 0) t.ok(Math.abs(p.t0 - prevT0 - 1000 * DEFAULTS.windowS) <= 2, `t0 steps by the window (${p.t0 - prevT0} ms)`)
    prevT0 = p.t0
    ecg.push(...(p.ecg as Int32Array))
    const red = p.red as Uint32Array
    const ir = p.ir as Uint32Array
    for (let i = 0; i < red.length; i++) ppg.push(red[i]!, ir[i]!)
  }
  // The chips' output in the same order: every ECG word handed out (the frames are a prefix of
  // it: the current window is still being filled), every PPG byte (the same).
  const fromChip = words.map((w) => decodeFifoWord((w[0]! << 16) | (w[1]! << 8) | w[2]!).counts)
  const firstSeqEcg = 0 // frames start at the first window: no sample before them was dropped
  t.same(ecg, fromChip.slice(firstSeqEcg, firstSeqEcg + ecg.length), `${ecg.length} ECG samples equal the MAX30003's words, in order`)
  const chipPpg: number[] = []
  for (let o = 0; o + 6 <= ppgBytes.length; o += 3) chipPpg.push(((ppgBytes[o]! & 3) << 16) | (ppgBytes[o + 1]! << 8) | ppgBytes[o + 2]!)
  t.same(ppg, chipPpg.slice(0, ppg.length), `${ppg.length / 2} PPG samples equal the MAX30102's FIFO, in order`)
  const st = rig.status()!
  t.equal(st.sampler!.missed, 0, 'no sample lost')
  t.equal(st.sampler!.overruns, 0, 'no window taken back or skipped')
  t.ok((st.sampler as any).rr > 0, 'the MAX30003 reported R-to-R intervals')
  t.ok(frames.some((p) => (p.rr ?? []).length > 0), 'R-to-R intervals reach the frames')
})

t.test('drains held up for 1.26 s (as a long callback would): a gap in each lane, in a frame the decoder accepts', async (t) => {
  const rig = await createBoardRig({ seed: 8, se: false, boot: false })
  t.teardown(() => rig.close())
  rig.configure({ id, profile: 'bare', secret: Buffer.from(secret).toString('hex'), t: Date.now(), gw: { host: '127.0.0.1', mqttPort: 1, httpPort: 1 } })
  rig.board.boot()
  rig.board.advance(5_000)
  // The interpreter busy for 7 x 180 ms (every timer waits, the watchdog's too): both FIFOs
  // overflow. The drain before it ran up to one period earlier, so 1.26-1.44 s go undrained;
  // the MAX30003's FIFO is reset on overflow, so all of that is lost, and the gap may run on
  // into the next window.
  rig.board.chargeTime(7 * 180)
  rig.board.advance(10_000)
  const frames = ringFrames(rig.board).map((b) => verifyFrame(b, { profile: 'bare', secret }).payload).sort((a, b) => a.seq - b.seq)
  const withGaps = frames.filter((p) => p.gaps && p.gaps.length > 0)
  t.ok(withGaps.length >= 1 && withGaps.length <= 2, `the gap is in one frame or two (${withGaps.length})`)
  if (withGaps.length === 2) t.equal(withGaps[1]!.seq, withGaps[0]!.seq + 1, 'two frames in a row')
  const p = withGaps[0]!
  t.ok((p.flags & 32) !== 0, 'FLAG_GAP')
  const ecgLost = withGaps.reduce((n, f) => n + f.gaps!.filter((g) => g.lane === 0).reduce((m, g) => m + g.lost, 0), 0)
  const ppgGap = p.gaps!.find((g) => g.lane === 1)
  t.ok(ecgLost >= 160 && ecgLost <= 186, `ECG: ${ecgLost} samples lost (1.26-1.44 s without a drain at 128 sps)`)
  for (const f of withGaps) {
    const lost = f.gaps!.filter((g) => g.lane === 0).reduce((m, g) => m + g.lost, 0)
    t.equal((f.ecg as Int32Array).length + lost, 256, `frame ${f.seq} still spans 2 s: samples plus lost ones`)
  }
  t.ok(ppgGap && ppgGap.lost >= 20, `PPG: ${ppgGap?.lost} samples lost (its 640 ms FIFO overflowed)`)
  // The decoder (verifyFrame above) refuses lanes that cover different times, lost samples counted.
  const st = rig.status()! as any
  t.ok(st.sampler.ecgLost >= 100, 'counted in mhStatus()')
  t.equal(st.sampler.maxLateMs >= 1000, true, `the late drain is measured (${st.sampler.maxLateMs} ms)`)
})

for (const [rate, windowS] of [[256, 2], [512, 1]] as const) {
  t.test(`ecgHz ${rate} (configurable, over the CPU budget): frames of the configured rate, nothing lost`, async (t) => {
    const rig = await createBoardRig({ seed: 12, se: false, boot: false })
    t.teardown(() => rig.close())
    rig.configure({ id, profile: 'bare', secret: Buffer.from(secret).toString('hex'), ecgHz: rate, windowS, t: Date.now(), gw: { host: '127.0.0.1', mqttPort: 1, httpPort: 1 } })
    rig.board.boot()
    rig.board.advance(7_000)
    const frames = ringFrames(rig.board).map((b) => verifyFrame(b, { profile: 'bare', secret }).payload)
    t.ok(frames.length >= 2, `${frames.length} frames`)
    for (const p of frames) {
      t.equal(p.ecgHz, rate)
      t.equal((p.ecg as Int32Array).length, rate * windowS)
      t.notOk(p.gaps, 'no gap')
    }
    t.equal(rig.status()!.sampler!.missed, 0)
  })
}
