/**
 * What the firmware sees of the flash (storage.ts models the flash itself):
 * `require("Storage")` and its StorageFile objects, `E.setBootCode`,
 * `save()`, and the code a boot runs. Storage failures reach the firmware as
 * Errors with Espruino's messages; a brown-out during a write reboots the
 * board whatever the firmware does about it.
 *
 * `save()` cannot snapshot a V8 heap: it stores the code uploaded to RAM
 * since the last reset in `.varimg`, and boot replays it.
 *
 * When the board charges time, every write and erase costs its flash time
 * (page programs, sector erases: BoardCost.flash), worked out from what the
 * operation changed in the Storage area; the ESP32 runs nothing from flash
 * while it is written, so the interpreter waits all of it.
 */
import { FlashStorage, StorageFiles, StorageError, BrownOut, NAME_BYTES } from './storage.ts'
import { toBytes } from './format.ts'
import type { Sandbox } from './sandbox.ts'
import type { BoardCost, FlashPayload } from '../cost/board-cost.ts'

const BOOT_FILES = ['.boot0', '.boot1', '.boot2', '.boot3']
/** REPL lines save() does not replay. */
const HOUSEKEEPING = /^\s*(save|reset|load|echo|print)\s*\(/

/** What the Storage API needs from its board. */
export interface StorageHost {
  /** The current interpreter (errors are thrown in its realm). */
  sandbox(): Sandbox
  /** A brown-out cut a write: the board must reboot after the current callback. */
  powerLost(): void
  print(line: string): void
  /** Charges flash time when the board charges time. */
  readonly cost?: BoardCost | null
}

/** One file of the code a boot runs. */
export interface BootSource {
  label: string
  code: string
  /** Run from memory-mapped flash (its functions' text stays in flash). */
  fromFlash: boolean
}

export class StorageApi {
  private readonly files: StorageFiles
  /** Source executed since the last reset (what `save()` keeps). */
  private uploaded: string[] = []
  /** Recent long strings read from Storage: `eval` of one runs from flash. */
  private flashStrings: string[] = []

  constructor(private readonly storage: FlashStorage, private readonly host: StorageHost) {
    this.files = new StorageFiles(storage)
  }

  /** Code sent to RAM (an upload, a REPL line): kept for save(), without the REPL housekeeping lines. */
  recordUpload(code: string): void {
    if (!HOUSEKEEPING.test(code)) this.uploaded.push(code)
  }

  /** A fresh interpreter: nothing uploaded since. */
  forgetUploads(): void {
    this.uploaded = []
  }

  /** Whether `code` is a string the firmware just read from Storage (eval of it runs from flash). */
  isFlashString(code: string): boolean {
    return this.flashStrings.includes(code)
  }

  /**
   * The code a boot runs, read as it is reached (a boot file may write the next one):
   * .boot0-3, then .bootcde, or else the code save() stored.
   */
  *bootCode(): Generator<BootSource> {
    const st = this.storage
    for (const f of BOOT_FILES) {
      const b = st.read(f)
      if (b) yield { label: f, code: b.toString('latin1'), fromFlash: true }
    }
    if (st.size('.bootcde') !== undefined) {
      const b = st.read('.bootcde')
      if (b) yield { label: '.bootcde', code: b.toString('latin1'), fromFlash: true }
    } else if (st.size('.varimg') !== undefined) {
      // save(): the code uploaded before it is replayed (see docs: we cannot snapshot a V8 heap).
      yield { label: '.varimg', code: st.read('.varimg')!.toString('latin1'), fromFlash: false }
    }
  }

  /** `save()` at the REPL. */
  save(): void {
    const code = this.uploaded.join('\n')
    this.call(() => {
      this.storage.erase('.varimg')
      if (code.length) this.storage.write('.varimg', Buffer.from(code, 'latin1'))
    }, { bytes: code.length, fileOffset: 0 })
    this.host.print('Compacting Flash...')
    this.host.print('Saving code...')
  }

  /** `reset(true)`: the saved code and the boot code go. */
  clearSaved(): void {
    this.storage.erase('.varimg')
    this.storage.erase('.bootcde')
  }

  /** `E.setBootCode(code)`: an empty string removes it. */
  setBootCode(code: unknown): void {
    const s = String(code ?? '')
    if (s.length === 0) this.storage.erase('.bootcde')
    else this.call(() => this.storage.write('.bootcde', Buffer.from(s, 'latin1')), { bytes: s.length, fileOffset: 0 })
  }

  /** `require("Storage")`. */
  module(sb: Sandbox): unknown {
    const C = sb.C
    const S = new C.Object() as Record<string, unknown>
    const st = this.storage
    const call = <T>(fn: () => T, payload?: FlashPayload | null, eraseAll?: boolean): T => this.call(fn, payload, eraseAll)
    const name = (n: unknown): string => {
      if (typeof n !== 'string') throw new C.Error(`expected a file name string, got ${typeof n}`)
      return n
    }
    S.read = (n: unknown, offset?: unknown, length?: unknown) => {
      const b = st.read(name(n), Number(offset ?? 0), length === undefined ? undefined : Number(length))
      return b ? this.remember(b.toString('latin1')) : undefined
    }
    S.readArrayBuffer = (n: unknown) => {
      const b = st.read(name(n))
      return b ? sb.arrayBuffer(b) : undefined
    }
    S.readJSON = (n: unknown, noExceptions?: unknown) => {
      const b = st.read(name(n))
      if (!b) return undefined
      try {
        return C.JSON.parse(b.toString('latin1'))
      } catch (e) {
        if (noExceptions) return undefined
        throw e
      }
    }
    S.write = (n: unknown, data: unknown, offset?: unknown, size?: unknown) => {
      const bytes = Uint8Array.from(toBytes(data))
      const at = Number(offset ?? 0)
      return call(() => st.write(name(n), bytes, at, Number(size ?? 0)), { bytes: bytes.length, fileOffset: Number.isFinite(at) ? at : 0 })
    }
    S.writeJSON = (n: unknown, v: unknown) => {
      const text = String(C.JSON.stringify(v))
      return call(() => st.write(name(n), Buffer.from(text, 'latin1')), { bytes: text.length, fileOffset: 0 })
    }
    S.erase = (n: unknown) => call(() => st.erase(name(n)))
    S.eraseAll = () => call(() => st.eraseAll(), null, true)
    S.compact = () => call(() => st.compact())
    S.getFree = () => st.getFree()
    S.getStats = () => sb.object({ ...st.getStats() })
    S.list = (re?: unknown) => {
      let names = st.list()
      if (re && typeof (re as RegExp).test === 'function') names = names.filter((x) => (re as RegExp).test(x))
      else if (typeof re === 'string') names = names.filter((x) => x.includes(re))
      return sb.copy(names)
    }
    S.open = (n: unknown, mode: unknown) => this.open(sb, name(n), String(mode))
    return S
  }

  /** `Storage.open(name, mode)`: a StorageFile (text in page-sized chunks, see storage.ts). */
  private open(sb: Sandbox, fname: string, mode: string): unknown {
    const C = sb.C
    if (!['r', 'w', 'a'].includes(mode)) throw new C.Error(`Invalid mode ${JSON.stringify(mode)}: expected 'r', 'w' or 'a'`)
    sb.rethrow(() => StorageFiles.checkName(fname))
    if (fname.length > NAME_BYTES - 1) throw new C.Error('Invalid filename')
    const sf = this.files
    if (mode === 'w') this.call(() => sf.erase(fname))
    let pos = 0
    const f = new C.Object() as Record<string, unknown>
    f.name = fname
    f.mode = mode
    f.write = (data: unknown) => {
      if (mode === 'r') throw new C.Error("Can't write in read mode")
      const bytes = Uint8Array.from(toBytes(data))
      this.call(() => sf.append(fname, bytes), { bytes: bytes.length, fileOffset: null })
    }
    f.read = (len: unknown) => {
      const n = Number(len)
      const b = sf.read(fname, pos, Number.isFinite(n) && n > 0 ? n : 0)
      if (b.length === 0) return undefined
      pos += b.length
      return b.toString('latin1')
    }
    f.readLine = () => {
      const b = sf.read(fname, pos, 4096)
      if (b.length === 0) return undefined
      const nl = b.indexOf(10)
      const take = nl < 0 ? b.length : nl + 1
      pos += take
      return b.subarray(0, take).toString('latin1')
    }
    f.getLength = () => sf.length(fname)
    f.erase = () => this.call(() => sf.erase(fname))
    return f
  }

  private remember(s: string): string {
    if (s.length > 256) {
      this.flashStrings.push(s)
      if (this.flashStrings.length > 8) this.flashStrings.shift()
    }
    return s
  }

  /**
   * Runs a Storage operation, turning host errors into Espruino errors and brown-outs into a
   * reboot; charges its flash time (from the Storage counters before and after) when the
   * board charges time.
   */
  private call<T>(fn: () => T, payload: FlashPayload | null = null, eraseAll = false): T {
    const cost = this.host.cost
    if (!cost) return this.guard(fn)
    const before = this.storage.getStats()
    try {
      return this.guard(fn)
    } finally {
      cost.flash(before, this.storage.getStats(), payload, eraseAll)
    }
  }

  private guard<T>(fn: () => T): T {
    try {
      return fn()
    } catch (e) {
      if (e instanceof BrownOut) {
        // Power is gone whatever the firmware does next: a try/catch around the write must
        // not be able to swallow the reboot.
        this.host.powerLost()
        throw e
      }
      if (e instanceof StorageError) throw this.host.sandbox().error(e.message)
      throw e
    }
  }
}
