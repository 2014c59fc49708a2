/**
 * Microchip ATECC608A secure element over I2C (ATECC508A/608A datasheets):
 *
 * - wake: SDA low for >= 60 us (tWLO); at 100 kHz a write to address 0x00 is eight zero
 *   bits, which is how this driver (and the simulator) wakes the part; after tWHI (1.5 ms)
 *   it answers 04 11 33 43 (count, status 0x11 "after wake", CRC).
 * - command packet, after word address 0x03: count, opcode, param1, param2 (LE), data,
 *   CRC-16 (LE) over count..data. The part NACKs while executing: the driver polls for the
 *   response from the typical time up to the datasheet maximum instead of sleeping the maximum.
 * - word address 0x01 = sleep (TempKey lost), 0x02 = idle (TempKey kept).
 * - the watchdog puts the part to sleep 1.3 s after wake, so every operation starts with a wake.
 *
 * All operations are asynchronous so the sampler's timers keep running while the part
 * computes a signature: after a command the driver waits the command's execution time in one
 * setTimeout, then polls every POLL_MS until the give-up time (never a busy loop; polling every
 * 2 ms from the start cost ~50 callbacks per signature, each a few ms on an ESP32).
 *
 * A session whose callbacks never run (the interpreter abandons a callback when it runs out of
 * memory) would keep the driver busy forever: a session older than SESSION_MAX_MS is
 * abandoned by the next request (counted in `resets`), and whatever the abandoned one does
 * later is ignored (session token).
 *
 * The wake needs SDA low for tWLO >= 60 us: eight zero bits at 100 kHz (80 us), but only 20 us
 * at 400 kHz. A bus run at 400 kHz for the pulse oximeter passes `slowWake`, called with true
 * before the wake write and false after it, to drop the bus to 100 kHz for the pulse.
 */
import { crc16 } from '../crc16.ts'

export interface I2CBus {
  writeTo(address: number, data: number[] | Uint8Array): void
  readFrom(address: number, n: number): Uint8Array
}

export const OP_READ = 0x02
export const OP_NONCE = 0x16
export const OP_LOCK = 0x17
export const OP_RANDOM = 0x1b
export const OP_INFO = 0x30
export const OP_GENKEY = 0x40
export const OP_SIGN = 0x41

/**
 * [first poll ms, give up after ms] per opcode. The first poll comes after the command's
 * execution time for the ATECC608 at its default clock (the table Microchip's CryptoAuthLib
 * uses for the 608, which the simulator's device model follows: hardware-sim/devices/
 * atecc608.ts EXEC_MS): Sign and GenKey 115 ms, Nonce 7, Random 23, Lock 32, Info/Read 1.
 * The part NACKs while it still executes; the driver then polls every POLL_MS until give-up.
 */
const TIMING: { [op: number]: number[] } = {}
TIMING[OP_INFO] = [1, 10]
TIMING[OP_READ] = [1, 10]
TIMING[OP_NONCE] = [7, 30]
TIMING[OP_RANDOM] = [23, 60]
TIMING[OP_LOCK] = [32, 80]
TIMING[OP_GENKEY] = [115, 250]
TIMING[OP_SIGN] = [115, 250]

/** Wake polls, 2 ms apart, before the part is reported absent: longer than its longest command (a busy part NACKs). */
const WAKE_POLLS = 65
/** Polling interval once the execution time has passed, ms. */
export const POLL_MS = 5
/**
 * A session older than this is taken for abandoned (its callbacks never ran). Longer than
 * any legitimate one (wake, Nonce, Sign: about 130 ms; personalisation about 300 ms), and
 * about the part's own watchdog (1.3 s), after which it has gone back to sleep anyway.
 */
export const SESSION_MAX_MS = 1500

const STATUS_TEXT: { [s: number]: string } = {
  1: 'miscompare', 3: 'parse error', 5: 'ECC fault', 7: 'self-test error', 15: 'execution error',
  17: 'after wake', 238: 'watchdog about to expire', 255: 'CRC or communication error',
}

/** Requests that may wait for the part (one signature in progress plus a token and a frame). */
const MAX_QUEUE = 3

export type Done = (err: string | null, data: Uint8Array | null) => void

