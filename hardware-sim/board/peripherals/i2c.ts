/**
 * The I2C buses `I2C1` and `I2C2`: `setup`, `writeTo(addr, ...data)` and
 * `readFrom(addr, n)`, each a transaction with the device model at that
 * address. Failures carry the messages of targets/esp32/jshardwareI2c.c:
 * a NACK throws "jshI2CWrite: slave doesn't ACK the transfer" (or
 * jshI2CRead), a bus used before setup() "unknown error code 259".
 */
import type { I2CDevice } from '../../hardware.ts'
import type { Sandbox } from '../sandbox.ts'
import { toBytes } from '../format.ts'

export type BusName = 'I2C1' | 'I2C2'

const BUSES: BusName[] = ['I2C1', 'I2C2']
const ESP_ERR_INVALID_STATE = 0x103

export class I2CBuses {
  private setUp: Record<BusName, boolean> = { I2C1: false, I2C2: false }
  /** Fault: addresses that NACK on every bus. */
  private removed = new Set<number>()

  constructor(
    private readonly clock: { readonly now: number },
    private readonly devices: Partial<Record<BusName, I2CDevice[]>> | undefined,
  ) {}

  /** A fresh interpreter: buses need setup() again (removed devices stay removed). */
  reset(): void {
    this.setUp = { I2C1: false, I2C2: false }
  }

  /** Fault: the device at `addr` stops answering (NACK) on every bus. */
  remove(addr: number): void {
    this.removed.add(addr)
  }

  restore(addr: number): void {
    this.removed.delete(addr)
  }

  install(sb: Sandbox): void {
    for (const bus of BUSES) sb.G[bus] = this.busObject(sb, bus)
  }

  private busObject(sb: Sandbox, bus: BusName): Record<string, unknown> {
    const o = new sb.C.Object() as Record<string, unknown>
    o.setup = (cfg?: { scl?: unknown; sda?: unknown; bitrate?: unknown }) => {
      if (cfg !== undefined && (cfg === null || typeof cfg !== 'object')) throw sb.error(`expected an options object, got ${typeof cfg}`)
      this.setUp[bus] = true
    }
    o.writeTo = (addr: unknown, ...data: unknown[]) => {
      const a = i2cAddress(sb, addr)
      const bytes = toBytes(data)
      this.transfer(sb, bus, 'jshI2CWrite', a, (d) => d.write(Uint8Array.from(bytes), this.clock.now))
    }
    o.readFrom = (addr: unknown, quantity: unknown) => {
      const a = i2cAddress(sb, addr)
      const n = Number(quantity)
      if (!Number.isInteger(n) || n < 0) throw sb.error(`expected a byte count, got ${String(quantity)}`)
      const out = new sb.C.Uint8Array(n)
      if (n === 0) return out
      this.transfer(sb, bus, 'jshI2CRead', a, (d) => {
        const r = d.read(n, this.clock.now)
        if (r === null) return false
        out.set(r.subarray(0, n))
        return true
      })
      return out
    }
    return o
  }

  /** One bus transaction (the native call): the device answers, or the transfer fails as on the ESP32. */
  private transfer(sb: Sandbox, bus: BusName, op: string, addr: number, fn: (d: I2CDevice) => boolean): void {
    if (!this.setUp[bus]) throw sb.error(`${op}:, unknown error code ${ESP_ERR_INVALID_STATE}`)
    const dev = this.devices?.[bus]?.find((d) => d.address === addr)
    const ok = dev && !this.removed.has(addr) ? fn(dev) : false
    if (!ok) throw sb.error(`${op}: slave doesn't ACK the transfer`)
  }
}

function i2cAddress(sb: Sandbox, addr: unknown): number {
  const a = typeof addr === 'object' && addr !== null ? Number((addr as { address?: unknown }).address) : Number(addr)
  if (!Number.isInteger(a) || a < 0 || a > 127) throw sb.error(`expected a 7-bit I2C address, got ${String(addr)}`)
  return a
}
