/**
 * What a callback costs an ESP32 running Espruino: interpreter work counted in units by the
 * instrumented bundle (instrument.ts: one unit = one token lexed and executed), turned into
 * µs with ONE headline constant, plus the native operations the firmware calls (bus
 * transfers, hashing, flash), which block the interpreter for their whole duration.
 *
 * Sources and the derivation are in docs/hardware-sim-cost.md; the short version:
 *
 * Calibration loop `for(var i=0;i<100000;i++){i=i;}` took 99 ms on the real interpreter
 * built at the ESP32's -Og for x86-64 (2.6 GHz Xeon), shared/docs/espruino-facts.md. The
 * transform charges it LOOP_UNITS units. The ESP32 is slower than that Xeon by a factor the
 * facts file brackets two ways:
 *   1. Per clock like an Espruino Pico: the Pico (84 MHz Cortex-M4) took 458 s for a
 *      1,000,000-step Leibniz loop this x86 build runs in 2.9 s, 158x slower; at the
 *      ESP32's 240 MHz that is 158 x 84 / 240 = 55x, and up to 2x worse (111x) when the
 *      interpreter's code comes from flash through the cache.
 *   2. Instruction counts at an ESP32 IPC of 1.0 down to 0.4: 72x to 180x (the facts
 *      file's upper bound is this route at IPC 0.4; the lower end scales by 0.4/1.0).
 * Together: 50x (route 1's low end, as the facts file rounds it) to 180x. The two routes
 * agree on 72x-111x; the central setting is the geometric centre of that band,
 * sqrt(72 x 111) = 89, taken as 90x. low = 50x, high = 180x.
 * µs/unit = slowdown x 99,000 µs / LOOP_UNITS.
 *
 * How to recalibrate with one run on a real ESP32: upload
 *   `var t=getTime();for(var i=0;i<100000;i++){i=i;}print((getTime()-t)*1e6)`
 * (from RAM, not Storage, with WiFi idle), read the µs it prints, and set
 * CALIBRATION.measuredLoopUs to it: every setting then uses measured / LOOP_UNITS µs/unit
 * (low/central/high collapse to the measurement). Then time a tick of the firmware the same
 * way and adjust callUnits if calls come out too cheap or too dear (see the doc).
 */

export type Setting = 'low' | 'central' | 'high'

/**
 * Every constant the model rests on, in one place. Change these when a real board is timed.
 */
export const CALIBRATION = {
  /** The benchmark loop, its time on the -Og x86 build (facts file), and what instrument() charges for it. */
  loop: {
    source: 'for(var i=0;i<100000;i++){i=i;}',
    x86Us: 99_000,
    /**
     * Units the transform charges for `source` (checked by test/hardware-sim/cost): the header
     * once (12 tokens, the update skimmed at 0.25 x 2) + 100,000 x (test 3 + update 2 + 3
     * re-lexed separators + braces 2 + `i=i;` 4) = 12.5 + 1,400,000.
     */
    units: 1_400_012.5,
  },
  /** ESP32 time / -Og x86 time for the same interpreter work (derivation above). */
  slowdown: { low: 50, central: 90, high: 180 } as Record<Setting, number>,
  /** µs the loop took on a real ESP32, once measured; overrides `slowdown` for every setting. */
  measuredLoopUs: undefined as number | undefined,
  /**
   * Units a call of a JavaScript function costs at entry beyond its tokens: Espruino creates
   * the scope object, binds each parameter as a new variable, saves the lexer and starts a
   * new one on the function text (jspeFunctionCall). Tuned on the firmware of 2026-12-07:
   * with 40 its frame build (about 120 calls, 6,500 tokens) costs what the real interpreter
   * measured, 800 µs on the x86 build (docs/hardware-sim-cost.md, "Checking against the
   * firmware"). The tick/frame-build ratio cannot be matched with this constant alone: a
   * larger call cost makes frame builds dearer faster than ticks.
   */
  callUnits: 40,
  /**
   * Units the idle loop spends to dispatch one callback (a due timer, an I/O event) beyond
   * the callback's own call: Espruino walks its timer list, reschedules intervals and calls
   * through jspExecuteFunction. Fitted: with it one ECG tick costs the 72 µs measured on the
   * x86 build (18 ms / 250 ticks), and the firmware's total stays inside the measured
   * 17-25 ms per board-second. Part of it may be the Linux build's analogRead printing an
   * error on every call (it has no ADC): set 0 to charge callbacks their code only.
   */
  callbackUnits: 360,
  /** Units per token Espruino lexes without executing (function bodies at definition, branches not taken, code after return). An estimate: lexing only, no parse or evaluation. */
  skipWeight: 0.25,
  /** Units a call into a native (C) function costs beyond its argument tokens: argument conversion and the result JsVar. An estimate. */
  nativeCallUnits: 10,
} as const

