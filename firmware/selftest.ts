/**
 * The fixed test frame of selfTest(): the same payload on the board and in the Node tests,
 * so a flashed board's printout can be compared with a known answer (interpreter, CBOR
 * encoder, native SHA-256 and HMAC all checked at once).
 *
 * selftestWindow() is the version-2 frame of the firmware (one second at 256 sps of MAX30003
 * words and 25 PPG samples, a gap, two R-to-R intervals), built by the firmware's own frame
 * builder and signers; selftestPayload() is the version-1 frame of the AD8232 firmware.
 */
import type { FramePayload } from '../protocol/portable/frame.ts'
import type { RawWindow } from './acquire.ts'
import type { Frame2Config, Frame2Meta } from './frame2.ts'

// A valid device ID (body "selftestselftest" plus its check character), so Node's strict decoder accepts the frame.
export const SELFTEST_ID = 'selftestselftestt'

export function selftestPayload(): FramePayload {
  const ecg = new Uint16Array(250)
  for (let i = 0; i < ecg.length; i++) ecg[i] = (2048 + ((i * 37) % 400) - 200) & 4095
  const red = new Uint32Array(100)
  const ir = new Uint32Array(100)
  for (let i = 0; i < 100; i++) {
    red[i] = 100000 + ((i * 997) % 5000)
    ir[i] = 150000 + ((i * 1231) % 7000)
  }
  return {
    v: 1, deviceId: SELFTEST_ID, seq: 1, boot: 1, t0: 1700000000000,
    ecgHz: 250, ecg: ecg, ppgHz: 100, red: red, ir: ir,
    flags: 0, dropped: 0, fw: 'selftest', tempC: 3125,
  }
}

export const SELFTEST_FRAME: Frame2Config = { deviceId: SELFTEST_ID, fw: 'selftest', ecgHz: 256, ppgHz: 25, ecgGain: 80 }
export const SELFTEST_META: Frame2Meta = { seq: 1, boot: 1, t0: 1700000000000, flags: 0, dropped: 0, faults: 1 }

/**
 * ECG word k: the 18-bit count ((k * 37) % 400 - 200) * 16 in D[23:6], ETAG 0 (valid), with
 * the last word tagged 2 (valid, end of FIFO); PPG sample k: red 100000 + (k * 997) % 5000 and
 * IR 150000 + (k * 1231) % 7000, 3 bytes each. Two PPG samples lost before sample 10.
 */
export function selftestWindow(): RawWindow {
  const ecg = new Uint8Array(3 * 256)
  for (let k = 0; k < 256; k++) {
    const w = ((((((k * 37) % 400) - 200) * 16) & 0x3ffff) * 64) + (k === 255 ? 16 : 0)
    ecg[3 * k] = (w >> 16) & 255
    ecg[3 * k + 1] = (w >> 8) & 255
    ecg[3 * k + 2] = w & 255
  }
  const ppg = new Uint8Array(6 * 23)
  for (let k = 0; k < 23; k++) {
    const r = 100000 + ((k * 997) % 5000)
    const i = 150000 + ((k * 1231) % 7000)
    ppg[6 * k] = r >> 16
    ppg[6 * k + 1] = (r >> 8) & 255
    ppg[6 * k + 2] = r & 255
    ppg[6 * k + 3] = i >> 16
    ppg[6 * k + 4] = (i >> 8) & 255
    ppg[6 * k + 5] = i & 255
  }
  return {
    ecg: ecg, ecgN: 256, ecgLost: 0, ppg: ppg, ppgN: 23, ppgLost: 2, ppgOk: true,
    gaps: [1, 10, 2], rr: [812, 797], flags: 0, t0: 0, tempC: 31.25, inUse: false, token: 0,
  }
}

/** HMAC test key: bytes 0x00..0x1f. */
export function selftestKey(): Uint8Array {
  const k = new Uint8Array(32)
  for (let i = 0; i < 32; i++) k[i] = i
  return k
}
