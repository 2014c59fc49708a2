import { print, type Command, type CliIO } from '../command.ts'
import { parseCli, requireOpt, intOpt, stringOpt, type Parsed } from '../args.ts'
import { CliError, UsageError } from '../errors.ts'
import { DEFAULTS } from '../../firmware/config.ts'

/** A byte stream to an Espruino REPL: a serial port or a TCP socket. */
interface Wire {
  write(s: string): void
  onData(cb: (s: string) => void): void
  close(): Promise<void>
}

async function openTcp(url: string): Promise<Wire> {
  const m = /^tcp:\/\/([^:/]+):(\d+)\/?$/.exec(url)
  if (!m) throw new UsageError(`--port: expected a serial device path or tcp://HOST:PORT, got '${url}'`)
  const net = await import('node:net')
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: m[1]!, port: Number(m[2]) })
    s.once('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'ECONNREFUSED' ? 'nothing is listening there' : e.code === 'ENOTFOUND' ? 'unknown host' : e.message
      reject(new CliError(`cannot open ${url}: ${why}`))
    })
    s.once('connect', () => {
      s.removeAllListeners('error')
      s.on('error', () => {})
      resolve({
        write: (d) => void s.write(Buffer.from(d, 'latin1')),
        onData: (cb) => void s.on('data', (b: Buffer) => cb(b.toString('latin1'))),
        close: () => new Promise((r) => { s.end(); s.destroy(); r() }),
      })
    })
  })
}

async function openSerial(path: string, baud: number): Promise<Wire> {
  const { SerialPort } = await import('serialport')
  const port = new SerialPort({ path, baudRate: baud, autoOpen: false, lock: true })
  await new Promise<void>((resolve, reject) => {
    port.open((err) => {
      if (!err) return resolve()
      const msg = err.message
      if (/ENOENT|No such file|cannot find|not found/i.test(msg)) reject(new CliError(`no serial port at ${path}${listHint()}`))
      else if (/busy|lock|EBUSY|EACCES.*lock/i.test(msg)) reject(new CliError(`serial port ${path} is busy (another program has it open)`))
      else if (/EACCES|permission/i.test(msg)) reject(new CliError(`no permission to open ${path} (add yourself to the dialout group)`))
      else reject(new CliError(`cannot open serial port ${path}: ${msg}`))
    })
  })
  return {
    write: (d) => void port.write(Buffer.from(d, 'latin1')),
    onData: (cb) => void port.on('data', (b: Buffer) => cb(b.toString('latin1'))),
    close: () => new Promise((r) => (port.isOpen ? port.close(() => r()) : r())),
  }
}

let knownPorts: string[] | null = null
function listHint(): string {
  return knownPorts && knownPorts.length ? ` (ports found: ${knownPorts.join(', ')})` : ''
}

/** Lists serial ports; `[]` where listing is impossible (no udevadm in containers/CI). */
export async function listSerialPorts(): Promise<string[]> {
  try {
    const { SerialPort } = await import('serialport')
    return (await SerialPort.list()).map((p) => p.path)
  } catch {
    return []
  }
}

/**
 * The Espruino REPL as an RPC channel. Every command line starts with DLE (0x10), which
 * tells Espruino not to echo it; results come back between markers built so that an
 * echoed command can never look like an answer.
 */
export class ReplLink {
  private buf = ''
  private n = 0
  private waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = []
  /** Everything the board printed (for error messages and async prints). */
  log = ''

  private constructor(private wire: Wire) {
    wire.onData((d) => {
      this.buf += d
      this.log = (this.log + d).slice(-20000)
      this.check()
    })
  }

  static async open(port: string, baud: number): Promise<ReplLink> {
    if (port.startsWith('tcp://')) return new ReplLink(await openTcp(port))
    knownPorts = await listSerialPorts()
    return new ReplLink(await openSerial(port, baud))
  }