/** Builds the bytes written for a command: word address 0x03 then the CRC'd packet. */
export function commandBytes(opcode: number, p1: number, p2: number, data: Uint8Array | null): Uint8Array {
  const n = data ? data.length : 0
  const out = new Uint8Array(8 + n)
  out[0] = 0x03
  out[1] = 7 + n // count covers itself, opcode, p1, p2 (2), data, CRC (2)
  out[2] = opcode
  out[3] = p1
  out[4] = p2 & 255
  out[5] = (p2 >> 8) & 255
  if (data) out.set(data, 6)
  const c = crc16(out, 1, 6 + n)
  out[6 + n] = c & 255
  out[7 + n] = c >> 8
  return out
}

/** Checks a response block (count, data, CRC); returns the data, or an error string. */
export function parseResponse(r: Uint8Array | null | undefined, expectData: number): Uint8Array | string {
  if (!r || r.length < 4) return 'no response'
  const count = r[0]
  if (count < 4 || count > r.length) return 'bad response length ' + count
  const c = crc16(r, 0, count - 2)
  if (r[count - 2] !== (c & 255) || r[count - 1] !== (c >> 8)) return 'response CRC mismatch'
  if (count === 4) {
    // A bare status block: success only where a status was all we asked for.
    const s = r[1]
    if (s !== 0) return 'status 0x' + s.toString(16) + ' (' + (STATUS_TEXT[s] || 'unknown') + ')'
    if (expectData > 1) return 'expected ' + expectData + ' data bytes, got a status block'
  }
  return r.subarray(1, count - 2)
}

export class Atecc608 {
  bus: I2CBus
  addr: number
  busy: boolean
  /** Statistics for the status report. */
  signs: number
  errors: number
  /** Sessions abandoned after SESSION_MAX_MS (their callbacks never ran). */
  resets: number
  queue: { steps: (next: Done) => void; cb: Done }[]
  now: () => number
  slowWake: ((slow: boolean) => void) | null
  /** Token of the running session; since: when it started. */
  sid: number
  since: number

  constructor(bus: I2CBus, addr: number, now?: () => number, slowWake?: (slow: boolean) => void) {
    this.bus = bus
    this.addr = addr
    this.busy = false
    this.signs = 0
    this.errors = 0
    this.resets = 0
    this.queue = []
    this.now = now || Date.now
    this.slowWake = slowWake || null
    this.sid = 0
    this.since = 0
  }

  tryWrite(addr: number, data: number[] | Uint8Array): boolean {
    try {
      this.bus.writeTo(addr, data)
      return true
    } catch (e) {
      return false
    }
  }

  tryRead(n: number): Uint8Array | null {
    try {
      const r = this.bus.readFrom(this.addr, n)
      return r && r.length === n ? r : null
    } catch (e) {
      return null
    }
  }

  /**
   * Wake pulse, then poll for the 04 11 33 43 token (tWHI 1.5 ms). A part that answers
   * something else is already awake, holding the answer of a session cut short (the
   * interpreter was reset, or a callback abandoned, mid-command): it is sent to sleep and woken
   * afresh, once. A part still executing such a command NACKs until it is done (Sign: up to
   * 115 ms), so the polls go on that long before the part is reported absent.
   */
  wake(cb: (err: string | null) => void): void {
    const self = this
    let tries = 0
    let again = true
    const pulse = function () {
      if (self.slowWake) self.slowWake(true)
      self.tryWrite(0x00, [0]) // NACKed by design: only the low SDA time matters
      if (self.slowWake) self.slowWake(false)
      setTimeout(poll, 2)
    }
    const poll = function () {
      const r = self.tryRead(4)
      if (r && r[0] === 0x04 && r[1] === 0x11 && r[2] === 0x33 && r[3] === 0x43) return cb(null)
      if (r && again) {
        again = false
        tries = 0
        self.sleep()
        setTimeout(pulse, 1)
        return
      }
      if (++tries > WAKE_POLLS) return cb(r ? 'unexpected wake response' : 'secure element does not answer at 0x' + self.addr.toString(16))
      setTimeout(poll, 2)
    }
    pulse()
  }

  sleep(): void {
    this.tryWrite(this.addr, [0x01])
  }

