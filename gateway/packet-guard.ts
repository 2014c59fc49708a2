/**
 * A byte-level guard in front of Aedes: reads each MQTT fixed header (type byte +
 * Remaining Length varint, MQTT 3.1.1 §2.2.3) and destroys the connection as soon
 * as a packet announces more than `maxBytes`, before any of its body is buffered.
 * mqtt-packet has no such limit: without this a client could announce 256 MB and
 * make the broker hold it all in memory.
 */
import { Duplex } from 'node:stream'

export class PacketTooLarge extends Error {
  override name = 'PacketTooLarge'
}

/** Incremental scanner over a byte stream of MQTT packets; `feed` returns false when a packet is too large. */
export class MqttSizeScanner {
  private state: 'header' | 'length' | 'body' = 'header'
  private len = 0
  private mul = 1
  private lenBytes = 0
  private remaining = 0
  lastAnnounced = 0
  constructor(readonly maxBytes: number) {}

  /** True between a packet's first byte and its last. */
  get inPacket(): boolean {
    return this.state !== 'header'
  }

  feed(chunk: Uint8Array): boolean {
    let i = 0
    while (i < chunk.length) {
      if (this.state === 'body') {
        const n = Math.min(this.remaining, chunk.length - i)
        this.remaining -= n
        i += n
        if (this.remaining === 0) this.state = 'header'
      } else if (this.state === 'header') {
        i++
        this.state = 'length'
        this.len = 0
        this.mul = 1
        this.lenBytes = 0
      } else {
        const b = chunk[i++]!
        this.len += (b & 0x7f) * this.mul
        this.mul *= 128
        this.lenBytes++
        if (this.lenBytes > 4) return false // malformed Remaining Length [MQTT-2.2.3]
        if (b < 128) {
          this.lastAnnounced = this.len
          if (1 + this.lenBytes + this.len > this.maxBytes) return false
          this.remaining = this.len
          this.state = this.len === 0 ? 'header' : 'body'
        }
      }
    }
    return true
  }
}

interface Transport extends Duplex {
  remoteAddress?: string
  remotePort?: number
}

/** Wraps a socket (or WebSocket stream) so Aedes reads only through the scanner. */
/**
 * `packetTimeoutMs`: a packet must arrive whole within this time of its first byte, or the
 * connection is dropped (`onSlow`): a client trickling a PUBLISH at a byte a second would
 * otherwise hold its connection, and the buffer Aedes keeps for it, forever.
 */
export function guardConnection(
  inner: Transport,
  maxBytes: number,
  onReject: (announced: number) => void,
  slow?: { packetTimeoutMs: number; onSlow: () => void },
): Duplex & { remoteAddress?: string; remotePort?: number } {
  const scanner = new MqttSizeScanner(maxBytes)
  let deadline: NodeJS.Timeout | undefined
  const stopDeadline = () => {
    if (deadline) clearTimeout(deadline)
    deadline = undefined
  }
  const outer = new Duplex({
    read() {
      inner.resume()
    },
    write(chunk, _enc, cb) {
      if (inner.destroyed) return cb()
      if (inner.write(chunk)) cb()
      else inner.once('drain', () => cb())
    },
    // mqtt-packet corks the stream and writes each packet in pieces (header, length,
    // body): without writev every piece became its own syscall on the socket.
    writev(chunks, cb) {
      if (inner.destroyed) return cb()
      const buf = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk as Buffer))
      if (inner.write(buf)) cb()
      else inner.once('drain', () => cb())
    },
    final(cb) {
      inner.end()
      cb()
    },
    destroy(err, cb) {
      inner.destroy()
      cb(err)
    },
  }) as Duplex & { remoteAddress?: string; remotePort?: number }
  outer.remoteAddress = inner.remoteAddress
  outer.remotePort = inner.remotePort
  inner.on('data', (chunk: Buffer) => {
    if (!scanner.feed(chunk)) {
      stopDeadline()
      onReject(scanner.lastAnnounced)
      inner.destroy()
      outer.destroy()
      return
    }
    if (slow) {
      // Timed from a packet's first byte, not reset by each byte that trickles in.
      if (!scanner.inPacket) stopDeadline()
      else if (!deadline) {
        deadline = setTimeout(() => {
          slow.onSlow()
          inner.destroy()
          outer.destroy()
        }, slow.packetTimeoutMs)
        deadline.unref()
      }
    }
    if (!outer.push(chunk)) inner.pause()
  })
  inner.on('end', () => outer.push(null))
  inner.on('close', () => {
    stopDeadline()
    outer.destroy()
  })
  inner.on('error', () => outer.destroy())
  return outer
}
