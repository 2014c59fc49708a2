/**
 * ATECC608A secure element on I2C, modelled from Microchip's public
 * ATECC508A/608A datasheets and CryptoAuthLib's packet format:
 *
 * - Power states: sleep (NACKs everything), idle (NACKs, keeps TempKey),
 *   awake. Wake = SDA held low ≥ 60 µs (tWLO), then tWHI = 1.5 ms before the
 *   part answers; the wake token `04 11 33 43` is then in the output buffer.
 *   The virtual bus is byte-level, so the board's I2C layer calls `wake()`
 *   when firmware writes to I2C address 0x00: at 100 kHz that address byte is
 *   eight zero bits (80 µs of SDA low), which is how a real ESP32 wakes the
 *   part too (see docs/hardware-sim-devices.md).
 * - Watchdog: 1.3 s after wake the part goes to sleep whatever it is doing;
 *   a command that would not finish in time answers 0xEE instead.
 * - Word address byte: 0x00 reset (rewind the output buffer), 0x01 sleep,
 *   0x02 idle, 0x03 command.
 * - Command packet: count, opcode, param1, param2 (LE), data, CRC-16 (LE).
 *   Response: count, data, CRC-16. While a command executes the part NACKs
 *   (max execution times below); firmware polls until it ACKs.
 *
 * Commands: Info, Random, Nonce, GenKey, Sign (external), Read, Write, Lock.
 * Keys are generated inside with @noble/curves P-256; the private key has no
 * path out through any command. State persists to a JSON file if `statePath`
 * is given.
 */
import { randomBytes, createHash } from 'node:crypto'
import { readFileSync, writeFileSync, renameSync, existsSync } from 'node:fs'
import { p256 } from '@noble/curves/nist.js'
import { toHex, fromHex } from '../../protocol/portable/bytes.ts'
import type { I2CDevice } from '../hardware.ts'
import { crc16, appendCrc, checkCrc } from './atecc-crc.ts'
import { HmacDrbg, seedBytes, type ByteSource } from './drbg.ts'
import {
  CFG, LOCKED, UNLOCKED, REVISION, defaultConfig, slotSize, slotConfig, keyConfig, isP256Private, slotIsLocked,
  KEYCFG_PUBINFO, KEYCFG_LOCKABLE, SLOTCFG_IS_SECRET, SLOTCFG_EXT_SIGN, SLOTCFG_WRITECFG_SHIFT, WRITECFG_GENKEY,
} from './atecc-config.ts'

export { crc16 } from './atecc-crc.ts'

/** Status codes in a 4-byte response (datasheet "Status/Error Codes"). */
export const STATUS = {
  SUCCESS: 0x00,
  MISCOMPARE: 0x01,
  PARSE_ERROR: 0x03,
  ECC_FAULT: 0x05,
  SELF_TEST_ERROR: 0x07,
  EXECUTION_ERROR: 0x0f,
  AFTER_WAKE: 0x11,
  WATCHDOG_ABOUT_TO_EXPIRE: 0xee,
  COMM_ERROR: 0xff,
} as const

export const OPCODE = {
  READ: 0x02,
  WRITE: 0x12,
  NONCE: 0x16,
  LOCK: 0x17,
  RANDOM: 0x1b,
  INFO: 0x30,
  GENKEY: 0x40,
  SIGN: 0x41,
} as const

/** Word address byte, the first byte of every write. */
export const WORD_ADDRESS = { RESET: 0x00, SLEEP: 0x01, IDLE: 0x02, COMMAND: 0x03 } as const

/** Maximum execution times in ms (ATECC508A/608A datasheet tables; the part NACKs until done). */
export const EXEC_MS: Record<number, number> = {
  [OPCODE.INFO]: 1,
  [OPCODE.READ]: 1,
  [OPCODE.NONCE]: 7,
  [OPCODE.RANDOM]: 23,
  [OPCODE.WRITE]: 26,
  [OPCODE.LOCK]: 32,
  [OPCODE.GENKEY]: 115,
  [OPCODE.SIGN]: 115,
}

