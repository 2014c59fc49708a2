/**
 * A small MQTT 3.1.1 client for Espruino: QoS 1 PUBLISH with PUBACK tracking and DUP
 * retransmission after reconnect (clean session false, 4.4), one SUBSCRIBE, keep-alive,
 * reconnect with exponential backoff plus a jitter derived from the device ID (Math.random
 * repeats after every boot on the ESP32, so it cannot spread a fleet's reconnects).
 *
 * Transport is injected: `dial(onOpen)` returns an Espruino-style socket (binary strings),
 * so Node tests can run it against a real broker over real sockets.
 */
import {
  CONNACK, PINGRESP, PUBACK, PUBLISH, SUBACK,
  PacketReader, decodePublish, encodeConnect, encodeDisconnect, encodePingreq, encodePuback,
  encodePublish, encodeSubscribe, u16At, type Packet,
} from './mqtt-codec.ts'

export interface Socket {
  write(data: string): unknown
  end(): void
  on(event: string, cb: (arg?: any) => void): void
}

export interface MqttOptions {
  clientId: string
  /** Asked before every CONNECT: a fresh proof of key possession (binary string). May be asynchronous. */
  credentials: (cb: (username: string, password: string) => void) => void
  dial: (onOpen: () => void) => Socket
  keepAliveS: number
  subscribe?: string
  will?: { topic: string; payload: string; qos: number; retain: boolean }
  /** Backoff: first delay, cap (ms). */
  backoffMinMs: number
  backoffMaxMs: number
  /** Max bytes of one incoming packet. */
  maxPacket: number
  /**
   * An attempt (credentials, dial, CONNECT) without a CONNACK after this long is given up and
   * retried with the backoff: a gateway that accepts TCP and never answers, or a credentials
   * callback that never ran (out of memory). Default 20,000 ms. Enforced by check().
   */
  connectTimeoutMs?: number
  /**
   * A publish without its PUBACK after this long ends the connection, so the reconnect sends it
   * again (4.4): the PUBACK may have been in data a callback lost (out of memory). Default
   * 1.5 keep-alives. Enforced by check().
   */
  ackTimeoutMs?: number
  onConnect?: () => void
  onClose?: (reason: string) => void
  onMessage?: (topic: string, payload: string) => void
  onAck?: (packetId: number) => void
  log?: (msg: string) => void
}

interface Inflight {
  topic: string
  payload: string
  /** Board time it was last sent. */
  at: number
}

/** Small deterministic hash of the device ID (FNV-1a), the seed of the reconnect jitter. */
export function idSeed(id: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < id.length; i++) {
    h = (h ^ id.charCodeAt(i)) >>> 0
    // h * 16777619 mod 2^32 without Math.imul (absent on Espruino): 16777619 = 2^24 + 403,
    // and h * 2^24 mod 2^32 = (h mod 256) * 2^24; every product stays below 2^53.
    h = (h * 403 + (h % 256) * 16777216) % 4294967296
  }
  // Kept below 2^31 so later bitwise steps never see a double above int32 range.
  return h % 2147483648
}

/** Reconnect delay for attempt n (0-based): min(max, min*2^n) plus up to 50% jitter from the seed. */
export function backoffDelay(attempt: number, seed: number, minMs: number, maxMs: number): number {
  let d = minMs
  for (let i = 0; i < attempt && d < maxMs; i++) d *= 2
  if (d > maxMs) d = maxMs
  // xorshift32 step mixes the attempt into the seed: same device, different attempts differ;
  // different devices, same attempt differ.
  let x = (seed ^ (((attempt + 1) * 0x9e37) % 2147483648)) >>> 0
  x ^= x << 13
  x >>>= 0
  x ^= x >>> 17
  x ^= x << 5
  x >>>= 0
  return Math.floor(d + (x % 1000) / 1000 * d * 0.5)
}

export class MqttClient {
  o: MqttOptions
  sock: Socket | null
  reader: PacketReader
  connected: boolean
  stopped: boolean
  nextId: number
  inflight: { [id: string]: Inflight }
  inflightCount: number
  attempt: number
  seed: number
  pingTimer: any
  retryTimer: any
  lastRx: number
  lastTx: number
  /** Board time (Date.now) an attempt began, 0 when none is in progress; when the retry is due. */
  openedAt: number
  retryAt: number
  attemptId: number
  /** Counters for the status report: dialErrors = connects that threw (refused, DNS); stalls = timers and attempts check() had to replace. */
  stats: { connects: number; publishes: number; acks: number; retransmits: number; drops: number; dialErrors: number; stalls: number; writeErrors: number }

  constructor(o: MqttOptions) {
    this.o = o
    this.sock = null
    this.reader = new PacketReader(o.maxPacket)
    this.connected = false
    this.stopped = false
    this.nextId = 1
    this.inflight = {}
    this.inflightCount = 0
    this.attempt = 0
    this.seed = idSeed(o.clientId)
    this.pingTimer = undefined
    this.retryTimer = undefined
    this.lastRx = 0
    this.lastTx = 0
    this.openedAt = 0
    this.retryAt = 0
    this.attemptId = 0
    this.stats = { connects: 0, publishes: 0, acks: 0, retransmits: 0, drops: 0, dialErrors: 0, stalls: 0, writeErrors: 0 }
  }

