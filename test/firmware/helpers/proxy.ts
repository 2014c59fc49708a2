/**
 * A TCP proxy between the firmware's client and a broker, to cut the link on demand
 * (a WiFi drop), refuse new connections (gateway down) or black-hole one direction.
 */
import net from 'node:net'

export class LinkProxy {
  server: net.Server
  conns = new Set<net.Socket>()
  up = true
  /** Drop broker->client bytes (e.g. PUBACKs) while true. */
  blackholeDown = false
  port = 0

  constructor(readonly targetPort: number) {
    this.server = net.createServer((c) => {
      if (!this.up) {
        c.destroy()
        return
      }
      const u = net.connect({ host: '127.0.0.1', port: this.targetPort })
      this.conns.add(c)
      this.conns.add(u)
      c.on('data', (d) => u.write(d))
      u.on('data', (d) => {
        if (!this.blackholeDown) c.write(d)
      })
      const close = () => {
        c.destroy()
        u.destroy()
        this.conns.delete(c)
        this.conns.delete(u)
      }
      c.on('close', close)
      u.on('close', close)
      c.on('error', close)
      u.on('error', close)
    })
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()))
    this.port = (this.server.address() as net.AddressInfo).port
    return this.port
  }

  /** Cut every open connection; `up=false` also refuses new ones. */
  cut(up = false): void {
    this.up = up
    for (const c of this.conns) c.destroy()
    this.conns.clear()
  }

  async close(): Promise<void> {
    this.cut()
    await new Promise<void>((r) => this.server.close(() => r()))
  }
}
