/**
 * A TCP proxy between simulated boards and the gateway that can fail on
 * command: `cut(ms)` resets every connection and refuses new ones for `ms`,
 * which is what a board sees when the gateway restarts or the clinic network
 * drops. Boards connect to the proxy's port instead of the gateway's.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'
import { once } from 'node:events'

export class FaultProxy {
  private server: Server
  private sockets = new Set<Socket>()
  private downUntil = 0
  private restoreTimer: NodeJS.Timeout | null = null
  /** Connections accepted and refused, for reports. */
  readonly stats = { accepted: 0, refused: 0, cuts: 0 }

  constructor(private target: { host: string; port: number }) {
    this.server = createServer((client) => this.onClient(client))
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<number> {
    this.server.listen(port, host)
    await once(this.server, 'listening')
    return (this.server.address() as { port: number }).port
  }

  get port(): number {
    return (this.server.address() as { port: number }).port
  }

  get isDown(): boolean {
    return Date.now() < this.downUntil
  }

  private onClient(client: Socket): void {
    if (this.isDown) {
      this.stats.refused++
      client.destroy()
      return
    }
    this.stats.accepted++
    const upstream = connect(this.target.port, this.target.host)
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    const pair = [client, upstream]
    for (const s of pair) {
      this.sockets.add(s)
      s.on('error', () => undefined)
      s.on('close', () => {
        this.sockets.delete(s)
        for (const o of pair) if (o !== s) o.destroy()
      })
    }
    client.pipe(upstream)
    upstream.pipe(client)
  }

  /** Resets every open connection and refuses new ones for `ms` milliseconds. */
  cut(ms: number): void {
    this.stats.cuts++
    this.downUntil = Math.max(this.downUntil, Date.now() + ms)
    for (const s of this.sockets) s.resetAndDestroy?.() ?? s.destroy()
    this.sockets.clear()
    if (this.restoreTimer) clearTimeout(this.restoreTimer)
    this.restoreTimer = setTimeout(() => (this.restoreTimer = null), ms)
  }

  async close(): Promise<void> {
    if (this.restoreTimer) clearTimeout(this.restoreTimer)
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((r) => this.server.close(() => r()))
  }
}
