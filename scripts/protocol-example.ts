/**
 * Prints the worked examples of docs/protocol.md: fixed bare-profile frames of
 * version 1 and version 2 (HMAC is deterministic, so every byte is
 * reproducible) annotated byte by byte. test/protocol/docs.test.ts checks the
 * doc against this output.
 * Run: npx tsx scripts/protocol-example.ts [v2]
 */
import { CborWriter } from '../protocol/portable/cbor.ts'
import { encodePayload, encodePayloadV2, FLAG_GAP, FLAG_RECOVERED, LANE_ECG, type FramePayload, type FramePayloadV2 } from '../protocol/portable/frame.ts'
import { mac0ToBeMaced, buildMac0 } from '../protocol/portable/cose.ts'
import { hmacSha256 } from '../protocol/portable/hash.ts'
import { deviceIdFromBytes } from '../protocol/portable/device-id.ts'
import { nodeHash } from '../protocol/node/hash-node.ts'
import { annotateFrame } from '../protocol/node/annotate.ts'
import { toHex, fromHex } from '../protocol/portable/bytes.ts'
import { decodeFrame } from '../protocol/node/decode.ts'
import { ecgCounts, ppgCounts } from '../protocol/node/decode-v2.ts'


const SECRET_HEX = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'
export function exampleFrame() {
  const secret = fromHex(SECRET_HEX)
  const deviceId = deviceIdFromBytes(nodeHash, fromHex('00112233445566778899'))
  const payload: FramePayload = {
    v: 1, deviceId, seq: 42, boot: 3, t0: 1795500000000,
    ecgHz: 250, ecg: [2048, 2050, 2047, 2300],
    flags: 0, dropped: 0, batteryMv: 3900, fw: '0.1.0',
    hr: { value: 72.5, quality: 90 },
  }
  return { ...macFrame(secret, deviceId, encodePayload(new CborWriter(256), payload)), payload }
}

/** The COSE_Mac0 frame of a payload body, with the MAC_structure and tag the docs show. */
function macFrame(secret: Uint8Array, deviceId: string, payloadBody: Uint8Array) {
  const body = new Uint8Array(payloadBody)
  const tbm = mac0ToBeMaced(deviceId, body)
  const tag = hmacSha256(nodeHash, secret, tbm)
  return { secret, deviceId, body, tbm, tag, frame: buildMac0(deviceId, body, tag) }
}

export function exampleText(): string {
  const e = exampleFrame()
  return exampleLines(e, []).join('\n')
}

const ETAG = ['valid', 'fast recovery', 'valid, last in FIFO', 'fast recovery, last in FIFO', '-', '-', 'FIFO empty', 'FIFO overflow']

/**
 * A version-2 frame: four MAX30003 words at 128 sps and gain 80 (PTAG 111), one
 * ECG sample lost after the second, two MAX30102 samples at 50 sps, one R-to-R
 * interval and one recovered fault.
 */
export function exampleFrameV2() {
  const secret = fromHex(SECRET_HEX)
  const deviceId = deviceIdFromBytes(nodeHash, fromHex('00112233445566778899'))
  const payload: FramePayloadV2 = {
    v: 2, deviceId, seq: 43, boot: 3, t0: 1795500001000,
    ecgHz: 128, ecgGain: 80,
    // counts 0, 1000, -1000 (ETAG 000) and 12583 (ETAG 010: the burst's last word)
    ecgRaw: fromHex('000007' + '00fa07' + 'ff0607' + '0c49d7'),
    ppgHz: 50,
    // red 110000 (0x01adb0), IR 140000 (0x0222e0); then red 109100, IR 138200
    ppgRaw: fromHex('01adb0' + '0222e0' + '01aa2c' + '021bd8'),
    gaps: [{ lane: LANE_ECG, at: 2, lost: 1 }],
    rr: [812],
    faults: 1,
    flags: FLAG_GAP | FLAG_RECOVERED, dropped: 0, batteryMv: 3900, fw: '0.2.0',
  }
  return { ...macFrame(secret, deviceId, encodePayloadV2(new CborWriter(256), payload)), payload }
}

export function exampleTextV2(): string {
  const e = exampleFrameV2()
  const f = decodeFrame(e.frame)
  const ecg = e.payload.ecgRaw!
  const ppg = e.payload.ppgRaw!
  const uv = f.payload.ecgUvPerLsb!
  const words: string[] = []
  for (let o = 0; o < ecg.length; o += 3) {
    const c = ecgCounts(ecg, o)
    const etag = (ecg[o + 2]! >> 3) & 7
    words.push(`${toHex(ecg.subarray(o, o + 3))}  D[23:6] ${String(c).padStart(6)} counts = ${(c * uv).toFixed(2).padStart(8)} µV   ETAG ${etag.toString(2).padStart(3, '0')} (${ETAG[etag]})   PTAG ${(ecg[o + 2]! & 7).toString(2).padStart(3, '0')}`)
  }
  for (let o = 0; o < ppg.length; o += 6) {
    words.push(`${toHex(ppg.subarray(o, o + 3))} ${toHex(ppg.subarray(o + 3, o + 6))}  red D[17:0] ${ppgCounts(ppg, o)}, IR D[17:0] ${ppgCounts(ppg, o + 3)}`)
  }
  return exampleLines(e, [
    `# ecgRaw (key 18): MAX30003 FIFO words; gain ${f.payload.ecgGain} V/V, ${uv} µV per count`,
    ...words.slice(0, ecg.length / 3),
    `# ppgRaw (key 19): MAX30102 FIFO samples, red then IR`,
    ...words.slice(ecg.length / 3),
    '',
  ]).join('\n')
}

/** The worked example's text: the frame, its annotation, what `middle` adds, then its MAC. */
function exampleLines(e: { deviceId: string; secret: Uint8Array; frame: Uint8Array; tbm: Uint8Array; tag: Uint8Array }, middle: string[]): string[] {
  const f = decodeFrame(e.frame)
  return [
    `device ID   ${e.deviceId}  (from bytes 00112233445566778899)`,
    `HMAC secret ${toHex(e.secret)}`,
    `frame       ${e.frame.length} bytes`,
    toHex(e.frame),
    '',
    annotateFrame(e.frame, f.protectedBytes, f.payloadBytes),
    '',
    ...middle,
    `# MAC_structure (what HMAC-SHA256 runs over), ${e.tbm.length} bytes`,
    toHex(e.tbm),
    `# tag = HMAC-SHA256(secret, MAC_structure)`,
    toHex(e.tag),
  ]
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(process.argv[2] === 'v2' ? exampleTextV2() : exampleText())
