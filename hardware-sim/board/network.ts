/**
 * The board's network: `require("Wifi")` (join/leave with events, on the
 * virtual clock) and `require("net")`/`require("tls")` sockets that are real
 * TCP connections from this process. Socket data reaches the firmware as
 * binary strings, as Espruino delivers it.
 *
 * `connect()` behaves as Espruino 2v29's does (libs/network/socketserver.c,
 * clientRequestConnect; libs/network/esp32/network_esp32.c): it resolves the
 * host and makes a blocking TCP connect, so it returns only once the attempt
 * ended (the virtual clock is charged the time it took) and a failure is an
 * exception in the caller's stack frame: `InternalError: Unable to locate
 * host` when the name does not resolve, `ERROR: Connect failed (err N)` on
 * the console then `InternalError: Unable to create socket` when the
 * connection is refused or has no route. connect-probe.ts makes the attempt
 * synchronous. The ESP32 port leaves the network "online" when WiFi is down
 * (jswrap_esp32_network.c sets NETWORKSTATE_ONLINE once at init), so lwIP
 * answers a connect without a link with "no route" (err 113) and a name
 * lookup fails.
 */
import net from 'node:net'
import tls from 'node:tls'
import type { VarCounter } from './memory.ts'
import type { JsEmitter } from './sandbox.ts'
import { probeConnect } from './connect-probe.ts'

/** The most a completed or refused TCP connect blocks the board (a WiFi LAN's round trips plus lwIP), ms. */
export const LAN_CONNECT_MS = 20

/** errno lwIP gives a connect with no interface up (ERR_RTE -> EHOSTUNREACH). */
const NO_ROUTE = 113

export interface WifiOptions {
  /** SSID the access point advertises; undefined accepts any. */
  ssid?: string
  /** Password it expects; undefined accepts any. */
  password?: string
  /** Virtual ms an association takes (default 1,500). */
  connectMs?: number
  /** IP the board reports (default 192.168.4.2). */
  ip?: string
}

/** What network.ts needs from the board (kept narrow so it is testable and the board stays in charge of callbacks). */
export interface NetHost {
  readonly now: number
  queueIo(fn: () => void): void
  hostTimer(ms: number, fn: () => void): number
  cancelHostTimer(id: number): void
  callback(fn: unknown, args?: unknown[], thisArg?: unknown): void
  emitOn(target: JsEmitter, ev: string, ...args: unknown[]): void
  newEmitter(): JsEmitter
  jsError(message: string): Error
  jsObject(props: Record<string, unknown>): Record<string, unknown>
  /** The interpreter was blocked for `ms` real ms inside the current callback (virtual time moves on). */
  chargeTime(ms: number): void
  /** Data a socket holds until it is sent (may interrupt the callback: out of memory). */
  allocString(len: number, flat: boolean): void
  readonly console: { write(line: string): void }
}

interface Sock {
  js: JsEmitter
  node: net.Socket | null
  connecting: boolean
  closed: boolean
  /** Received and not yet handed to the firmware: one 'data' event takes all of it. */
  rx: string
}

export class BoardNetwork {
  private state: 'off' | 'connecting' | 'connected' = 'off'
  private wantConnected = false
  private ssid = ''
  private password = ''
  private downUntil = -1
  private connectTimer = -1
  private wifi: JsEmitter | null = null
  private sockets = new Set<Sock>()
  private lastIo = 0

  constructor(private readonly host: NetHost, private readonly opts: WifiOptions = {}) {}

  /** True while real I/O is in flight (connecting, or traffic in the last 50 real ms): run() must not jump ahead. */
  busy(): boolean {
    for (const s of this.sockets) if (s.connecting) return true
    return this.sockets.size > 0 && performance.now() - this.lastIo < 50
  }

  /** Estimated JsVars the network objects hold (sockets and their listeners). */
  vars(c: VarCounter): number {
    let n = 0
    if (this.wifi) n += c.object(this.wifi)
    for (const s of this.sockets) n += c.object(s.js)
    return n
  }

  /** A new interpreter: forget the JS objects; the radio and the link stay up like on a real reset. */
  reset(): void {
    for (const s of this.sockets) this.closeSock(s, false)
    this.sockets.clear()
    this.wifi = null
    // An association under way dies with the interpreter (its timer is cleared with the
    // others); left 'connecting', every later Wifi.connect() would wait for it forever.
    if (this.state === 'connecting') {
      this.cancelAssociation()
      this.state = 'off'
    }
  }

  shutdown(): void {
    this.reset()
    this.cancelAssociation()
    this.state = 'off'
  }