/** µs of ESP32 time per unit, by setting. */
export function usPerUnitFor(setting: Setting, cal: { loop: { x86Us: number; units: number }; slowdown: Record<Setting, number>; measuredLoopUs?: number } = CALIBRATION): number {
  if (cal.measuredLoopUs !== undefined) return cal.measuredLoopUs / cal.loop.units
  return (cal.slowdown[setting] * cal.loop.x86Us) / cal.loop.units
}

/**
 * Native operations: hardware time the interpreter waits for (the ESP32 port's drivers
 * block until done). Plain µs, the same at every setting.
 */
export interface NativeCosts {
  /** analogRead: one ESP32 SAR ADC conversion through the driver. Estimate. */
  adcReadUs: number
  /** ESP-IDF legacy I2C driver, per transaction: command link built on the heap, bus mutex, ISR round trip. Estimate. */
  i2cTransactionUs: number
  /** ESP-IDF SPI master, per interrupt transaction (Espruino's jshSPISendMany queues one and waits): "20 + 8n/f" in the driver docs. */
  spiTransactionUs: number
  /** SHA-256, per 64-byte block, ESP32 SHA accelerator. */
  sha256BlockUs: number
  /** SHA-256, per call: engine lock, context setup, Espruino flattening the message and allocating the 32-byte result. Estimate. */
  sha256CallUs: number
  /** crypto.PBKDF2 as HMAC, per call beyond its blocks: mbedtls HMAC context allocation and PBKDF2 bookkeeping. Estimate. */
  pbkdf2CallUs: number
  /** Flash program time per 256-byte page written (or part of one): typical tPP of a 32 Mbit SPI NOR. */
  flashPageProgramUs: number
  /** Flash, per byte written: SPI transfer and driver copy on top of the page program time. Estimate. */
  flashByteUs: number
  /** Flash erase of one 4 KB sector (an Espruino Storage page on ESP32): typical tSE. */
  flashSectorEraseUs: number
  /** SHA-384/512, per 128-byte block: the accelerator's 80 rounds on 64-bit words, taken as twice a SHA-256 block (same time per byte). Estimate. */
  sha512BlockUs: number
  /**
   * A socket write (`socket.write(data)`), per call: Espruino appends the data to the socket's
   * send buffer and its idle loop hands it to lwIP's `send()`, a message to the tcpip task and
   * a copy into a pbuf. Estimate.
   */
  netWriteUs: number
  /** A socket write, per byte: the copy into the send buffer's JsVar string and into lwIP. Estimate. */
  netByteUs: number
}

export const NATIVE_COSTS: NativeCosts = {
  adcReadUs: 20,
  i2cTransactionUs: 40,
  spiTransactionUs: 20,
  sha256BlockUs: 2,
  sha256CallUs: 15,
  pbkdf2CallUs: 30,
  flashPageProgramUs: 700,
  flashByteUs: 0.25,
  flashSectorEraseUs: 45_000,
  sha512BlockUs: 4,
  netWriteUs: 50,
  netByteUs: 0.2,
}

/** SHA-256 blocks for a message of `bytes`: data plus the 0x80 byte and the 8-byte length, padded to 64. */
export function sha256Blocks(bytes: number): number {
  return Math.floor((bytes + 8) / 64) + 1
}

/** SHA-384/512 blocks: the length field is 16 bytes and a block 128. */
export function sha512Blocks(bytes: number): number {
  return Math.floor((bytes + 16) / 128) + 1
}

/** The hashes `require("crypto")` offers: digest bytes and block bytes. */
export const HASHES = {
  SHA1: { digest: 20, block: 64 },
  SHA224: { digest: 28, block: 64 },
  SHA256: { digest: 32, block: 64 },
  SHA384: { digest: 48, block: 128 },
  SHA512: { digest: 64, block: 128 },
} as const
export type HashName = keyof typeof HASHES