/** tWHI: time from the end of the wake pulse until the part answers. */
export const WAKE_DELAY_MS = 1.5
/** tWATCHDOG: awake time before the part puts itself to sleep. */
export const WATCHDOG_MS = 1300
/** The wake token every wake leaves in the output buffer. */
export const WAKE_RESPONSE = Uint8Array.of(0x04, 0x11, 0x33, 0x43)
/** Random output before the configuration zone is locked, as the real part gives. */
export const UNLOCKED_RANDOM = (() => {
  const r = new Uint8Array(32)
  for (let i = 0; i < 32; i += 4) r.set([0xff, 0xff, 0x00, 0x00], i)
  return r
})()

export class AteccStateError extends Error {
  override name = 'AteccStateError'
}

export interface Atecc608Options {
  /** 7-bit I2C address; default 0x60 (config byte 16 = 0xC0). */
  address?: number
  /**
   * Deterministic DRBG seed for serial number, keys and Random output (tests,
   * reproducible fleets). Without it, node:crypto randomness is used.
   */
  seed?: number | Uint8Array
  /** JSON file holding zones, keys and lock state; loaded if present, created and kept up to date otherwise. */
  statePath?: string
}

interface PersistedState {
  format: 'mhealth-atecc608-v1'
  config: string
  otp: string
  slots: string[]
  /** Private keys per slot (hex) or null. Never reachable through the I2C interface. */
  keys: Array<string | null>
}

type Power = 'sleep' | 'idle' | 'awake'

class CommandError extends Error {
  constructor(readonly status: number, message: string) {
    super(message)
  }
}
const parseError = (why: string) => new CommandError(STATUS.PARSE_ERROR, why)
const execError = (why: string) => new CommandError(STATUS.EXECUTION_ERROR, why)

/** A field of the state file: `len` bytes as hex, or AteccStateError naming the field. */
const stateBytes = (s: unknown, len: number, what: string): Uint8Array => {
  if (typeof s !== 'string' || !/^([0-9a-f]{2})*$/i.test(s) || s.length !== 2 * len) {
    throw new AteccStateError(`${what}: expected ${len} bytes of hex, got ${typeof s === 'string' ? `${s.length / 2} bytes` : typeof s}`)
  }
  return fromHex(s)
}

export class Atecc608 implements I2CDevice {
  readonly address: number
  private readonly rng: ByteSource
  private readonly statePath: string | undefined
  private config: Uint8Array
  private otp: Uint8Array = new Uint8Array(64)
  private slots: Uint8Array[] = []
  private keys: Array<Uint8Array | null> = []

  private power: Power = 'sleep'
  private readyAtMs = 0
  private watchdogAtMs = 0
  private busyUntilMs = 0
  private output: Uint8Array = WAKE_RESPONSE
  private outputPos = 0
  private tempKey: Uint8Array | null = null
  /** Why the last command failed (for tests and the simulator's logs; not on the bus). */
  lastError = ''

  constructor(opts: Atecc608Options = {}) {
    const address = opts.address ?? 0x60
    if (!Number.isInteger(address) || address < 0x08 || address > 0x77) throw new RangeError(`address: expected a 7-bit I2C address 0x08..0x77, got ${address}`)
    this.address = address
    this.rng = opts.seed !== undefined ? new HmacDrbg(seedBytes(opts.seed)) : { bytes: (n: number) => new Uint8Array(randomBytes(n)) }
    this.statePath = opts.statePath
    for (let s = 0; s < 16; s++) {
      this.slots.push(new Uint8Array(slotSize(s)))
      this.keys.push(null)
    }
    if (this.statePath && existsSync(this.statePath)) {
      this.config = new Uint8Array(128)
      this.load(this.statePath)
    } else {
      this.config = defaultConfig(this.rng.bytes(6), address)
      this.persist()
    }
  }

  // ---- public helpers for the board and tests (not bus operations) ----

  /** The 9-byte serial number (config bytes 0..3 and 8..12). */
  serialNumber(): Uint8Array {
    const sn = new Uint8Array(9)
    sn.set(this.config.subarray(0, 4), 0)
    sn.set(this.config.subarray(8, 13), 4)
    return sn
  }

  get configLocked(): boolean {
    return this.config[CFG.LOCK_CONFIG] !== UNLOCKED
  }