  private check(): void {
    for (let i = 0; i < this.waiters.length; i++) {
      const w = this.waiters[i]!
      const m = w.re.exec(this.buf)
      if (m) {
        this.waiters.splice(i--, 1)
        this.buf = this.buf.slice(m.index + m[0].length)
        w.resolve(m)
      }
    }
    if (this.buf.length > 100000) this.buf = this.buf.slice(-50000)
  }

  /** Waits for output matching `re` (e.g. an asynchronous print). */
  waitFor(re: RegExp, ms: number, what: string): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const w = { re, resolve: (m: RegExpExecArray) => { clearTimeout(timer); resolve(m) } }
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1)
        const tail = this.log.trim().split('\n').slice(-3).join(' | ')
        reject(new CliError(`the board did not answer (${what}) within ${ms} ms${tail ? `; last output: ${tail}` : ''}`))
      }, ms)
      this.waiters.push(w)
      this.check()
    })
  }

  send(line: string): void {
    this.wire.write('\x10' + line + '\n')
  }

  /** Evaluates `expr` on the board; resolves with its JSON, or rejects with the board's error. */
  async call(expr: string, ms = 5000, what = expr.slice(0, 40)): Promise<unknown> {
    const id = ++this.n
    const tag = `R${id}:`
    this.send(`(function(){var r;try{r=JSON.stringify(${expr})}catch(e){r=JSON.stringify({__err:String(e)})}print("@@"+"${tag}"+r+"@@")})()`)
    const m = await this.waitFor(new RegExp(`@@${tag}(.*?)@@`), ms, what)
    const v = m[1] === 'undefined' || m[1] === '' ? undefined : JSON.parse(m[1]!)
    if (v && typeof v === 'object' && '__err' in (v as object)) throw new CliError(`board error in ${what}: ${(v as { __err: string }).__err}`)
    return v
  }

  /** Interrupts whatever runs and checks that an interpreter answers. */
  async hello(): Promise<void> {
    this.wire.write('\x03')
    await new Promise((r) => setTimeout(r, 100))
    const v = await this.call('process.env.VERSION', 3000, 'hello')
    if (typeof v !== 'string') throw new CliError(`unexpected answer from the board: ${JSON.stringify(v)}`)
  }

  /** Sends a line that restarts what runs (`reset()`, `load()`), gives it `ms` and checks the interpreter answers again. */
  async restart(line: string, ms: number): Promise<void> {
    this.send(line)
    await new Promise((r) => setTimeout(r, ms))
    await this.hello()
  }

  close(): Promise<void> {
    return this.wire.close()
  }
}

/** --port and --baud, as `flash` and `provision` take them. */
export const boardOptions = { port: { type: 'string' }, baud: { type: 'string' } } as const

export function boardTarget(p: Parsed): { port: string; baud: number } {
  return { port: requireOpt(p, 'port'), baud: intOpt(p, 'baud', DEFAULTS.baud, 300, 4000000) }
}

/** Opens the board's REPL, checks that an interpreter answers, runs `f`, and closes the link whatever happens. */
export async function withBoard<T>(t: { port: string; baud: number }, f: (link: ReplLink) => Promise<T>): Promise<T> {
  const link = await ReplLink.open(t.port, t.baud)
  try {
    await link.hello()
    return await f(link)
  } finally {
    await link.close()
  }
}

export const CHUNK = 768

/**
 * Writes `code` to Storage file `name` in chunks (base64 lines, so any byte survives the
 * REPL), checking each write's result, then reads back a SHA-256 of the file and compares.
 */