  log(m: string): void {
    if (this.o.log) this.o.log(m)
  }

  start(): void {
    this.stopped = false
    this.open()
  }

  open(): void {
    const self = this
    this.retryTimer = undefined
    this.openedAt = Date.now()
    this.reader = new PacketReader(this.o.maxPacket)
    let sock: Socket
    let closed = false
    const onClose = function (reason: string) {
      if (closed) return
      closed = true
      self.closed(sock, reason)
    }
    const attempt = ++this.attemptId
    this.o.credentials(function (username, password) {
      // Stopped, or this attempt was given up (check()) and a newer one owns the client.
      if (self.stopped || attempt !== self.attemptId) return
      try {
        sock = self.o.dial(function () {
          self.send(encodeConnect({
            clientId: self.o.clientId, username: username, password: password,
            keepAliveS: self.o.keepAliveS, cleanSession: false, will: self.o.will,
          }))
        })
      } catch (e) {
        // Espruino's connect throws at once when the port refuses or DNS fails (issue 12).
        self.stats.dialErrors++
        self.openedAt = 0
        self.scheduleRetry('dial failed: ' + e)
        return
      }
      self.sock = sock
      // One packet per callback, the rest in callbacks of their own: after a reconnect the
      // PUBACKs of a backlog arrive together, and each one's work (flash ring, next publish)
      // in one callback held the sensors' drain up past the FIFO's slack at the high cost.
      const rx = function (d: string) {
        // A socket given up by check() may still deliver (a late CONNACK): it is not ours any
        // more, and its data says nothing about the live link.
        if (sock !== self.sock) return
        self.lastRx = Date.now()
        try {
          if (self.reader.push(d, function (p) { self.handle(p) }, 1)) setTimeout(function () { rx('') }, 0)
        } catch (e) {
          self.log('mqtt: ' + e)
          sock.end()
          onClose('protocol error')
        }
      }
      sock.on('data', rx)
      sock.on('close', function () { onClose('closed') })
      sock.on('end', function () { onClose('ended') })
      sock.on('error', function (e: any) { onClose('error ' + (e && e.message ? e.message : e)) })
    })
  }

  send(s: string): void {
    const sock = this.sock
    if (!sock) return
    this.lastTx = Date.now()
    try {
      sock.write(s)
    } catch (e) {
      // The link went away under the write (WiFi dropped mid-publish): close and retry; the
      // message stays in flight and is resent after the reconnect.
      this.stats.writeErrors++
      try { sock.end() } catch (e2) { /* already closed */ }
      this.closed(sock, 'write failed: ' + e)
    }
  }

  handle(p: Packet): void {
    if (p.type === CONNACK) {
      const rc = p.body.charCodeAt(1)
      if (rc !== 0) {
        this.log('mqtt: CONNACK refused, code ' + rc)
        if (this.sock) this.sock.end()
        return
      }
      this.connected = true
      this.openedAt = 0
      this.attempt = 0
      this.stats.connects++
      this.startPing()
      // Subscribe even when the broker kept the session: it costs one packet and covers a
      // broker that lost its persistence.
      if (this.o.subscribe) this.send(encodeSubscribe(this.takeId(), this.o.subscribe, 1))
      // 4.4: on reconnect with clean session 0, resend unacknowledged PUBLISH with DUP set,
      // in the original order (packet IDs increase, wrapping is handled by the order of keys).
      const ids = Object.keys(this.inflight)
      for (let i = 0; i < ids.length; i++) {
        const f = this.inflight[ids[i]]
        f.at = Date.now()
        this.stats.retransmits++
        this.send(encodePublish(f.topic, f.payload, 1, Number(ids[i]), true))
      }
      if (this.o.onConnect) this.o.onConnect()
    } else if (p.type === PUBACK) {
      const id = u16At(p.body, 0)
      if (this.inflight[id] !== undefined) {
        delete this.inflight[id]
        this.inflightCount--
        this.stats.acks++
        if (this.o.onAck) this.o.onAck(id)
      }
    } else if (p.type === PUBLISH) {
      const m = decodePublish(p)
      if (m.qos === 1) this.send(encodePuback(m.packetId))
      if (this.o.onMessage) this.o.onMessage(m.topic, m.payload)
    } else if (p.type === SUBACK || p.type === PINGRESP) {
      // Nothing to do: lastRx already proves the link is alive.
    }
  }

  takeId(): number {
    // Skip IDs still in flight; 0 is not a valid packet identifier (2.3.1).
    for (let n = 0; n < 65535; n++) {
      const id = this.nextId
      this.nextId = this.nextId >= 65535 ? 1 : this.nextId + 1
      if (this.inflight[id] === undefined) return id
    }
    throw new Error('MQTT: no packet id')
  }

