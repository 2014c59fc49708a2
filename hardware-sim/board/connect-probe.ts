/**
 * A synchronous TCP connect attempt, for the virtual boards' `net.connect()`: Espruino's
 * connect blocks until the TCP attempt ends and throws in the caller's stack frame when it
 * fails (libs/network/socketserver.c, clientRequestConnect), which Node's asynchronous
 * sockets cannot do by themselves.
 *
 * One worker thread per process does the attempts (DNS lookup, then a TCP connect that it
 * closes at once) and reports through a SharedArrayBuffer; the calling thread waits on it
 * with Atomics.wait, for at most `capMs` real ms. A loopback attempt takes well under a
 * millisecond, so a fleet of boards pays next to nothing; the worker is started on first use
 * (tens of ms, once) and never keeps the process alive.
 *
 * Limits: the probe is its own connection (the server sees a connection that closes without
 * data before the board's real one); a host that drops SYNs is given up on after `capMs`,
 * and the board's connect then proceeds as if it were still connecting.
 */
import { Worker } from 'node:worker_threads'

/** How long a board's connect may block the process before it is given up on (real ms). */
export const PROBE_CAP_MS = 1000
/** Extra wait on the first attempt of the process, while the worker starts. */
const WORKER_START_MS = 5000

export type ProbeResult =
  /** The TCP handshake completed (the probe connection is closed again). */
  | { kind: 'connected'; ms: number }
  /** The attempt failed with a socket error: `errno` as Linux/lwIP number it (111 refused, 113 no route). */
  | { kind: 'failed'; errno: number; code: string; ms: number }
  /** The name did not resolve. */
  | { kind: 'dns'; ms: number }
  /** No answer within the cap: still connecting. */
  | { kind: 'timeout'; ms: number }

/** Slots of the shared state: the sequence number answered, the outcome, the errno, the µs it took. */
const SEQ = 0
const KIND = 1
const ERRNO = 2
const MICROS = 3
const KINDS = ['', 'connected', 'failed', 'dns'] as const

/** Socket error codes as numbers (Linux errno, which lwIP shares for these). */
const ERRNOS: Record<string, number> = {
  ECONNREFUSED: 111, EHOSTUNREACH: 113, ENETUNREACH: 101, ETIMEDOUT: 110, ECONNRESET: 104, EADDRNOTAVAIL: 99, ECONNABORTED: 103,
}

// The worker: CommonJS, no imports from this project. An answer for anything but the newest
// request is dropped, so a late answer can never overwrite the one the caller is waiting for.
const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads')
const net = require('node:net')
const dns = require('node:dns')
const state = new Int32Array(workerData.sab)
const errnos = workerData.errnos
let latest = 0
parentPort.on('message', (m) => {
  latest = m.seq
  const t0 = performance.now()
  let answered = false
  const done = (kind, errno) => {
    if (answered) return
    answered = true
    if (m.seq !== latest) return
    state[${KIND}] = kind
    state[${ERRNO}] = errno
    state[${MICROS}] = Math.min(2147483647, Math.round((performance.now() - t0) * 1000))
    Atomics.store(state, ${SEQ}, m.seq)
    Atomics.notify(state, ${SEQ})
  }
  const dial = (ip) => {
    const s = net.connect({ host: ip, port: m.port })
    s.setTimeout(60000, () => s.destroy())
    s.once('connect', () => { s.destroy(); done(1, 0) })
    s.once('error', (e) => {
      s.destroy()
      done(2, errnos[e.code] !== undefined ? errnos[e.code] : (typeof e.errno === 'number' ? Math.abs(e.errno) : 0))
    })
  }
  if (net.isIPv4(m.host)) dial(m.host)
  else dns.lookup(m.host, { family: 4 }, (err, addr) => (err ? done(3, 0) : dial(addr)))
})
`

let worker: Worker | null = null
let state: Int32Array | null = null
let seq = 0
let started = false

function ensureWorker(): { worker: Worker; state: Int32Array } {
  if (!worker || !state) {
    const sab = new SharedArrayBuffer(4 * 4)
    state = new Int32Array(sab)
    const w = new Worker(WORKER_CODE, { eval: true, workerData: { sab, errnos: ERRNOS } })
    w.unref()
    // A worker that dies is replaced on the next attempt; until then attempts time out.
    w.on('error', () => {
      if (worker === w) worker = null
    })
    w.on('exit', () => {
      if (worker === w) worker = null
    })
    worker = w
    started = false
  }
  return { worker, state }
}

/**
 * Attempts a TCP connection to `host:port` (an IPv4 address, or a name resolved to one, as
 * Espruino's gethostbyname does) and waits for the outcome, at most `capMs` real ms.
 */
export function probeConnect(host: string, port: number, capMs = PROBE_CAP_MS): ProbeResult {
  if (typeof host !== 'string' || host.length === 0) throw new TypeError(`expected a host name, got ${JSON.stringify(host)}`)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`expected a port 0..65535, got ${port}`)
  const w = ensureWorker()
  seq = seq >= 0x7ffffff0 ? 1 : seq + 1
  const my = seq
  const t0 = performance.now()
  const deadline = t0 + capMs + (started ? 0 : WORKER_START_MS)
  started = true
  w.worker.postMessage({ seq: my, host, port })
  for (;;) {
    const cur = Atomics.load(w.state, SEQ)
    if (cur === my) break
    const left = deadline - performance.now()
    if (left <= 0) return { kind: 'timeout', ms: Math.min(capMs, performance.now() - t0) }
    Atomics.wait(w.state, SEQ, cur, left)
  }
  const ms = w.state[MICROS]! / 1000
  const kind = KINDS[w.state[KIND]!]
  if (kind === 'connected') return { kind, ms }
  if (kind === 'dns') return { kind, ms }
  const errno = w.state[ERRNO]!
  const code = Object.keys(ERRNOS).find((k) => ERRNOS[k] === errno) ?? `errno ${errno}`
  return { kind: 'failed', errno, code, ms }
}