  get connected(): boolean {
    return this.state === 'connected'
  }

  /** Fault: the link drops now; the ESP32 port reconnects on its own once the AP is back after `ms`. */
  drop(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`expected ms >= 0, got ${ms}`)
    this.downUntil = this.host.now + ms
    const was = this.linkDown()
    if (was === 'connected' && this.wifi) this.host.emitOn(this.wifi, 'disconnected', this.host.jsObject({ reason: 'beacon_timeout' }))
    if (this.wantConnected) this.host.hostTimer(ms, () => this.associate(null))
  }

  /** The link goes (fault or disconnect()): an association under way stops, sockets close. Returns the state before. */
  private linkDown(): 'off' | 'connecting' | 'connected' {
    const was = this.state
    this.state = 'off'
    this.cancelAssociation()
    for (const s of [...this.sockets]) this.closeSock(s, true)
    return was
  }

  private cancelAssociation(): void {
    if (this.connectTimer >= 0) this.host.cancelHostTimer(this.connectTimer)
    this.connectTimer = -1
  }

  private accepts(ssid: string, password: string): boolean {
    return (this.opts.ssid === undefined || this.opts.ssid === ssid) && (this.opts.password === undefined || this.opts.password === password)
  }

  private associate(cb: unknown): void {
    if (this.state === 'connecting') return
    this.state = 'connecting'
    this.connectTimer = this.host.hostTimer(this.opts.connectMs ?? 1500, () => {
      this.connectTimer = -1
      if (this.host.now < this.downUntil) {
        this.state = 'off'
        if (cb) this.host.callback(cb, ['Connection failed'])
        return
      }
      if (!this.accepts(this.ssid, this.password)) {
        this.state = 'off'
        this.wantConnected = false
        if (cb) this.host.callback(cb, ['auth_fail'])
        if (this.wifi) this.host.emitOn(this.wifi, 'disconnected', this.host.jsObject({ reason: 'auth_fail' }))
        return
      }
      this.state = 'connected'
      if (cb) this.host.callback(cb, [null])
      if (this.wifi) this.host.emitOn(this.wifi, 'connected', this.ipInfo())
    })
  }

  private ipInfo(): Record<string, unknown> {
    return this.host.jsObject({ ip: this.opts.ip ?? '192.168.4.2', netmask: '255.255.255.0', gw: '192.168.4.1', mac: '24:0a:c4:00:00:01' })
  }

  wifiModule(): unknown {
    const w = this.host.newEmitter()
    this.wifi = w
    w.connect = (ssid: unknown, options?: { password?: unknown }, cb?: unknown) => {
      if (typeof options === 'function') {
        cb = options
        options = {}
      }
      this.ssid = String(ssid)
      this.password = options?.password === undefined ? '' : String(options.password)
      this.wantConnected = true
      if (this.state === 'connected') {
        if (cb) this.host.hostTimer(0, () => this.host.callback(cb, [null]))
        return
      }
      this.associate(cb ?? null)
    }
    w.disconnect = (cb?: unknown) => {
      this.wantConnected = false
      const was = this.linkDown()
      this.host.hostTimer(0, () => {
        if (was === 'connected' && this.wifi) this.host.emitOn(this.wifi, 'disconnected', this.host.jsObject({ reason: 'assoc_leave' }))
        if (cb) this.host.callback(cb)
      })
    }
    w.getIP = (cb?: unknown) => {
      const info = this.state === 'connected' ? this.ipInfo() : this.host.jsObject({ ip: '0.0.0.0', netmask: '0.0.0.0', gw: '0.0.0.0', mac: '24:0a:c4:00:00:01' })
      if (cb) this.host.hostTimer(0, () => this.host.callback(cb, [null, info]))
      return info
    }
    w.getStatus = () => this.host.jsObject({ station: this.state === 'connected' ? 'connected' : this.state === 'connecting' ? 'connecting' : 'off' })
    w.setHostname = () => undefined
    return w
  }

  /** An InternalError of the interpreter's realm, as jsExceptionHere(JSET_INTERNALERROR, ...) throws. */
  private internalError(message: string): Error {
    const e = this.host.jsError(message)
    e.name = 'InternalError'
    return e
  }

  /**
   * The blocking part of Espruino's connect: resolve, then the TCP handshake. Throws what
   * Espruino throws; returns normally when the connection was made (or is still being made
   * when the attempt outlived the probe's cap).
   */
  private blockingConnect(hostName: string, port: number): void {
    if (this.state !== 'connected') {
      if (!net.isIPv4(hostName)) throw this.internalError('Unable to locate host')
      this.host.console.write(`ERROR: Connect failed (err ${NO_ROUTE})`)
      throw this.internalError('Unable to create socket')
    }
    const r = probeConnect(hostName, port)
    // A handshake that completed or was refused took the network a few ms; what the probe
    // measured beyond that is this host being busy (its worker thread waiting for a core), which
    // a board on a WiFi LAN does not pay. A host that does not answer keeps its full time.
    this.host.chargeTime(r.kind === 'timeout' ? r.ms : Math.min(r.ms, LAN_CONNECT_MS))
    if (r.kind === 'dns') throw this.internalError('Unable to locate host')
    if (r.kind === 'failed') {
      this.host.console.write(`ERROR: Connect failed (err ${r.errno})`)
      throw this.internalError('Unable to create socket')
    }
  }

  netModule(secure: boolean): unknown {
    const m = this.host.jsObject({})
    m.connect = (options: Record<string, unknown>, cb?: unknown) => {
      if (!options || typeof options !== 'object') throw this.host.jsError(`expected connect options {host, port}, got ${typeof options}`)
      const hostName = String(options.host ?? 'localhost')
      // Port 0 or none: 80, or 443 for TLS (clientRequestConnect).
      const port = Number(options.port) || (secure ? 443 : 80)
      this.blockingConnect(hostName, port)
      const js = this.host.newEmitter()
      const s: Sock = { js, node: null, connecting: true, closed: false, rx: '' }
      this.sockets.add(s)
      js.write = (data: unknown) => {
        if (!s.node || s.closed) return false
        const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : Buffer.from(toByteArray(data))
        // Espruino appends what is written to the socket's send string until the stack takes it.
        this.host.allocString(bytes.length, false)
        this.lastIo = performance.now()
        s.node.write(bytes)
        return true
      }
      js.end = (data?: unknown) => {
        if (data !== undefined) (js.write as (d: unknown) => void)(data)
        s.node?.end()
      }
      js.destroy = () => this.closeSock(s, true)
      this.lastIo = performance.now()
      const sock = secure
        ? tls.connect({ host: hostName, port, ca: options.ca as string | undefined, rejectUnauthorized: options.ca !== undefined, servername: net.isIP(hostName) ? undefined : hostName })
        : net.connect({ host: hostName, port })
      s.node = sock
      sock.on(secure ? 'secureConnect' : 'connect', () => {
        this.host.queueIo(() => {
          s.connecting = false
          if (s.closed) return
          if (cb) this.host.callback(cb, [js])
          this.host.emitOn(js, 'connect')
        })
      })
      sock.on('data', (d: Buffer) => {
        this.lastIo = performance.now()
        // Espruino polls each socket once per pass of its idle loop and hands over everything
        // received since in one 'data' event, with the timers checked between passes: chunks
        // that arrive before the board gets to them are one event, not a run of callbacks back
        // to back (which, at a charged cost, would hold the drain timer up).
        const first = s.rx === ''
        s.rx += d.toString('latin1')
        if (!first) return
        this.host.queueIo(() => {
          const str = s.rx
          s.rx = ''
          if (!s.closed && str !== '') this.host.emitOn(js, 'data', str)
        })
      })
      sock.on('error', (e: Error) => {
        this.host.queueIo(() => {
          s.connecting = false
          if (!s.closed) this.host.emitOn(js, 'error', this.host.jsObject({ code: -1, message: e.message }))
        })
      })
      sock.on('close', () => {
        this.host.queueIo(() => {
          s.connecting = false
          this.closeSock(s, true)
        })
      })
      return js
    }
    return m
  }

  private closeSock(s: Sock, emit: boolean): void {
    if (s.closed) return
    s.closed = true
    s.connecting = false
    this.sockets.delete(s)
    if (s.node && !s.node.destroyed) s.node.destroy()
    if (emit) this.host.emitOn(s.js, 'close', false)
  }
}

function toByteArray(v: unknown): number[] {
  const out: number[] = []
  if (ArrayBuffer.isView(v)) {
    const a = v as unknown as ArrayLike<number>
    for (let i = 0; i < a.length; i++) out.push(Number(a[i]) & 0xff)
  } else if (Array.isArray(v)) for (const x of v) out.push(Number(x) & 0xff)
  else if (Object.prototype.toString.call(v) === '[object ArrayBuffer]') out.push(...new Uint8Array(v as ArrayBuffer))
  else out.push(...Buffer.from(String(v), 'latin1'))
  return out
}
