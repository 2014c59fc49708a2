/**
 * Record bodies inside segment files (byte layouts in docs/ledger.md "Storage").
 * Integers are big-endian; u48 holds ms timestamps and sequence numbers up to 2^48.
 */
export const enum RecordType {
  Frame = 1,
  Consent = 2,
  Block = 3,
  PrunedFrame = 4,
  Witness = 5,
  /** An alarm event (alarm-record.ts): start, escalation, end, ack, silence, limits. */
  Alarm = 6,
}

export class RecordError extends Error {
  override name = 'RecordError'
}

const te = new TextEncoder()
const td = new TextDecoder()

export interface FrameMeta {
  deviceId: string
  seq: number
  t0: number
}

function checkU48(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0 || v >= 2 ** 48) throw new RecordError(`${name}: expected an integer in 0..2^48-1, got ${v}`)
}

function metaHead(type: RecordType, m: FrameMeta, extra: number, headroom = 0): { buf: Buffer; p: number } {
  const id = te.encode(m.deviceId)
  if (id.length === 0 || id.length > 255) throw new RecordError(`deviceId: expected 1..255 UTF-8 bytes, got ${id.length}`)
  checkU48('seq', m.seq)
  checkU48('t0', m.t0)
  const whole = Buffer.allocUnsafe(headroom + 2 + id.length + 12 + extra)
  const buf = headroom ? whole.subarray(headroom) : whole
  buf[0] = type
  buf[1] = id.length
  buf.set(id, 2)
  let p = 2 + id.length
  buf.writeUIntBE(m.seq, p, 6)
  buf.writeUIntBE(m.t0, p + 6, 6)
  p += 12
  return { buf: whole, p: p + headroom }
}

export function encodeFrame(m: FrameMeta, frame: Uint8Array): Buffer {
  const { buf, p } = metaHead(RecordType.Frame, m, frame.length)
  buf.set(frame, p)
  return buf
}

/** A frame record with 8 bytes of headroom for the store's framing (SegmentStore.appendSealed). */
export function encodeFrameSealable(m: FrameMeta, frame: Uint8Array): Buffer {
  const { buf, p } = metaHead(RecordType.Frame, m, frame.length, 8)
  buf.set(frame, p)
  return buf
}

export function encodePrunedFrame(m: FrameMeta, leafHash: Uint8Array): Buffer {
  const { buf, p } = metaHead(RecordType.PrunedFrame, m, 32)
  buf.set(leafHash, p)
  return buf
}

/** For Frame: `data` is the frame bytes; for PrunedFrame: the 32-byte leaf hash. */
export function decodeFrameLike(body: Buffer): FrameMeta & { data: Buffer } {
  if (body.length < 15) throw new RecordError(`frame record too short (${body.length} bytes)`)
  const n = body[1]
  if (2 + n + 12 > body.length) throw new RecordError('frame record: device ID runs past the end')
  const deviceId = td.decode(body.subarray(2, 2 + n))
  const p = 2 + n
  const data = body.subarray(p + 12)
  if (body[0] === RecordType.PrunedFrame && data.length !== 32) throw new RecordError(`pruned frame record: expected a 32-byte leaf hash, got ${data.length}`)
  return { deviceId, seq: body.readUIntBE(p, 6), t0: body.readUIntBE(p + 6, 6), data }
}

export function encodeConsentRecord(t: number, record: Uint8Array): Buffer {
  checkU48('t', t)
  const buf = Buffer.allocUnsafe(7 + record.length)
  buf[0] = RecordType.Consent
  buf.writeUIntBE(t, 1, 6)
  buf.set(record, 7)
  return buf
}
export function decodeConsentRecord(body: Buffer): { t: number; record: Buffer } {
  if (body.length < 8) throw new RecordError('consent record too short')
  return { t: body.readUIntBE(1, 6), record: body.subarray(7) }
}

/** Alarm event: type 6, t u48 (the event time), then the event's CBOR (alarm-record.ts). */
export function encodeAlarmRecord(t: number, event: Uint8Array): Buffer {
  checkU48('t', t)
  const buf = Buffer.allocUnsafe(7 + event.length)
  buf[0] = RecordType.Alarm
  buf.writeUIntBE(t, 1, 6)
  buf.set(event, 7)
  return buf
}
export function decodeAlarmRecord(body: Buffer): { t: number; event: Buffer } {
  if (body.length < 8) throw new RecordError('alarm record too short')
  return { t: body.readUIntBE(1, 6), event: body.subarray(7) }
}

export function encodeBlockRecord(header: Uint8Array, sig: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(3 + header.length + 64)
  buf[0] = RecordType.Block
  buf.writeUInt16BE(header.length, 1)
  buf.set(header, 3)
  buf.set(sig, 3 + header.length)
  return buf
}
export function decodeBlockRecord(body: Buffer): { header: Buffer; sig: Buffer } {
  if (body.length < 3) throw new RecordError('block record too short')
  const n = body.readUInt16BE(1)
  if (body.length !== 3 + n + 64) throw new RecordError(`block record: expected ${3 + n + 64} bytes, got ${body.length}`)
  return { header: body.subarray(3, 3 + n), sig: body.subarray(3 + n) }
}

export function encodeWitnessRecord(height: number, pub: Uint8Array, sig: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(1 + 6 + 32 + 64)
  buf[0] = RecordType.Witness
  buf.writeUIntBE(height, 1, 6)
  buf.set(pub, 7)
  buf.set(sig, 39)
  return buf
}
export function decodeWitnessRecord(body: Buffer): { height: number; pub: Buffer; sig: Buffer } {
  if (body.length !== 103) throw new RecordError(`witness record: expected 103 bytes, got ${body.length}`)
  return { height: body.readUIntBE(1, 6), pub: body.subarray(7, 39), sig: body.subarray(39) }
}
