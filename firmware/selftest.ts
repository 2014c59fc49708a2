/**
 * The fixed test frame of selfTest(): the same payload on the board and in the Node tests,
 * so a flashed board's printout can be compared with a known answer (interpreter, CBOR
 * encoder, native SHA-256 and HMAC all checked at once).
 */
import type { FramePayload } from '../protocol/portable/frame.ts'

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

/** HMAC test key: bytes 0x00..0x1f. */
export function selftestKey(): Uint8Array {
  const k = new Uint8Array(32)
  for (let i = 0; i < 32; i++) k[i] = i
  return k
}
