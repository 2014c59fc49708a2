/**
 * The real gateway (gateway/gateway.ts: Aedes broker, registry, CONNECT auth, frame checks,
 * HTTP admin API) on 127.0.0.1, with a recording FrameStore that outlives restarts: the
 * firmware tests look at exactly what the gateway stored, and a restart on the same ports
 * and data dir is a real gateway restart.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveConfig } from '../gateway/config.ts'
import { startGateway, type Gateway } from '../gateway/gateway.ts'
import { memoryLogger } from '../gateway/log.ts'
import type { FrameMeta, FrameStore } from '../gateway/ledger-port.ts'

export interface StoredFrame {
  meta: FrameMeta
  bytes: Uint8Array
}

/** Keeps every stored frame in memory; `appends` counts calls, so a double store shows. */
export class RecordingStore implements FrameStore {
  frames: StoredFrame[] = []
  appends = 0
  private seen = new Set<string>()
  async appendFrame(frame: Uint8Array, meta: FrameMeta) {
    this.appends++
    const k = meta.deviceId + '/' + meta.seq
    if (this.seen.has(k)) return { leafIndex: -1, duplicate: true }
    this.seen.add(k)
    this.frames.push({ meta: { ...meta }, bytes: new Uint8Array(frame) })
    return { leafIndex: this.frames.length - 1 }
  }
  hasFrame(deviceId: string, seq: number): boolean {
    return this.seen.has(deviceId + '/' + seq)
  }
  async close(): Promise<void> {}
}

export interface RealGateway {
  gw: Gateway
  store: RecordingStore
  dir: string
  mqttPort: number
  httpPort: number
  httpUrl: string
  adminToken: string
  logs: ReturnType<typeof memoryLogger>['entries']
  /** POST /api/devices with the admin token; returns the registered ID. */
  register(body: Record<string, unknown>): Promise<string>
  /** Graceful stop, then a new gateway process-equivalent on the same ports and data dir. */
  restart(downMs?: number): Promise<void>
  close(): Promise<void>
}

export async function startRealGateway(): Promise<RealGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'mh-fw-gw-'))
  const store = new RecordingStore()
  const log = memoryLogger()
  const open = (mqttPort: number | 'auto', httpPort: number | 'auto') =>
    startGateway(resolveConfig({ dataDir: dir, mqttPort, mqttsPort: 0, wsPort: 0, httpPort, logLevel: 'warn' }), { log, openStore: async () => store })
  let gw = await open('auto', 'auto')
  const mqttPort = gw.ports.mqtt!
  const httpPort = gw.ports.http!
  const r: RealGateway = {
    gw, store, dir, mqttPort, httpPort, logs: log.entries,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    adminToken: gw.identity.adminToken,
    async register(body) {
      const res = await fetch(`${r.httpUrl}/api/devices`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${r.adminToken}` },
        body: JSON.stringify(body),
      })
      const text = await res.text()
      if (!res.ok) throw new Error(`register: HTTP ${res.status} ${text}`)
      return (JSON.parse(text) as { id: string }).id
    },
    async restart(downMs = 0) {
      await gw.close()
      if (downMs) await new Promise((res) => setTimeout(res, downMs))
      gw = await open(mqttPort, httpPort)
      r.gw = gw
    },
    async close() {
      await gw.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return r
}
