/**
 * The Espruino 2v2x API surface the firmware uses, for `tsc -p tsconfig.portable.json`
 * (lib ES5). Only what the interpreter really has (see shared/docs/espruino-facts.md):
 * nothing here may promise a built-in the board lacks.
 */

// ES2015+ methods Espruino implements although lib ES5 does not declare them.
interface Array<T> {
  includes(v: T): boolean
  find(pred: (v: T, i: number) => boolean): T | undefined
  findIndex(pred: (v: T, i: number) => boolean): number
  fill(v: T, start?: number, end?: number): this
}
interface ObjectConstructor {
  assign<A extends object, B>(a: A, b: B): A & B
  values<T>(o: { [k: string]: T }): T[]
  entries<T>(o: { [k: string]: T }): [string, T][]
}
interface String {
  startsWith(s: string): boolean
  endsWith(s: string): boolean
  includes(s: string): boolean
}
interface Uint8Array {
  fill(v: number, start?: number, end?: number): this
}
interface Uint16Array {
  fill(v: number, start?: number, end?: number): this
}
interface Uint32Array {
  fill(v: number, start?: number, end?: number): this
}
interface Float32Array {
  fill(v: number, start?: number, end?: number): this
}

/** An Espruino pin object (D0..D39 on ESP32). */
interface Pin {
  read(): boolean
  write(v: boolean): void
}

interface EspruinoI2C {
  setup(opts: { scl: Pin; sda: Pin; bitrate?: number }): void
  writeTo(address: number | { address: number; stop?: boolean }, ...data: (number | number[] | Uint8Array | string)[]): void
  readFrom(address: number | { address: number; stop?: boolean }, quantity: number): Uint8Array
}

interface EspruinoSPI {
  setup(opts: { sck?: Pin; miso?: Pin; mosi?: Pin; baud?: number; mode?: number }): void
  send(data: Uint8Array, nss?: Pin): Uint8Array
  write(...data: (number | number[] | Uint8Array | string | Pin)[]): void
}

interface EspruinoE {
  toString(...data: (Uint8Array | ArrayBuffer | string | number[])[]): string
  toUint8Array(...data: (string | number[] | Uint8Array)[]): Uint8Array
  getSizeOf(v: unknown, depth?: number): number
  on(event: 'init' | 'kill', cb: () => void): void
  on(event: 'errorFlag', cb: (flags: string[]) => void): void
  getErrorFlags(): string[]
  /** Restarts the interpreter as at power-on (Storage is kept). */
  reboot(): void
}

interface EspruinoMemory {
  free: number
  usage: number
  total: number
  history: number
}

interface EspruinoProcess {
  memory(gc?: boolean): EspruinoMemory
  env: { VERSION: string; BOARD: string; [k: string]: unknown }
}

interface EspruinoStorage {
  write(name: string, data: string | Uint8Array | ArrayBuffer, offset?: number, size?: number): boolean
  read(name: string, offset?: number, length?: number): string | undefined
  readArrayBuffer(name: string): ArrayBuffer | undefined
  readJSON(name: string, noExceptions?: boolean): any
  writeJSON(name: string, data: unknown): boolean
  erase(name: string): void
  list(regex?: RegExp | string): string[]
  getFree(): number
  compact(): void
}

interface EspruinoSocket {
  write(data: string): boolean
  end(): void
  on(event: 'data', cb: (data: string) => void): void
  on(event: 'close' | 'end' | 'drain', cb: () => void): void
  on(event: 'error', cb: (err: unknown) => void): void
}

interface EspruinoNet {
  connect(opts: { host: string; port: number }, cb: () => void): EspruinoSocket
}

interface EspruinoTls {
  connect(opts: { host: string; port: number; ca?: string; key?: string; cert?: string }, cb: () => void): EspruinoSocket
}

interface EspruinoHttpResponse {
  statusCode: number | string
  on(event: 'data', cb: (data: string) => void): void
  on(event: 'close' | 'end', cb: () => void): void
}

interface EspruinoHttpRequest {
  on(event: 'error', cb: (err: unknown) => void): void
  end(data?: string): void
}

interface EspruinoHttp {
  get(url: string, cb: (res: EspruinoHttpResponse) => void): EspruinoHttpRequest
}

interface EspruinoWifi {
  connect(ssid: string, opts: { password?: string }, cb: (err: unknown) => void): void
  disconnect(cb?: () => void): void
  on(event: 'connected' | 'disconnected', cb: (details?: unknown) => void): void
  getIP(cb?: (err: unknown, ip: { ip: string }) => void): { ip: string }
}

interface EspruinoCrypto {
  SHA256(data: string | Uint8Array | ArrayBuffer): ArrayBuffer
  PBKDF2(pass: string | Uint8Array, salt: string | Uint8Array, opts: { iterations: number; keySize: number; hasher: string }): ArrayBuffer
}

declare const E: EspruinoE
declare const process: EspruinoProcess
declare const I2C1: EspruinoI2C
declare const I2C2: EspruinoI2C
declare const SPI1: EspruinoSPI
declare const SPI2: EspruinoSPI
declare function require(name: 'Storage'): EspruinoStorage
declare function require(name: 'net'): EspruinoNet
declare function require(name: 'tls'): EspruinoTls
declare function require(name: 'http'): EspruinoHttp
declare function require(name: 'Wifi'): EspruinoWifi
declare function require(name: 'crypto'): EspruinoCrypto
declare function analogRead(pin: Pin): number
declare function digitalRead(pin: Pin): number
declare function digitalWrite(pin: Pin, v: number | boolean): void
declare function pinMode(pin: Pin, mode: string): void
/** Seconds since the board's epoch (settable with setTime), microsecond resolution. */
declare function getTime(): number
declare function setTime(seconds: number): void
declare function print(...args: unknown[]): void
declare function setTimeout(cb: () => void, ms: number): number
declare function setInterval(cb: () => void, ms: number): number
declare function clearTimeout(id: number): void
declare function clearInterval(id: number): void
declare function changeInterval(id: number, ms: number): void
declare function btoa(s: string): string
declare function atob(s: string): string
declare const console: { log(...args: unknown[]): void }
declare const global: { [k: string]: unknown }

declare const D2: Pin
declare const D4: Pin
declare const D5: Pin
declare const D12: Pin
declare const D13: Pin
declare const D14: Pin
declare const D15: Pin
declare const D16: Pin
declare const D17: Pin
declare const D18: Pin
declare const D19: Pin
declare const D21: Pin
declare const D22: Pin
declare const D23: Pin
declare const D25: Pin
declare const D26: Pin
declare const D27: Pin
declare const D32: Pin
declare const D33: Pin
declare const D34: Pin
declare const D35: Pin
declare const D36: Pin
declare const D39: Pin