  /**
   * QoS 1 publish. Returns the packet ID; the message stays in flight (and is retransmitted
   * with DUP after a reconnect) until its PUBACK, reported through onAck. Only while connected.
   */
  publish(topic: string, payload: string): number {
    if (!this.connected) throw new Error('MQTT: offline')
    const id = this.takeId()
    this.inflight[id] = { topic: topic, payload: payload, at: Date.now() }
    this.inflightCount++
    this.stats.publishes++
    this.send(encodePublish(topic, payload, 1, id, false))
    return id
  }

  /** Drops a message from the retransmit list (its data now lives elsewhere, e.g. in flash). */
  forget(id: number): void {
    if (this.inflight[id] !== undefined) {
      delete this.inflight[id]
      this.inflightCount--
    }
  }

  startPing(): void {
    const self = this
    this.stopPing()
    const ka = this.o.keepAliveS * 1000
    // Check at a quarter of the keep-alive: PINGREQ after half of it without traffic
    // (3.1.2.10 only requires one within the interval); give up after 1.5x without a reply.
    this.pingTimer = setInterval(function () {
      const now = Date.now()
      if (now - self.lastRx > ka * 1.5) {
        self.log('mqtt: keep-alive timeout')
        if (self.sock) self.sock.end()
        self.closed(self.sock, 'keep-alive timeout')
        return
      }
      if (now - self.lastTx >= ka / 2) self.send(encodePingreq())
    }, ka / 4)
  }

  stopPing(): void {
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer)
    this.pingTimer = undefined
  }

  closed(sock: Socket | null, reason: string): void {
    if (sock !== this.sock) return
    this.sock = null
    this.openedAt = 0
    const was = this.connected
    this.connected = false
    this.stopPing()
    if (was && this.o.onClose) this.o.onClose(reason)
    this.scheduleRetry(reason)
  }

  scheduleRetry(reason: string): void {
    if (this.stopped || this.retryTimer !== undefined) return
    const self = this
    const d = backoffDelay(this.attempt, this.seed, this.o.backoffMinMs, this.o.backoffMaxMs)
    this.attempt++
    this.log('mqtt: ' + reason + ', retry in ' + d + ' ms')
    this.retryAt = Date.now() + d
    this.retryTimer = setTimeout(function () { self.open() }, d)
  }

  /**
   * Deadlines that no callback of the client's own can enforce (it may be the one that never
   * ran): an attempt without a CONNACK after connectTimeoutMs is ended and retried; a retry
   * timer whose callback did not run within 5 s of its time is replaced; a publish
   * unacknowledged for ackTimeoutMs ends the connection (the reconnect sends it again). Returns whether it had to
   * (called by the firmware's watchdog).
   */
  check(): boolean {
    if (this.stopped) return false
    const now = Date.now()
    if (this.connected) {
      const ackLimit = this.o.ackTimeoutMs || this.o.keepAliveS * 1500
      const ids = Object.keys(this.inflight)
      for (let i = 0; i < ids.length; i++) {
        if (now - this.inflight[ids[i]].at <= ackLimit) continue
        this.stats.stalls++
        const s = this.sock
        try { if (s) s.end() } catch (e) { /* already closed */ }
        this.closed(s, 'no PUBACK')
        return true
      }
      // (A keep-alive interval the interpreter removed needs nothing here: while streaming, the
      // PUBACK deadline notices a dead link; idle, the broker ends it after 1.5 keep-alives and
      // the reconnect starts a new timer.)
      return false
    }
    const limit = this.o.connectTimeoutMs || 20000
    if (this.openedAt > 0 && now - this.openedAt > limit) {
      const s = this.sock
      this.stats.stalls++
      this.openedAt = 0
      this.attemptId++ // a late credentials callback of the given-up attempt dials nothing
      this.sock = null
      if (s) {
        try { s.end() } catch (e) { /* already closed */ }
      }
      this.scheduleRetry('no CONNACK within ' + limit + ' ms')
      return true
    }
    if (this.retryTimer !== undefined && now - this.retryAt > 5000) {
      this.stats.stalls++
      try { clearTimeout(this.retryTimer) } catch (e) { /* already fired */ }
      this.retryTimer = undefined
      this.open()
      return true
    }
    return false
  }

  /**
   * The network came back (WiFi reassociated): a retry scheduled with a long backoff is
   * brought forward to the first step (still jittered, so a ward of boards does not
   * reconnect in the same instant).
   */
  kick(): void {
    if (this.stopped || this.connected || this.retryTimer === undefined) return
    clearTimeout(this.retryTimer)
    this.retryTimer = undefined
    this.attempt = 0
    this.scheduleRetry('network back')
  }

  /** Graceful stop: DISCONNECT (the will is not sent, 3.14.4), no reconnect. */
  stop(): void {
    this.stopped = true
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    this.retryTimer = undefined
    this.stopPing()
    const s = this.sock
    if (s) {
      if (this.connected) s.write(encodeDisconnect())
      this.sock = null
      this.connected = false
      s.end()
    }
  }
}
