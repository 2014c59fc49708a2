/**
 * A deliberately dumb MQTT 3.1.1 client on a raw socket, for the behaviours a
 * well-behaved client library will not produce: a client that stops talking
 * (keepalive expiry), never acknowledges (redelivery), sends CONNECT twice,
 * a wrong protocol name, an empty client ID with a persistent session, or a PUBLISH
 * before CONNECT. Encodes only CONNECT/SUBSCRIBE/PUBLISH (QoS 0); splits incoming bytes
 * into packets.
 */
import { connect as netConnect, type Socket } from 'node:net'

function remainingLength(n: number): Buffer {
  const out: number[] = []
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    out.push(b)
  } while (n > 0)
  return Buffer.from(out)
}

const str = (s: string | Buffer): Buffer => {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s
  const len = Buffer.alloc(2)
  len.writeUInt16BE(b.length)
  return Buffer.concat([len, b])
}

const packet = (first: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([first]), remainingLength(body.length), body])

export interface ConnectOpts {
  clientId: string
  clean: boolean
  keepalive?: number
  protocolName?: string
  will?: { topic: string; payload: Buffer; qos?: 0 | 1 | 2 }
}

export function connectPacket(o: ConnectOpts): Buffer {
  let flags = o.clean ? 0x02 : 0
  if (o.will) flags |= 0x04 | ((o.will.qos ?? 0) << 3)
  const ka = Buffer.alloc(2)
  ka.writeUInt16BE(o.keepalive ?? 60)
  const parts = [str(o.protocolName ?? 'MQTT'), Buffer.from([4, flags]), ka, str(o.clientId)]
  if (o.will) parts.push(str(o.will.topic), str(o.will.payload))
  return packet(0x10, Buffer.concat(parts))
}

export function subscribePacket(id: number, filter: string, qos: 0 | 1 | 2): Buffer {
  const mid = Buffer.alloc(2)
  mid.writeUInt16BE(id)
  return packet(0x82, Buffer.concat([mid, str(filter), Buffer.from([qos])]))
}

/** A QoS 0 PUBLISH (no packet ID). */
export function publishPacket(topic: string, payload: Buffer): Buffer {
  return packet(0x30, Buffer.concat([str(topic), payload]))
}

export interface RawPacket {
  type: number
  flags: number
  body: Buffer
}

export class RawClient {
  readonly packets: RawPacket[] = []
  closed = false
  private buf = Buffer.alloc(0)
  private waiters: Array<() => void> = []

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d])
      this.split()
      this.wake()
    })
    socket.on('close', () => {
      this.closed = true
      this.wake()
    })
    socket.on('error', () => {})
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = netConnect(port, '127.0.0.1', () => resolve(new RawClient(s)))
      s.once('error', reject)
    })
  }

  send(b: Buffer): void {
    this.socket.write(b)
  }

  /** Resolves when `pred` holds (checked on every packet and on close), rejects after `ms`. */
  until(pred: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)
      const check = () => {
        if (!pred()) return false
        clearTimeout(timer)
        resolve()
        return true
      }
      if (check()) return
      const w = () => {
        if (!check()) this.waiters.push(w)
      }
      this.waiters.push(w)
    })
  }

  ofType(type: number): RawPacket[] {
    return this.packets.filter((p) => p.type === type)
  }

  destroy(): void {
    this.socket.destroy()
  }

  private wake(): void {
    const ws = this.waiters
    this.waiters = []
    for (const w of ws) w()
  }

  private split(): void {
    for (;;) {
      if (this.buf.length < 2) return
      let len = 0
      let mul = 1
      let i = 1
      for (;;) {
        if (i >= this.buf.length) return
        const b = this.buf[i++]!
        len += (b & 0x7f) * mul
        mul *= 128
        if (b < 128) break
      }
      if (this.buf.length < i + len) return
      this.packets.push({ type: this.buf[0]! >> 4, flags: this.buf[0]! & 0x0f, body: this.buf.subarray(i, i + len) })
      this.buf = this.buf.subarray(i + len)
    }
  }
}

export const CONNACK = 2
export const PUBLISH = 3
export const SUBACK = 9
