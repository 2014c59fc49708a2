/**
 * Espruino's own globals, as the ESP32 build has them: `print` and
 * `console`, `E`, `process`, `save`/`load`/`reset`, `Modules` and
 * `require`, `eval` (behind the syntax gate), `btoa`/`atob`. The board
 * supplies what they reach (Storage, the native modules, the memory
 * report); the hardware globals live in peripherals/ and clock.ts.
 */
import { VarCounter, JSVAR_BYTES } from './memory.ts'
import { toBytes, bytesToBinaryString, formatValue } from './format.ts'
import { Interrupt } from './errors.ts'
import type { BoardConsole } from './board-console.ts'
import type { Sandbox } from './sandbox.ts'

/** What the globals reach on the board. */
export interface GlobalsHost {
  readonly id: string
  /** For process.memory(). */
  memory(): { usage: number; free: number; total: number }
  /** A string a built-in allocates (may interrupt the callback: out of memory). */
  allocString(len: number, flat: boolean): void
  /** E.getErrorFlags(): the interpreter's error flags, reset by reading them. */
  takeErrorFlags(): string[]
  /** E.setBootCode(code). */
  setBootCode(code: unknown): void
  /** save(), load() and reset(clearFlash) at the REPL. */
  save(): void
  load(): void
  reset(clearFlash: unknown): void
  /** The modules `require` finds in the firmware (crypto, Storage, Wifi, net, tls). */
  natives: Record<string, () => unknown>
}

/** `print` and `console.log/warn/error/info/debug`: one console line each. */
export function installConsole(sb: Sandbox, out: BoardConsole): void {
  const print = (...a: unknown[]): void => out.write(a.map((x) => formatValue(x)).join(' '))
  sb.def('print', print)
  const consoleObj = new sb.C.Object() as Record<string, unknown>
  consoleObj.log = print
  consoleObj.warn = print
  consoleObj.error = print
  consoleObj.info = print
  consoleObj.debug = print
  Object.defineProperty(sb.G, 'console', { value: consoleObj, writable: true, configurable: true, enumerable: false })
}

export function installEspruino(sb: Sandbox, host: GlobalsHost): void {
  const g = sb.G
  const C = sb.C
  g.E = espruinoE(sb, host)
  g.process = processObject(sb, host)

  sb.def('save', () => host.save())
  sb.def('load', () => host.load())
  sb.def('reset', (clearFlash?: unknown) => host.reset(clearFlash))

  // ---- modules ----
  const cache = new Map<string, { src?: string; fn?: unknown }>()
  const Modules = new C.Object() as Record<string, unknown>
  Modules.addCached = (name: unknown, mod: unknown) => {
    cache.set(String(name), typeof mod === 'string' ? { src: mod } : { fn: mod })
  }
  Modules.removeCached = (name: unknown) => cache.delete(String(name))
  Modules.removeAllCached = () => cache.clear()
  Modules.getCached = () => sb.copy([...cache.keys()])
  g.Modules = Modules
  const loaded = new Map<string, unknown>()
  sb.def('require', (name: unknown) => {
    const n = String(name)
    if (loaded.has(n)) return loaded.get(n)
    let m: unknown
    const cached = cache.get(n)
    if (cached) {
      if (cached.fn !== undefined) {
        const exportsObj = new C.Object()
        const mod = sb.object({ exports: exportsObj })
        // Module code refers to free `exports`/`module`: re-create the function inside a scope that has them.
        const wrap = C.eval(`(function (exports, module) { return (${String(cached.fn)}) })`) as (e: unknown, m: unknown) => (this: unknown) => void
        wrap(exportsObj, mod).call(exportsObj)
        m = mod.exports
      } else {
        m = C.eval(`(function(){var exports={},module={exports:exports};${cached.src}\nreturn module.exports})()`)
      }
    } else if (host.natives[n]) m = host.natives[n]()
    else throw new C.Error(`Module ${n} not found`)
    loaded.set(n, m)
    return m
  })
  sb.def('eval', (code: unknown) => (typeof code === 'string' ? sb.evalGated(code) : code))
  sb.def('btoa', (s: unknown) => Buffer.from(String(s), 'latin1').toString('base64'))
  sb.def('atob', (s: unknown) => Buffer.from(String(s), 'base64').toString('latin1'))
}

/** The `E` object (an emitter: E.on('init') runs after boot code). */
function espruinoE(sb: Sandbox, host: GlobalsHost): Record<string, unknown> {
  const E = sb.emitter()
  E.toString = (...a: unknown[]) => {
    const bytes = toBytes(a)
    // Espruino makes the result a flat string (one block) when it can.
    host.allocString(bytes.length, true)
    return bytesToBinaryString(bytes)
  }
  E.getErrorFlags = () => sb.copy(host.takeErrorFlags())
  E.toUint8Array = (...a: unknown[]) => sb.uint8Array(toBytes(a))
  E.toArrayBuffer = (s: unknown) => (E.toUint8Array as (x: unknown) => Uint8Array)(s).buffer
  E.getSizeOf = (v: unknown) => {
    const c = new VarCounter(sb.builtins)
    return typeof v === 'object' || typeof v === 'function' ? (v === null ? 0 : c.object(v as object)) : 1 + c.value(v)
  }
  let hw = 0x6d2b79f5
  E.hwRand = () => {
    // Same sequence after every boot, like the unseeded ESP32 port.
    hw = (hw + 0x6d2b79f5) | 0
    let t = Math.imul(hw ^ (hw >>> 15), 1 | hw)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return (t ^ (t >>> 14)) | 0
  }
  E.setBootCode = (code: unknown, _always?: unknown) => host.setBootCode(code)
  E.reboot = () => {
    throw new Interrupt('reboot')
  }
  E.setTimeZone = (_hours: unknown) => {
    // Accepted for firmware that sets it; the board clock itself stays UTC.
  }
  E.kickWatchdog = () => undefined
  E.enableWatchdog = () => undefined
  E.getTemperature = () => 40
  E.getAnalogVRef = () => 3.3
  return E
}

function processObject(sb: Sandbox, host: GlobalsHost): Record<string, unknown> {
  const proc = new sb.C.Object() as Record<string, unknown>
  proc.version = '2v25'
  proc.env = sb.object({
    VERSION: '2v25', GIT_COMMIT: 'virtual', BOARD: 'ESP32', RAM: 532480, FLASH: 0, SPIFLASH: 4194304,
    STORAGE: 917504, SERIAL: host.id, CONSOLE: 'Serial1', MODULES: 'Flash,Storage,heatshrink,net,dgram,http,NetworkJS,Wifi,ESP32,TelnetServer,crypto,neopixel',
    EXPTR: 0,
  })
  proc.memory = () => {
    const m = host.memory()
    return sb.object({ free: m.free, usage: m.usage, total: m.total, history: 0, gc: 0, gctime: 0, blocksize: JSVAR_BYTES })
  }
  return proc
}
