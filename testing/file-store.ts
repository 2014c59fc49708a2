/**
 * A durable FrameStore for tests until the real ledger is wired: JSON lines
 * appended to a file and fsynced, with group commit (all appends waiting while
 * one fsync runs share the next one). `appendFrame` resolves only after the
 * fsync that covers it. A torn last line (power cut mid-write) is ignored on open.
 */
import { closeSync, existsSync, fsync, mkdirSync, openSync, readFileSync, write } from 'node:fs'
import { join } from 'node:path'
import type { ConsentPort, FrameMeta, FrameStore } from '../gateway/ledger-port.ts'

export interface StoredFrame {
  deviceId: string
  seq: number
  t0: number
  frame: Buffer
}

export class FileFrameStore implements FrameStore {
  private fd: number
  private seen = new Set<string>()
  private count = 0
  private queue: Array<{ line: string; resolve: (v: { leafIndex: number }) => void; reject: (e: Error) => void; index: number }> = []
  private flushing = false
  private closed = false
  /** Test hook: extra delay before each fsync completes (to observe PUBACK-after-durable). */
  syncDelayMs = 0
  /** Test hook: how many fsyncs ran. */
  syncs = 0

  constructor(readonly file: string) {
    mkdirSync(join(file, '..'), { recursive: true })
    for (const f of readFrames(file)) {
      this.seen.add(f.deviceId + '/' + f.seq)
      this.count++
    }
    this.fd = openSync(file, 'a')
  }

  hasFrame(deviceId: string, seq: number): boolean {
    return this.seen.has(deviceId + '/' + seq)
  }

  pending(): number {
    return this.queue.length
  }

  appendFrame(frame: Uint8Array, meta: FrameMeta): Promise<{ leafIndex: number }> {
    if (this.closed) return Promise.reject(new Error('store closed'))
    const line = JSON.stringify({ deviceId: meta.deviceId, seq: meta.seq, t0: meta.t0, frame: Buffer.from(frame).toString('base64') }) + '\n'
    const index = this.count++
    this.seen.add(meta.deviceId + '/' + meta.seq)
    return new Promise((resolve, reject) => {
      this.queue.push({ line, resolve, reject, index })
      if (!this.flushing) void this.flush()
    })
  }

  private async flush(): Promise<void> {
    this.flushing = true
    while (this.queue.length > 0) {
      const batch = this.queue
      this.queue = []
      try {
        const buf = Buffer.from(batch.map((b) => b.line).join(''))
        await new Promise<void>((res, rej) => write(this.fd, buf, (e) => (e ? rej(e) : res())))
        await new Promise<void>((res, rej) => fsync(this.fd, (e) => (e ? rej(e) : res())))
        if (this.syncDelayMs) await new Promise((r) => setTimeout(r, this.syncDelayMs))
        this.syncs++
        for (const b of batch) b.resolve({ leafIndex: b.index })
      } catch (err) {
        for (const b of batch) b.reject(err as Error)
      }
    }
    this.flushing = false
  }

  async close(): Promise<void> {
    while (this.flushing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 2))
    if (!this.closed) closeSync(this.fd)
    this.closed = true
  }
}

export function readFrames(file: string): StoredFrame[] {
  if (!existsSync(file)) return []
  const out: StoredFrame[] = []
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue
    try {
      const o = JSON.parse(line) as { deviceId: string; seq: number; t0: number; frame: string }
      out.push({ deviceId: o.deviceId, seq: o.seq, t0: o.t0, frame: Buffer.from(o.frame, 'base64') })
    } catch {
      // torn final line: not acknowledged, so nothing is lost by skipping it
    }
  }
  return out
}

/** Consent records in memory, with change notifications (stands in for ledger.consent). */
export class MemoryConsent implements ConsentPort {
  private grants = new Set<string>()
  private listeners = new Set<(c: { patientId: string; clinicianId?: string }) => void>()
  grant(patientId: string, clinicianId: string, scope = 'live'): void {
    this.grants.add(`${patientId}\u0000${clinicianId}\u0000${scope}`)
    for (const l of this.listeners) l({ patientId, clinicianId })
  }
  revoke(patientId: string, clinicianId: string, scope = 'live'): void {
    this.grants.delete(`${patientId}\u0000${clinicianId}\u0000${scope}`)
    for (const l of this.listeners) l({ patientId, clinicianId })
  }
  isAllowed(patientId: string, clinicianId: string, scope: string): boolean {
    return this.grants.has(`${patientId}\u0000${clinicianId}\u0000${scope}`)
  }
  onChange(listener: (c: { patientId: string; clinicianId?: string }) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }
}

/** `--frame-store` module entry point for CLI tests. */
export async function openFrameStore(opts: { dir: string }): Promise<FrameStore> {
  return new FileFrameStore(join(opts.dir, 'frames.jsonl'))
}
