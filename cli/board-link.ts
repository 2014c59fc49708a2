/**
 * The serial (or TCP) link to a board's Espruino REPL that `mhealth flash` and
 * `mhealth provision` drive: open it, send lines, wait for answers, notice a restart.
 */
import type { Parsed } from './args.ts'
import { CliError, UsageError } from './errors.ts'
import { intOpt, requireOpt } from './args.ts'
import { DEFAULTS } from '../firmware/config.ts'


/** A byte stream to an Espruino REPL: a serial port or a TCP socket. */
interface Wire {
  write(s: string): void
  onData(cb: (s: string) => void): void
  /** The port or socket went away (board unplugged or powered off, network cut). */
  onClose(cb: () => void): void
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
        onClose: (cb) => void s.on('close', cb),
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
    onClose: (cb) => void port.on('close', cb),
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

/** How a link to the board failed, as opposed to the board answering with an error. */
export class LinkError extends CliError {
  constructor(message: string, readonly why: 'silent' | 'closed' | 'restarted') {
    super(message)
  }
}

interface Waiter {
  re: RegExp
  what: string
  /** A restart of the interpreter (the banner) fails this wait: set while Storage is being written. */
  watchRestart: boolean
  resolve: (m: RegExpExecArray) => void
  reject: (e: Error) => void
}

/** Espruino prints its logo, ending in "espruino.com", whenever the interpreter starts afresh. */
const BANNER_RE = /espruino\.com/

/**
 * The Espruino REPL as an RPC channel. Every command line starts with DLE (0x10), which
 * tells Espruino not to echo it; results come back between markers built so that an
 * echoed command can never look like an answer.
 */
export class ReplLink {
  private buf = ''
  private n = 0
  private waiters: Waiter[] = []
  private closed = false
  /** Everything the board printed (for error messages and async prints). */
  log = ''

  private constructor(private wire: Wire) {
    wire.onData((d) => {
      this.buf += d
      this.log = (this.log + d).slice(-20000)
      // The tail covers a banner split across two reads.
      if (BANNER_RE.test(this.log.slice(-(d.length + 16)))) this.fail((w) => w.watchRestart, (w) => new LinkError(`the board restarted during ${w.what} (power lost, brown-out or crash)`, 'restarted'))
      this.check()
    })
    wire.onClose(() => {
      this.closed = true
      this.fail(() => true, (w) => new LinkError(`the link to the board closed during ${w.what}`, 'closed'))
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

  private fail(which: (w: Waiter) => boolean, err: (w: Waiter) => Error): void {
    const hit = this.waiters.filter(which)
    this.waiters = this.waiters.filter((w) => !which(w))
    for (const w of hit) w.reject(err(w))
  }

  /** Waits for output matching `re` (e.g. an asynchronous print). */
  waitFor(re: RegExp, ms: number, what: string, opts: { watchRestart?: boolean } = {}): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new LinkError(`the link to the board closed before ${what}`, 'closed'))
      const w: Waiter = {
        re,
        what,
        watchRestart: !!opts.watchRestart,
        resolve: (m) => { clearTimeout(timer); resolve(m) },
        reject: (e) => { clearTimeout(timer); reject(e) },
      }
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(w)
        if (i >= 0) this.waiters.splice(i, 1)
        const tail = this.log.trim().split('\n').slice(-3).join(' | ')
        reject(new LinkError(`the board did not answer (${what}) within ${ms} ms${tail ? `; last output: ${tail}` : ''}`, 'silent'))
      }, ms)
      this.waiters.push(w)
      this.check()
    })
  }

  send(line: string): void {
    if (!this.closed) this.wire.write('\x10' + line + '\n')
  }

  /** Evaluates `expr` on the board; resolves with its JSON, or rejects with the board's error. */
  async call(expr: string, ms = 5000, what = expr.slice(0, 40), opts: { watchRestart?: boolean } = {}): Promise<unknown> {
    const id = ++this.n
    const tag = `R${id}:`
    this.send(`(function(){var r;try{r=JSON.stringify(${expr})}catch(e){r=JSON.stringify({__err:String(e)})}print("@@"+"${tag}"+r+"@@")})()`)
    const m = await this.waitFor(new RegExp(`@@${tag}(.*?)@@`), ms, what, opts)
    const v = m[1] === 'undefined' || m[1] === '' ? undefined : JSON.parse(m[1]!)
    if (v && typeof v === 'object' && '__err' in (v as object)) throw new CliError(`board error in ${what}: ${(v as { __err: string }).__err}`)
    return v
  }

  /** Interrupts whatever runs and checks that an interpreter answers. */
  async hello(): Promise<void> {
    if (!this.closed) this.wire.write('\x03')
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