const FLASH_PAGE = 256

export class CostModel {
  readonly setting: Setting
  /** The headline constant: µs of ESP32 time per unit of interpreter work. */
  readonly usPerUnit: number
  readonly native: NativeCosts
  readonly nativeCallUnits: number
  readonly callbackUnits: number

  constructor(setting: Setting = 'central', overrides: { usPerUnit?: number; native?: Partial<NativeCosts>; nativeCallUnits?: number; callbackUnits?: number } = {}) {
    if (setting !== 'low' && setting !== 'central' && setting !== 'high') throw new TypeError(`expected setting low, central or high, got ${JSON.stringify(setting)}`)
    const u = overrides.usPerUnit ?? usPerUnitFor(setting)
    if (!(u > 0) || !Number.isFinite(u)) throw new RangeError(`expected usPerUnit > 0, got ${u}`)
    this.setting = setting
    this.usPerUnit = u
    this.native = { ...NATIVE_COSTS, ...overrides.native }
    this.nativeCallUnits = overrides.nativeCallUnits ?? CALIBRATION.nativeCallUnits
    this.callbackUnits = overrides.callbackUnits ?? CALIBRATION.callbackUnits
    if (!(this.nativeCallUnits >= 0) || !(this.callbackUnits >= 0)) throw new RangeError(`expected nativeCallUnits and callbackUnits >= 0, got ${this.nativeCallUnits} and ${this.callbackUnits}`)
    for (const [k, v] of Object.entries(this.native)) if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`expected native.${k} >= 0, got ${v}`)
  }

  /** µs for `units` of interpreter work. */
  unitsUs(units: number): number {
    return units * this.usPerUnit
  }

  /** µs of interpreter work to enter a native function (add the operation's own time). */
  nativeCallUs(): number {
    return this.nativeCallUnits * this.usPerUnit
  }

  /** µs the idle loop spends dispatching one callback, beyond the callback's own code. */
  dispatchUs(): number {
    return this.callbackUnits * this.usPerUnit
  }

  /** analogRead: the call and one ADC conversion. */
  analogReadUs(): number {
    return this.nativeCallUs() + this.native.adcReadUs
  }

  /**
   * One I2C transaction moving `bytes` data bytes at `bitrateHz`: START, address byte and
   * ACK (9 bits), 9 bits per data byte (8 + ACK), STOP, plus the driver's overhead. At
   * 100 kHz a data byte is 90 µs, at 400 kHz 22.5 µs (facts file: ~90 and 23 µs). `bytes`
   * 0 is an address-only transaction (a poll the device NACKs).
   */
  i2cUs(bytes: number, bitrateHz: number): number {
    checkCount('bytes', bytes)
    checkRate('bitrateHz', bitrateHz)
    const bits = 1 + 9 + 9 * bytes + 1
    return this.native.i2cTransactionUs + (bits * 1e6) / bitrateHz
  }

  /** One SPI transaction (chip select low to high) of `bytes` bytes at `baudHz`: 8 clocks a byte plus the driver's overhead. */
  spiUs(bytes: number, baudHz: number): number {
    checkCount('bytes', bytes)
    checkRate('baudHz', baudHz)
    return this.native.spiTransactionUs + (8 * bytes * 1e6) / baudHz
  }

  /** crypto.SHA256 of a `bytes`-byte message. */
  sha256Us(bytes: number): number {
    checkCount('bytes', bytes)
    return this.native.sha256CallUs + sha256Blocks(bytes) * this.native.sha256BlockUs
  }

  /**
   * `crypto.SHA1/224/256/384/512` of a `bytes`-byte message. SHA-1 and SHA-224 run the SHA-256
   * block schedule's cost (same 64-byte blocks on the accelerator); SHA-384/512 use 128-byte
   * blocks at `sha512BlockUs`.
   */
  hashUs(hash: HashName, bytes: number): number {
    checkCount('bytes', bytes)
    if (!(hash in HASHES)) throw new TypeError(`expected a hash of ${Object.keys(HASHES).join(', ')}, got ${JSON.stringify(hash)}`)
    if (HASHES[hash].block === 64) return this.sha256Us(bytes)
    return this.native.sha256CallUs + sha512Blocks(bytes) * this.native.sha512BlockUs
  }

  /**
   * `crypto.PBKDF2(pass, salt, { keySize, iterations, hasher })` in general: per output block
   * of the digest's size, `iterations` HMACs, the first over salt + the 4-byte block index,
   * the others over the previous digest; each HMAC an inner pass over key^ipad (one block) and
   * the message, and an outer pass over key^opad and the inner digest; a key longer than a
   * block is hashed first (once per HMAC, as mbedtls does it without caching the padded key
   * state). For SHA-256, one iteration and 32 output bytes this is hmacSha256Us().
   */
  pbkdf2Us(passBytes: number, saltBytes: number, o: { iterations: number; outBytes: number; hasher: HashName }): number {
    checkCount('passBytes', passBytes)
    checkCount('saltBytes', saltBytes)
    if (!Number.isInteger(o.iterations) || o.iterations < 1) throw new RangeError(`expected iterations to be an integer >= 1, got ${o.iterations}`)
    if (!Number.isInteger(o.outBytes) || o.outBytes < 1) throw new RangeError(`expected outBytes to be an integer >= 1, got ${o.outBytes}`)
    const h = HASHES[o.hasher]
    if (!h) throw new TypeError(`expected a hasher of ${Object.keys(HASHES).join(', ')}, got ${JSON.stringify(o.hasher)}`)
    const blocks = h.block === 64 ? sha256Blocks : sha512Blocks
    const blockUs = h.block === 64 ? this.native.sha256BlockUs : this.native.sha512BlockUs
    const hmacBlocks = (msg: number): number => blocks(h.block + msg) + blocks(h.block + h.digest)
    const perOutput = (passBytes > h.block ? blocks(passBytes) : 0) + hmacBlocks(saltBytes + 4) + (o.iterations - 1) * hmacBlocks(h.digest)
    return this.native.pbkdf2CallUs + Math.ceil(o.outBytes / h.digest) * perOutput * blockUs
  }

  /** `socket.write(data)` of `bytes` bytes: the native call, Espruino's send buffer and lwIP. */
  netWriteUs(bytes: number): number {
    checkCount('bytes', bytes)
    return this.nativeCallUs() + this.native.netWriteUs + bytes * this.native.netByteUs
  }

  /**
   * HMAC-SHA256 as the firmware computes it, crypto.PBKDF2(key, msg, {iterations: 1,
   * keySize: 8, hasher: 'SHA256'}): the inner hash over key^ipad (one block) + msg + the
   * 4-byte block index, the outer over key^opad + the 32-byte inner digest (two blocks);
   * a key longer than 64 bytes is hashed first.
   */
  hmacSha256Us(keyBytes: number, msgBytes: number): number {
    checkCount('keyBytes', keyBytes)
    checkCount('msgBytes', msgBytes)
    const keyBlocks = keyBytes > 64 ? sha256Blocks(keyBytes) : 0
    const blocks = keyBlocks + sha256Blocks(64 + msgBytes + 4) + sha256Blocks(64 + 32)
    return this.native.pbkdf2CallUs + blocks * this.native.sha256BlockUs
  }

  /**
   * Writing `bytes` to flash starting at byte `offset` of the Storage area: each 256-byte
   * page touched is one page program. The ESP32 runs nothing from flash meanwhile (cache
   * disabled, the other core stalled), so the interpreter waits all of it.
   */
  flashWriteUs(bytes: number, offset = 0): number {
    checkCount('bytes', bytes)
    checkCount('offset', offset)
    if (bytes === 0) return 0
    const pages = Math.floor((offset + bytes - 1) / FLASH_PAGE) - Math.floor(offset / FLASH_PAGE) + 1
    return pages * this.native.flashPageProgramUs + bytes * this.native.flashByteUs
  }

  /** Erasing `sectors` 4 KB flash sectors (Storage compaction, erasing a file's pages). */
  flashEraseUs(sectors: number): number {
    checkCount('sectors', sectors)
    return sectors * this.native.flashSectorEraseUs
  }
}

function checkCount(name: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`expected ${name} to be an integer >= 0, got ${n}`)
}

function checkRate(name: string, hz: number): void {
  if (!(hz > 0) || !Number.isFinite(hz)) throw new RangeError(`expected ${name} > 0, got ${hz}`)
}