  /** One command on an awake part: send, poll for the response block, check CRC and status. */
  command(opcode: number, p1: number, p2: number, data: Uint8Array | null, respData: number, cb: Done): void {
    const self = this
    if (!this.tryWrite(this.addr, commandBytes(opcode, p1, p2, data))) return cb('command write NACKed', null)
    const t = TIMING[opcode] || [5, 200]
    const want = respData <= 1 ? 4 : respData + 3
    let waited = t[0]
    const poll = function () {
      const r = self.tryRead(want)
      if (r === null) {
        // Still executing (NACK): poll again until the datasheet maximum.
        if (waited >= t[1]) return cb('timeout after ' + waited + ' ms', null)
        waited += POLL_MS
        setTimeout(poll, POLL_MS)
        return
      }
      // A 4-byte status block may come where data was expected (an error).
      const n = r[0] === 4 ? 4 : want
      // A signature of the right length is taken without its CRC check: a bit flipped on the
      // bus makes it fail verification at the gateway, where the frame is lost just as it
      // would be here, and the check is 65 bytes of CRC in JavaScript on every frame (about
      // 1,500 interpreted units: docs/firmware.md, "Budget"). Every other response is checked.
      if (opcode === OP_SIGN && n === want && r[0] === want) return cb(null, r.subarray(1, want - 2))
      const res = parseResponse(n === want ? r : r.subarray(0, 4), respData)
      if (typeof res === 'string') return cb(res, null)
      cb(null, res)
    }
    setTimeout(poll, t[0])
  }

  /**
   * Runs `steps` on one wake, then puts the part to sleep. One operation at a time: while the
   * part is busy (a frame signature), later requests (an auth token for CONNECT) wait in a
   * short queue instead of failing; beyond MAX_QUEUE they are refused.
   */
  session(steps: (next: Done) => void, cb: Done): void {
    const self = this
    if (this.busy && this.now() - this.since > SESSION_MAX_MS) {
      // The running session's callbacks never came back: free the driver (see the header).
      this.resets++
      this.busy = false
    }
    if (this.busy) {
      if (this.queue.length >= MAX_QUEUE) return cb('secure element busy', null)
      this.queue.push({ steps: steps, cb: cb })
      return
    }
    this.busy = true
    const sid = ++this.sid
    this.since = this.now()
    const finish: Done = function (err, data) {
      if (sid !== self.sid) return // abandoned and superseded: another session owns the part
      self.sleep()
      self.busy = false
      if (err) self.errors++
      const next = self.queue.shift()
      if (next) self.session(next.steps, next.cb)
      cb(err, data)
    }
    this.wake(function (err) {
      if (err) return finish(err, null)
      steps(finish)
    })
  }

  /** Info(Revision): proves the part is present and answering. */
  info(cb: Done): void {
    const self = this
    this.session(function (done) { self.command(OP_INFO, 0x00, 0, null, 4, done) }, cb)
  }

  /**
   * ECDSA P-256 signature of a 32-byte digest with the key in `slot`:
   * Nonce pass-through (mode 0x03) loads the digest into TempKey, then Sign external
   * (mode 0x80) signs TempKey. Result R||S, 64 bytes.
   */
  signDigest(slot: number, digest: Uint8Array, cb: Done): void {
    const self = this
    if (digest.length !== 32) return cb('digest: expected 32 bytes, got ' + digest.length, null)
    this.session(function (done) {
      self.command(OP_NONCE, 0x03, 0, digest, 1, function (err) {
        if (err) return done('Nonce: ' + err, null)
        self.command(OP_SIGN, 0x80, slot, null, 64, function (err2, sig) {
          if (err2) return done('Sign: ' + err2, null)
          self.signs++
          done(null, sig)
        })
      })
    }, cb)
  }

  /** GenKey mode 0x00: the public key (X||Y, 64 bytes) of the private key in `slot`. */
  publicKey(slot: number, cb: Done): void {
    const self = this
    this.session(function (done) { self.command(OP_GENKEY, 0x00, slot, null, 64, done) }, cb)
  }

  /**
   * One-time personalisation of a blank part: lock the configuration zone (keeping the
   * default slot configuration), create the private key in `slot` inside the chip (GenKey
   * mode 0x04), lock the data zone. Returns the public key. A part already locked just
   * answers its public key.
   */
  personalize(slot: number, cb: Done): void {
    const self = this
    this.session(function (done) {
      // Lock config, skipping the summary CRC (bit 7): the configuration read-back is the
      // provisioning tool's check. "already locked" is fine.
      self.command(OP_LOCK, 0x80, 0, null, 1, function () {
        self.command(OP_GENKEY, 0x00, slot, null, 64, function (err, pub) {
          if (!err && pub) return done(null, pub)
          self.command(OP_GENKEY, 0x04, slot, null, 64, function (err2, pub2) {
            if (err2) return done('GenKey: ' + err2, null)
            self.command(OP_LOCK, 0x81, 0, null, 1, function (err3) {
              if (err3) return done('Lock data: ' + err3, null)
              done(null, pub2)
            })
          })
        })
      })
    }, cb)
  }
}