  get dataLocked(): boolean {
    return this.config[CFG.LOCK_VALUE] !== UNLOCKED
  }

  /** Current power state after catching up to `nowMs`. */
  state(nowMs: number): Power {
    this.catchUp(nowMs)
    return this.power
  }

  /**
   * The wake condition (SDA low ≥ tWLO). From sleep or idle the part wakes,
   * restarts its watchdog and answers after tWHI with the wake token; while
   * awake the pulse is just a bus glitch and changes nothing.
   */
  wake(nowMs: number): void {
    this.catchUp(nowMs)
    if (this.power === 'awake') return
    this.power = 'awake'
    this.readyAtMs = nowMs + WAKE_DELAY_MS
    this.watchdogAtMs = nowMs + WATCHDOG_MS
    this.busyUntilMs = 0
    this.setOutput(WAKE_RESPONSE)
  }

  // ---- I2CDevice ----

  write(data: Uint8Array, nowMs: number): boolean {
    if (!this.acking(nowMs)) return false
    if (data.length === 0) return true // address probe
    switch (data[0]) {
      case WORD_ADDRESS.RESET:
        this.outputPos = 0
        return true
      case WORD_ADDRESS.SLEEP:
        this.goToSleep()
        return true
      case WORD_ADDRESS.IDLE:
        this.power = 'idle' // TempKey survives idle, not sleep
        return true
      case WORD_ADDRESS.COMMAND:
        this.command(data.subarray(1), nowMs)
        return true
      default:
        return false // reserved word addresses are not acknowledged
    }
  }

