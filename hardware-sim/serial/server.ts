/**
 * A virtual board's console on `tcp://127.0.0.1:PORT` (what the `espruino`
 * tools call a "Node Socket" port, like Espruino's own telnet console on
 * an ESP32) and, optionally, on a pseudo-terminal for people and for
 * `serialport`. Each connection gets its own REPL session on the board.
 */
import net from 'node:net'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { VirtualBoard } from '../board/board.ts'
import { ReplSession } from './repl.ts'

export interface SerialServer {
  /** `tcp://127.0.0.1:PORT`, for `espruino -p`. */
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

/** Serves the board's REPL over TCP. Port 0 (default) picks a free port. */
export async function startSerialServer(board: VirtualBoard, opts: { port?: number; host?: string } = {}): Promise<SerialServer> {
  const host = opts.host ?? '127.0.0.1'
  const sockets = new Set<net.Socket>()
  const server = net.createServer((sock) => {
    sockets.add(sock)
    sock.setNoDelay(true)
    const session = new ReplSession(board, (s) => {
      if (!sock.destroyed) sock.write(Buffer.from(s, 'latin1'))
    })
    sock.on('data', (d) => session.input(d.toString('latin1')))
    const done = (): void => {
      session.detach()
      sockets.delete(sock)
    }
    sock.on('close', done)
    sock.on('error', done)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, host, () => resolve())
  })
  const port = (server.address() as net.AddressInfo).port
  return {
    url: `tcp://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

export interface PtyBridge {
  /** The slave side, e.g. /dev/pts/3: open it with a terminal program or `serialport`. */
  readonly path: string
  close(): Promise<void>
}

const PTY_HELPER = join(dirname(fileURLToPath(import.meta.url)), 'pty-bridge.py')

/**
 * Exposes a serial server on a pseudo-terminal. Node cannot open a pty
 * without a native module, so a tiny python3 child (standard library `pty`
 * module) owns the master side and copies bytes to and from the TCP port.
 * Raw mode: no echo or line editing by the tty layer; the REPL does that.
 */
export async function startPty(server: SerialServer, opts: { python?: string } = {}): Promise<PtyBridge> {
  if (!existsSync(PTY_HELPER)) throw new Error(`pty helper missing at ${PTY_HELPER}`)
  const child: ChildProcess = spawn(opts.python ?? 'python3', [PTY_HELPER, '127.0.0.1', String(server.port)], { stdio: ['ignore', 'pipe', 'pipe'] })
  const path = await new Promise<string>((resolve, reject) => {
    let out = ''
    let err = ''
    child.stdout!.on('data', (d) => {
      out += d
      const m = /^PTY (\S+)$/m.exec(out)
      if (m) resolve(m[1])
    })
    child.stderr!.on('data', (d) => (err += d))
    child.on('error', (e) => reject(new Error(`cannot start python3 for the pty bridge: ${e.message}`)))
    child.on('exit', (code) => reject(new Error(`pty bridge exited with code ${code}: ${err.trim()}`)))
  })
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}
