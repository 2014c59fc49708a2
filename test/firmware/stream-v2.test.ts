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