  read(n: number, nowMs: number): Uint8Array | null {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`n: expected a byte count >= 0, got ${n}`)
    if (!this.acking(nowMs)) return null
    const out = new Uint8Array(n).fill(0xff) // past the end of the buffer the bus floats high
    const avail = Math.max(0, Math.min(n, this.output.length - this.outputPos))
    out.set(this.output.subarray(this.outputPos, this.outputPos + avail))
    this.outputPos += avail
    return out
  }

  // ---- timing ----

  private catchUp(nowMs: number): void {
    if (!Number.isFinite(nowMs)) throw new RangeError(`nowMs: expected a finite time, got ${nowMs}`)
    // The watchdog only runs while awake (idle stops it).
    if (this.power === 'awake' && nowMs >= this.watchdogAtMs) this.goToSleep()
  }

  private acking(nowMs: number): boolean {
    this.catchUp(nowMs)
    return this.power === 'awake' && nowMs >= this.readyAtMs && nowMs >= this.busyUntilMs
  }

  private goToSleep(): void {
    this.power = 'sleep'
    this.tempKey = null
  }

  private setOutput(bytes: Uint8Array): void {
    this.output = bytes
    this.outputPos = 0
  }

  private respond(data: Uint8Array): void {
    const body = new Uint8Array(data.length + 1)
    body[0] = data.length + 3
    body.set(data, 1)
    this.setOutput(appendCrc(body))
  }

  private status(code: number): void {
    this.respond(Uint8Array.of(code))
  }

  // ---- command dispatch ----

  private command(pkt: Uint8Array, nowMs: number): void {
    this.lastError = ''
    // CRC and framing errors come before any other error (datasheet, Status/Error Codes).
    const count = pkt[0]
    if (pkt.length < 7 || count !== pkt.length || !checkCrc(pkt)) {
      this.lastError = pkt.length < 7 ? `packet too short (${pkt.length} bytes)` : count !== pkt.length ? `count byte ${count} but ${pkt.length} bytes sent` : 'CRC mismatch'
      this.status(STATUS.COMM_ERROR)
      return
    }
    const opcode = pkt[1]
    const p1 = pkt[2]
    const p2 = pkt[3] | (pkt[4] << 8)
    const data = pkt.subarray(5, pkt.length - 2)
    const execMs = EXEC_MS[opcode]
    if (execMs === undefined) {
      this.lastError = `opcode 0x${opcode.toString(16)} not supported`
      this.status(STATUS.PARSE_ERROR)
      return
    }
    if (nowMs + execMs >= this.watchdogAtMs) {
      this.lastError = 'watchdog would expire during execution'
      this.status(STATUS.WATCHDOG_ABOUT_TO_EXPIRE)
      return
    }
    try {
      const result = this.execute(opcode, p1, p2, data)
      this.respond(result)
    } catch (err) {
      if (!(err instanceof CommandError)) throw err
      this.lastError = err.message
      this.status(err.status)
    }
    this.busyUntilMs = nowMs + execMs
  }

  private execute(opcode: number, p1: number, p2: number, data: Uint8Array): Uint8Array {
    switch (opcode) {
      case OPCODE.INFO: return this.info(p1, p2, data)
      case OPCODE.RANDOM: return this.random(p1, p2, data)
      case OPCODE.NONCE: return this.nonce(p1, p2, data)
      case OPCODE.GENKEY: return this.genKey(p1, p2, data)
      case OPCODE.SIGN: return this.sign(p1, p2, data)
      case OPCODE.READ: return this.readCmd(p1, p2, data)
      case OPCODE.WRITE: return this.writeCmd(p1, p2, data)
      case OPCODE.LOCK: return this.lock(p1, p2, data)
      default: throw parseError(`opcode 0x${opcode.toString(16)}`)
    }
  }

  private randomOut(): Uint8Array {
    return this.configLocked ? this.rng.bytes(32) : UNLOCKED_RANDOM.slice()
  }

  /** Info: mode 0 Revision (4 bytes); mode 1 KeyValid (byte 0 = 1 if the ECC slot holds a key). */
  private info(mode: number, p2: number, data: Uint8Array): Uint8Array {
    if (data.length !== 0) throw parseError('Info takes no data')
    if (mode === 0x00) return this.config.slice(CFG.REVNUM, CFG.REVNUM + 4)
    if (mode === 0x01) {
      if (p2 > 15) throw parseError(`KeyValid slot ${p2}`)
      if (!isP256Private(this.config, p2)) throw execError(`slot ${p2} is not an ECC private key slot`)
      return Uint8Array.of(this.keys[p2] ? 1 : 0, 0, 0, 0)
    }
    throw parseError(`Info mode 0x${mode.toString(16)} not supported`)
  }

  /** Random: 32 bytes; the fixed FF FF 00 00 pattern until the config zone is locked. */
  private random(mode: number, p2: number, data: Uint8Array): Uint8Array {
    if ((mode & ~0x01) !== 0 || p2 !== 0 || data.length !== 0) throw parseError('Random: mode 0/1, param2 0, no data')
    return this.randomOut()
  }

  /**
   * Nonce. Mode 3 (pass-through): TempKey = the 32 data bytes, answers 0x00.
   * Modes 0/1 (random): data = 20-byte NumIn, answers RandOut (32 bytes),
   * TempKey = SHA-256(RandOut ‖ NumIn ‖ 0x16 ‖ mode ‖ 0x00).
   */
  private nonce(mode: number, _p2: number, data: Uint8Array): Uint8Array {
    const m = mode & 0x03
    if ((mode & ~0x03) !== 0) throw parseError(`Nonce mode 0x${mode.toString(16)} not supported (only TempKey targets, 32-byte)`)
    if (m === 0x03) {
      if (data.length !== 32) throw parseError(`Nonce pass-through: expected 32 data bytes, got ${data.length}`)
      this.tempKey = data.slice()
      return Uint8Array.of(STATUS.SUCCESS)
    }
    if (m === 0x02) throw parseError('Nonce mode 2 is invalid')
    if (data.length !== 20) throw parseError(`Nonce random: expected 20-byte NumIn, got ${data.length}`)
    const randOut = this.randomOut()
    this.tempKey = new Uint8Array(createHash('sha256').update(randOut).update(data).update(Uint8Array.of(OPCODE.NONCE, mode, 0x00)).digest())
    return randOut
  }

  /**
   * GenKey. Mode 0x04: create a private key in slot param2 and return its
   * public key X‖Y (64 bytes). Mode 0x00: return the public key of the key
   * already there (needs KeyConfig.PubInfo). Digest modes are not modelled.
   */
  private genKey(mode: number, slot: number, data: Uint8Array): Uint8Array {
    if ((mode !== 0x04 && mode !== 0x00) || data.length !== 0) throw parseError(`GenKey mode 0x${mode.toString(16)} with ${data.length} data bytes not supported`)
    if (slot > 15) throw parseError(`GenKey slot ${slot}`)
    if (!this.configLocked) throw execError('GenKey needs the configuration zone locked')
    if (!isP256Private(this.config, slot)) throw execError(`slot ${slot} is not a P-256 private key slot`)
    if (mode === 0x04) {
      if (this.dataLocked) {
        const writeConfig = slotConfig(this.config, slot) >> SLOTCFG_WRITECFG_SHIFT
        if ((writeConfig & WRITECFG_GENKEY) === 0) throw execError(`slot ${slot}: WriteConfig forbids GenKey after the data zone lock`)
        if (slotIsLocked(this.config, slot)) throw execError(`slot ${slot} is locked`)
      }
      const key = p256.utils.randomSecretKey(this.rng.bytes(48))
      this.keys[slot] = key
      // The slot's stored form (4 pad bytes + scalar) lives in the data zone; reads of it are refused.
      this.slots[slot].fill(0)
      this.slots[slot].set(key, 4)
      this.persist()
      return p256.getPublicKey(key, false).slice(1)
    }
    if ((keyConfig(this.config, slot) & KEYCFG_PUBINFO) === 0) throw execError(`slot ${slot}: PubInfo is 0`)
    const key = this.keys[slot]
    if (!key) throw execError(`slot ${slot} holds no valid private key`)
    return p256.getPublicKey(key, false).slice(1)
  }

  /**
   * Sign, external message (mode 0x80): ECDSA P-256 over the 32-byte TempKey
   * as the message digest, key from slot param2; answers R‖S (64 bytes).
   * TempKey is consumed. Signatures come from RFC 6979 nonces and are not
   * normalised to low-S (the real part does not normalise either).
   */
  private sign(mode: number, slot: number, data: Uint8Array): Uint8Array {
    if (mode !== 0x80 || data.length !== 0) throw parseError(`Sign mode 0x${mode.toString(16)} not supported (external, TempKey source only)`)
    if (slot > 15) throw parseError(`Sign slot ${slot}`)
    if (!this.configLocked || !this.dataLocked) throw execError('Sign needs the configuration and data zones locked')
    if (!isP256Private(this.config, slot)) throw execError(`slot ${slot} is not a P-256 private key slot`)
    if ((slotConfig(this.config, slot) & SLOTCFG_EXT_SIGN) === 0) throw execError(`slot ${slot}: external signatures not enabled`)
    const key = this.keys[slot]
    if (!key) throw execError(`slot ${slot} holds no valid private key`)
    if (!this.tempKey) throw execError('TempKey is not valid (run Nonce first)')
    const digest = this.tempKey
    this.tempKey = null
    return p256.sign(digest, key, { prehash: false, lowS: false })
  }

  /**
   * Decodes the zone/address of Read and Write: param1 bits 0–1 zone
   * (0 config, 1 OTP, 2 data), bit 7 = 32 bytes; param2 bits 0–2 word,
   * 3–4 block (config/OTP) or 3–6 slot and 8–11 block (data). 32-byte
   * accesses ignore the word offset.
   */
  private locate(p1: number, p2: number): { zone: number; slot: number; offset: number; len: number; buf: Uint8Array } {
    const zone = p1 & 0x03
    const len = p1 & 0x80 ? 32 : 4
    const word = len === 32 ? 0 : p2 & 0x07
    if (zone === 0 || zone === 1) {
      const block = (p2 >> 3) & 0x03
      const offset = block * 32 + word * 4
      const buf = zone === 0 ? this.config : this.otp
      if ((p2 & ~0x1f) !== 0 || offset + len > buf.length) throw parseError(`address 0x${p2.toString(16)} outside the ${zone === 0 ? 'config' : 'OTP'} zone`)
      return { zone, slot: -1, offset, len, buf }
    }
    if (zone === 2) {
      const slot = (p2 >> 3) & 0x0f
      const block = (p2 >> 8) & 0x0f
      const offset = block * 32 + word * 4
      const buf = this.slots[slot]
      if ((p2 & ~0x0f7f) !== 0 || offset + len > buf.length) throw parseError(`address 0x${p2.toString(16)} outside slot ${slot} (${buf.length} bytes)`)
      return { zone, slot, offset, len, buf }
    }
    throw parseError('zone 3 is invalid')
  }

  private readCmd(p1: number, p2: number, data: Uint8Array): Uint8Array {
    if ((p1 & ~0x83) !== 0 || data.length !== 0) throw parseError(`Read param1 0x${p1.toString(16)}`)
    const loc = this.locate(p1, p2)
    if (loc.zone !== 0) {
      if (!this.dataLocked) throw execError('the data and OTP zones cannot be read before the data zone is locked')
      if (loc.zone === 2) {
        const sc = slotConfig(this.config, loc.slot)
        if (isP256Private(this.config, loc.slot)) throw execError(`slot ${loc.slot} holds a private key and can never be read`)
        if (sc & SLOTCFG_IS_SECRET) throw execError(`slot ${loc.slot} is secret (encrypted reads are not modelled)`)
      }
    }
    return loc.buf.slice(loc.offset, loc.offset + loc.len)
  }

  private writeCmd(p1: number, p2: number, data: Uint8Array): Uint8Array {
    if ((p1 & ~0xc3) !== 0) throw parseError(`Write param1 0x${p1.toString(16)}`)
    if (p1 & 0x40) throw execError('encrypted writes are not modelled')
    const loc = this.locate(p1, p2)
    if (data.length !== loc.len) throw parseError(`Write: expected ${loc.len} data bytes, got ${data.length}`)
    if (loc.zone === 0) {
      if (this.configLocked) throw execError('the configuration zone is locked')
      // Bytes 0–15 (serial, revision) are factory-programmed; 84–87 change only via UpdateExtra and Lock.
      for (let i = loc.offset; i < loc.offset + loc.len; i++) {
        if (i < 16 || (i >= 84 && i < 88)) throw execError(`config byte ${i} cannot be written with Write`)
      }
    } else {
      if (!this.configLocked) throw execError('the data and OTP zones cannot be written before the configuration zone is locked')
      if (this.dataLocked) {
        if (loc.zone === 1) throw execError('the OTP zone is read-only after the data zone lock')
        const sc = slotConfig(this.config, loc.slot)
        if (isP256Private(this.config, loc.slot) || (sc & SLOTCFG_IS_SECRET) !== 0 || sc >> SLOTCFG_WRITECFG_SHIFT !== 0) {
          throw execError(`slot ${loc.slot}: WriteConfig does not allow clear writes`)
        }
        if (slotIsLocked(this.config, loc.slot)) throw execError(`slot ${loc.slot} is locked`)
      }
      if (loc.zone === 2) this.keys[loc.slot] = null // a clear write overwrites any key material
    }
    loc.buf.set(data, loc.offset)
    this.persist()
    return Uint8Array.of(STATUS.SUCCESS)
  }

  /** CRC-16 over the data zone (all slots in order) then the OTP zone: the data-lock summary. */
  dataSummaryCrc(): number {
    const all: Uint8Array[] = [...this.slots, this.otp]
    const total = all.reduce((n, b) => n + b.length, 0)
    const cat = new Uint8Array(total)
    let off = 0
    for (const b of all) {
      cat.set(b, off)
      off += b.length
    }
    return crc16(cat)
  }

  /**
   * Lock. param1 bits 0–1: 0 config zone, 1 data+OTP zones, 2 single slot
   * (slot in bits 2–5); bit 7 set = skip the summary check. param2 = summary
   * CRC-16 of the zone (config: 128 bytes; data: slots then OTP; slot: its
   * contents). Mismatch or already locked → execution error.
   */
  private lock(p1: number, summary: number, data: Uint8Array): Uint8Array {
    if (data.length !== 0 || (p1 & 0x40) !== 0) throw parseError(`Lock param1 0x${p1.toString(16)}`)
    const zone = p1 & 0x03
    const checkSummary = (p1 & 0x80) === 0
    if (zone === 0) {
      if (this.configLocked) throw execError('configuration zone already locked')
      if (checkSummary && crc16(this.config) !== summary) throw execError('configuration summary CRC mismatch')
      this.config[CFG.LOCK_CONFIG] = LOCKED
    } else if (zone === 1) {
      if (!this.configLocked) throw execError('lock the configuration zone first')
      if (this.dataLocked) throw execError('data zone already locked')
      if (checkSummary && this.dataSummaryCrc() !== summary) throw execError('data summary CRC mismatch')
      this.config[CFG.LOCK_VALUE] = LOCKED
    } else if (zone === 2) {
      const slot = (p1 >> 2) & 0x0f
      if (!this.dataLocked) throw execError('slot locks need the data zone locked')
      if ((keyConfig(this.config, slot) & KEYCFG_LOCKABLE) === 0) throw execError(`slot ${slot} is not lockable`)
      if (slotIsLocked(this.config, slot)) throw execError(`slot ${slot} already locked`)
      if (checkSummary && crc16(this.slots[slot]) !== summary) throw execError(`slot ${slot} summary CRC mismatch`)
      const bits = (this.config[CFG.SLOT_LOCKED] | (this.config[CFG.SLOT_LOCKED + 1] << 8)) & ~(1 << slot)
      this.config[CFG.SLOT_LOCKED] = bits & 0xff
      this.config[CFG.SLOT_LOCKED + 1] = bits >> 8
    } else {
      throw parseError('Lock zone 3 is invalid')
    }
    this.persist()
    return Uint8Array.of(STATUS.SUCCESS)
  }

  // ---- persistence ----

  private persist(): void {
    if (!this.statePath) return
    const state: PersistedState = {
      format: 'mhealth-atecc608-v1',
      config: toHex(this.config),
      otp: toHex(this.otp),
      slots: this.slots.map((b) => toHex(b)),
      keys: this.keys.map((k) => (k ? toHex(k) : null)),
    }
    // Write-then-rename so a crash never leaves a torn state file.
    const tmp = `${this.statePath}.${process.pid}.tmp`
    writeFileSync(tmp, JSON.stringify(state, null, 1) + '\n', { mode: 0o600 })
    renameSync(tmp, this.statePath)
  }

  private load(path: string): void {
    let state: PersistedState
    try {
      state = JSON.parse(readFileSync(path, 'utf8')) as PersistedState
    } catch (err) {
      throw new AteccStateError(`cannot load ATECC608 state ${path}: ${(err as Error).message}`)
    }
    if (state === null || typeof state !== 'object' || state.format !== 'mhealth-atecc608-v1') {
      throw new AteccStateError(`${path}: expected format "mhealth-atecc608-v1", got ${state === null || typeof state !== 'object' ? typeof state : JSON.stringify(state.format)}`)
    }
    const config = stateBytes(state.config, 128, `${path}: config`)
    const otp = stateBytes(state.otp, 64, `${path}: otp`)
    if (!Array.isArray(state.slots) || state.slots.length !== 16) throw new AteccStateError(`${path}: slots: expected 16 entries`)
    if (!Array.isArray(state.keys) || state.keys.length !== 16) throw new AteccStateError(`${path}: keys: expected 16 entries`)
    const slots = state.slots.map((s, i) => stateBytes(s, slotSize(i), `${path}: slot ${i}`))
    const keys = state.keys.map((k, i) => (k === null ? null : stateBytes(k, 32, `${path}: key ${i}`)))
    for (const [i, k] of keys.entries()) {
      if (k && !p256.utils.isValidSecretKey(k)) throw new AteccStateError(`${path}: key ${i} is not a valid P-256 scalar`)
    }
    if (config[CFG.REVNUM + 2] !== REVISION[2]) throw new AteccStateError(`${path}: config revision bytes do not look like an ATECC608`)
    this.config = config
    this.otp = otp
    this.slots = slots
    this.keys = keys as Array<Uint8Array | null>
  }
}

/** Builds a command packet as firmware sends it after the 0x03 word address: count, opcode, p1, p2 LE, data, CRC. */
export function commandPacket(opcode: number, p1: number, p2: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const body = new Uint8Array(5 + data.length)
  body[0] = 7 + data.length
  body[1] = opcode
  body[2] = p1
  body[3] = p2 & 0xff
  body[4] = p2 >> 8
  body.set(data, 5)
  return appendCrc(body)
}