export async function uploadToStorage(link: ReplLink, name: string, code: string, progress: (done: number, total: number) => void): Promise<string> {
  const bytes = Buffer.from(code, 'latin1')
  const total = bytes.length
  await link.call(`require("Storage").erase(${JSON.stringify(name)})`, 5000, 'erase')
  for (let off = 0; off < total; off += CHUNK) {
    const b64 = bytes.subarray(off, off + CHUNK).toString('base64')
    const args = off === 0 ? `,0,${total}` : `,${off}`
    let ok: unknown
    let why = 'the board answered false'
    try {
      ok = await link.call(`require("Storage").write(${JSON.stringify(name)},atob("${b64}")${args})`, 10000, `write at ${off}`)
    } catch (e) {
      // A board that stops answering mid-upload is a different failure: keep its message.
      if (/did not answer/.test((e as Error).message)) throw e
      why = (e as Error).message.replace(/^board error in write at \d+: (Error: )?/, '')
    }
    if (ok !== true) {
      // A half-written bundle must not run at the next boot: remove it.
      await link.call(`require("Storage").erase(${JSON.stringify(name)})`, 5000, 'erase after a failed write').catch(() => undefined)
      const free = await link.call('require("Storage").getFree()').catch(() => '?')
      throw new CliError(`write to ${name} failed at byte ${off} of ${total}: ${why} (Storage free: ${String(free)} bytes); the board keeps no partial firmware in ${name}, flash again`)
    }
    progress(Math.min(total, off + CHUNK), total)
  }
  const want = (await import('node:crypto')).createHash('sha256').update(bytes).digest('base64')
  const got = await link.call(`(function(){var s=require("Storage").read(${JSON.stringify(name)});return s===undefined?"missing":btoa(E.toString(new Uint8Array(require("crypto").SHA256(s))))})()`, 10000, 'verify')
  if (got !== want) throw new CliError(`verification failed: ${name} on the board has SHA-256 ${String(got)}, expected ${want}`)
  return want
}

export async function readBundle(path: string): Promise<string> {
  const { readFile } = await import('node:fs/promises')
  try {
    return (await readFile(path)).toString('latin1')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new CliError(`no bundle at ${path}; run 'mhealth firmware build' first or pass --bundle`)
    throw e
  }
}

async function flash(argv: string[], io: CliIO): Promise<number> {
  const p = parseCli(argv, { ...boardOptions, bundle: { type: 'string' }, file: { type: 'string' }, 'no-start': { type: 'boolean' } })
  const board = boardTarget(p)
  const file = stringOpt(p, 'file') ?? '.bootcde'
  if (!/^[\x21-\x7e]{1,28}$/.test(file)) throw new UsageError(`--file: expected a Storage name of 1..28 printable characters, got '${file}'`)
  const bundlePath = stringOpt(p, 'bundle')
  let code: string
  if (bundlePath) code = await readBundle(bundlePath)
  else {
    const { buildFirmware } = await import('./firmware.ts')
    code = (await buildFirmware()).code
  }
  return withBoard(board, async (link) => {
    // Stop the running firmware so its timers and sockets do not compete with the upload.
    await link.restart('reset()', 300)
    let last = -1
    const sha = await uploadToStorage(link, file, code, (done, total) => {
      const pct = Math.floor((100 * done) / total)
      if (pct >= last + 10 || done === total) {
        io.stderr.write(`uploading ${file}: ${done}/${total} bytes (${pct}%)\n`)
        last = pct
      }
    })
    print(io, `wrote ${code.length} bytes to Storage '${file}', verified (SHA-256 ${sha})`)
    if (!p.values['no-start']) {
      link.send('load()')
      print(io, 'board restarted: the firmware runs from flash at every boot')
    }
    return 0
  })
}

export const command: Command = {
  name: 'flash',
  summary: 'upload the firmware bundle to a board over serial (or tcp://) and verify it',
  usage: [
    `Usage: mhealth flash --port PORT [--baud ${DEFAULTS.baud}] [--bundle dist/firmware.js] [--file .bootcde] [--no-start]`,
    '',
    "Writes the firmware into the board's Storage (.bootcde, run at every boot) through the",
    'Espruino REPL, in checked chunks, then verifies a SHA-256 of what the board holds.',
    '',
    'Options:',
    '  --port PORT     serial device (/dev/ttyUSB0) or tcp://HOST:PORT',
    `  --baud N        serial speed (default ${DEFAULTS.baud})`,
    '  --bundle FILE   a bundle from `mhealth firmware build` (default: build now)',
    '  --file NAME     Storage file to write (default .bootcde)',
    '  --no-start      do not restart the board after writing',
  ].join('\n'),
  run: flash,
}
