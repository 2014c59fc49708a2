/**
 * Node stand-ins with Espruino semantics for the firmware's pure modules:
 * sockets that deliver and accept binary strings (one char per byte), and an in-memory
 * Storage with flash rules (a file is created with a size and filled with 0xFF; writing at
 * an offset can only clear bits, as NOR flash does; offset 0 re-creates the file).
 */
import net from 'node:net'
import type { Socket } from '../../../firmware/mqtt.ts'

export function dialNode(host: string, port: number, onOpen: () => void): Socket & { raw: net.Socket } {
  const s = net.connect({ host, port }, onOpen)
  const handlers: Record<string, ((a?: any) => void)[]> = {}
  const emit = (ev: string, a?: unknown) => (handlers[ev] ?? []).forEach((h) => h(a))
  s.on('data', (b) => emit('data', b.toString('latin1')))
  s.on('close', () => emit('close'))
  s.on('error', (e) => emit('error', e.message))
  return {
    raw: s,
    write(d: string) {
      return s.write(Buffer.from(d, 'latin1'))
    },
    end() {
      s.destroy()
    },
    on(ev: string, cb: (a?: any) => void) {
      ;(handlers[ev] ??= []).push(cb)
    },
  }
}

export class MemStorage {
  files = new Map<string, Uint8Array>()
  writes = 0
  /** If set, the n-th write from now is torn: only `tornBytes` bytes land, then it throws. */
  failAfterWrites = -1
  tornBytes = 0

  write(name: string, data: string | Uint8Array, offset?: number, size?: number): boolean {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : Buffer.from(data)
    if (this.failAfterWrites === 0) {
      this.failAfterWrites = -1
      this.applyWrite(name, bytes.subarray(0, this.tornBytes), offset, size)
      throw new Error('simulated brown-out')
    }
    if (this.failAfterWrites > 0) this.failAfterWrites--
    this.applyWrite(name, bytes, offset, size)
    this.writes++
    return true
  }

  private applyWrite(name: string, bytes: Uint8Array, offset?: number, size?: number): void {
    const existing = this.files.get(name)
    if (offset === undefined || offset === 0 || !existing) {
      const f = new Uint8Array(size ?? bytes.length).fill(0xff)
      for (let i = 0; i < bytes.length && i < f.length; i++) f[i] = bytes[i]!
      this.files.set(name, f)
      return
    }
    if (offset + bytes.length > existing.length) throw new Error(`write past end of ${name}`)
    for (let i = 0; i < bytes.length; i++) existing[offset + i]! &= bytes[i]!
  }

  read(name: string, offset = 0, length?: number): string | undefined {
    const f = this.files.get(name)
    if (!f) return undefined
    const end = length === undefined || length <= 0 ? f.length : Math.min(f.length, offset + length)
    return Buffer.from(f.subarray(offset, end)).toString('latin1')
  }

  erase(name: string): void {
    this.files.delete(name)
  }

  list(): string[] {
    return [...this.files.keys()]
  }

  getFree(): number {
    return 1 << 20
  }
}
