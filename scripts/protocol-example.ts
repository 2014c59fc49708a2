/**
 * Prints the worked example of docs/protocol.md: a fixed bare-profile frame
 * (HMAC is deterministic, so every byte is reproducible) annotated byte by
 * byte. test/protocol/docs.test.ts checks the doc against this output.
 * Run: npx tsx scripts/protocol-example.ts
 */
import { CborWriter } from '../protocol/portable/cbor.ts'
import { encodePayload, type FramePayload } from '../protocol/portable/frame.ts'
import { mac0ToBeMaced, buildMac0 } from '../protocol/portable/cose.ts'
import { hmacSha256 } from '../protocol/portable/hash.ts'
import { deviceIdFromBytes } from '../protocol/portable/device-id.ts'
import { nodeHash } from '../protocol/node/hash-node.ts'
import { annotateFrame } from '../protocol/node/annotate.ts'
import { toHex, fromHex } from '../protocol/portable/bytes.ts'
import { decodeFrame } from '../protocol/node/decode.ts'

export function exampleFrame() {
  const secret = fromHex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f')
  const deviceId = deviceIdFromBytes(nodeHash, fromHex('00112233445566778899'))
  const payload: FramePayload = {
    v: 1, deviceId, seq: 42, boot: 3, t0: 1795500000000,
    ecgHz: 250, ecg: [2048, 2050, 2047, 2300],
    flags: 0, dropped: 0, batteryMv: 3900, fw: '0.1.0',
    hr: { value: 72.5, quality: 90 },
  }
  const body = new Uint8Array(encodePayload(new CborWriter(256), payload))
  const tbm = mac0ToBeMaced(deviceId, body)
  const tag = hmacSha256(nodeHash, secret, tbm)
  const frame = buildMac0(deviceId, body, tag)
  return { secret, deviceId, payload, body, tbm, tag, frame }
}

export function exampleText(): string {
  const e = exampleFrame()
  const f = decodeFrame(e.frame)
  return [
    `device ID   ${e.deviceId}  (from bytes 00112233445566778899)`,
    `HMAC secret ${toHex(e.secret)}`,
    `frame       ${e.frame.length} bytes`,
    toHex(e.frame),
    '',
    annotateFrame(e.frame, f.protectedBytes, f.payloadBytes),
    '',
    `# MAC_structure (what HMAC-SHA256 runs over), ${e.tbm.length} bytes`,
    toHex(e.tbm),
    `# tag = HMAC-SHA256(secret, MAC_structure)`,
    toHex(e.tag),
  ].join('\n')
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(exampleText())
