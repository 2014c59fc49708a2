/**
 * MQTT 3.1.1 packet encoding and a streaming parser over Espruino binary strings
 * (each char one byte). Only what a QoS 1 publisher with a control subscription needs:
 * CONNECT, PUBLISH (QoS 0/1), PUBACK, SUBSCRIBE, PINGREQ, DISCONNECT out;
 * CONNACK, PUBLISH, PUBACK, SUBACK, PINGRESP in. Section numbers refer to the
 * OASIS MQTT 3.1.1 specification.
 */
import { mqttStr, u16be } from './bytes.ts'

export const CONNECT = 1
export const CONNACK = 2
export const PUBLISH = 3
export const PUBACK = 4
export const SUBSCRIBE = 8
export const SUBACK = 9
export const PINGREQ = 12
export const PINGRESP = 13
export const DISCONNECT = 14

/** Remaining Length (2.2.3): 7 bits per byte, continuation bit 0x80, at most 4 bytes. */
export function encodeLength(n: number): string {
  if (n < 0 || n > 268435455) throw new Error('MQTT remaining length out of range: ' + n)
  let s = ''
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n > 0) b |= 128
    s += String.fromCharCode(b)
  } while (n > 0)
  return s
}

function packet(first: number, body: string): string {
  return String.fromCharCode(first) + encodeLength(body.length) + body
}

export interface ConnectOptions {
  clientId: string
  username?: string
  /** Binary string (the auth token bytes). */
  password?: string
  keepAliveS: number
  cleanSession: boolean
  will?: { topic: string; payload: string; qos: number; retain: boolean }
}

/** CONNECT (3.1): protocol name "MQTT", level 4, connect flags, keep alive, payload. */
export function encodeConnect(o: ConnectOptions): string {
  let flags = 0
  if (o.cleanSession) flags |= 0x02
  if (o.will) flags |= 0x04 | ((o.will.qos & 3) << 3) | (o.will.retain ? 0x20 : 0)
  if (o.password !== undefined) flags |= 0x40
  if (o.username !== undefined) flags |= 0x80
  let body = mqttStr('MQTT') + String.fromCharCode(4, flags) + u16be(o.keepAliveS)
  body += mqttStr(o.clientId)
  if (o.will) body += mqttStr(o.will.topic) + mqttStr(o.will.payload)
  if (o.username !== undefined) body += mqttStr(o.username)
  if (o.password !== undefined) body += mqttStr(o.password)
  return packet(CONNECT << 4, body)
}

/** PUBLISH (3.3): QoS 1 carries a packet identifier; DUP set on retransmission [MQTT-3.3.1-1]. */
export function encodePublish(topic: string, payload: string, qos: number, packetId: number, dup: boolean): string {
  const first = (PUBLISH << 4) | (dup ? 0x08 : 0) | ((qos & 3) << 1)
  const body = mqttStr(topic) + (qos > 0 ? u16be(packetId) : '') + payload
  return packet(first, body)
}

export function encodePuback(packetId: number): string {
  return packet(PUBACK << 4, u16be(packetId))
}

/** SUBSCRIBE (3.8): fixed header flags must be 0010 [MQTT-3.8.1-1]. */
export function encodeSubscribe(packetId: number, topic: string, qos: number): string {
  return packet((SUBSCRIBE << 4) | 2, u16be(packetId) + mqttStr(topic) + String.fromCharCode(qos))
}

export function encodePingreq(): string {
  return String.fromCharCode(PINGREQ << 4, 0)
}

export function encodeDisconnect(): string {
  return String.fromCharCode(DISCONNECT << 4, 0)
}

export interface Packet {
  type: number
  flags: number
  /** Remaining bytes (variable header + payload) as a binary string. */
  body: string
}

/**
 * Streaming parser: TCP may split a packet across reads or coalesce several into one,
 * so bytes accumulate until a whole packet is present. Throws on a malformed length.
 */
export class PacketReader {
  buf: string
  maxPacket: number
  constructor(maxPacket: number) {
    this.buf = ''
    this.maxPacket = maxPacket
  }

  /**
   * Appends `data` and hands on complete packets, at most `max` of them (all when omitted);
   * true when it stopped at `max` with bytes left over (call again with '' for the rest).
   */
  push(data: string, onPacket: (p: Packet) => void, max?: number): boolean {
    this.buf += data
    for (let k = max || 1e9; k > 0; k--) {
      const b = this.buf
      if (b.length < 2) return false
      let len = 0
      let mul = 1
      let i = 1
      let done = false
      while (i < b.length && i <= 4) {
        const c = b.charCodeAt(i)
        len += (c & 127) * mul
        mul *= 128
        i++
        if ((c & 128) === 0) {
          done = true
          break
        }
      }
      if (!done) {
        if (i > 4) throw new Error('MQTT: bad remaining length')
        return false
      }
      if (len > this.maxPacket) throw new Error('MQTT: packet of ' + len + ' bytes exceeds ' + this.maxPacket)
      if (b.length < i + len) return false
      const first = b.charCodeAt(0)
      const body = b.substr(i, len)
      this.buf = b.substr(i + len)
      onPacket({ type: first >> 4, flags: first & 15, body: body })
    }
    return this.buf.length > 1
  }
}

export function u16At(s: string, i: number): number {
  return (s.charCodeAt(i) << 8) | s.charCodeAt(i + 1)
}

export interface IncomingPublish {
  topic: string
  payload: string
  qos: number
  packetId: number
}

export function decodePublish(p: Packet): IncomingPublish {
  const tlen = u16At(p.body, 0)
  const topic = p.body.substr(2, tlen)
  const qos = (p.flags >> 1) & 3
  let i = 2 + tlen
  let packetId = 0
  if (qos > 0) {
    packetId = u16At(p.body, i)
    i += 2
  }
  return { topic: topic, payload: p.body.substr(i), qos: qos, packetId: packetId }
}
