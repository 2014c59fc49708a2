/**
 * The I2C buses `I2C1` and `I2C2`: `setup`, `writeTo(addr, ...data)` and
 * `readFrom(addr, n)`, each a transaction with the device model at that
 * address. Failures carry the messages of targets/esp32/jshardwareI2c.c:
 * a NACK throws "jshI2CWrite: slave doesn't ACK the transfer" (or
 * jshI2CRead), a bus used before setup() "unknown error code 259".
 *
 * When the board charges time, each transaction costs its wire time at the bus's bitrate
 * (from setup(), default 100 kHz) plus the driver's overhead: Espruino's ESP32 port waits in
 * i2c_master_cmd_begin for the whole transfer, reads and writes alike, so the interpreter is
 * blocked all along (espruino-facts.md). A NACK costs the address phase.
 */
import type { I2CDevice } from '../../hardware.ts'
import type { Sandbox } from '../sandbox.ts'
import type { BoardCost } from '../../cost/board-cost.ts'
import { toBytes } from '../format.ts'

export type BusName = 'I2C1' | 'I2C2'

const BUSES: BusName[] = ['I2C1', 'I2C2']
const ESP_ERR_INVALID_STATE = 0x103
/** Espruino's I2C.setup bitrate when none is given. */
const DEFAULT_BITRATE = 100000

export class I2CBuses {
  /** Bitrate per bus (Hz), 0 until setup(). */
  private rate: Record<BusName, number> = { I2C1: 0, I2C2: 0 }
  /** Fault: addresses that NACK on every bus. */
  private removed = new Set<number>()

  constructor(
    private readonly clock: { readonly now: number },
    private readonly devices: Partial<Record<BusName, I2CDevice[]>> | undefined,
    private readonly cost: BoardCost | null = null,
  ) {}

  /** A fresh interpreter: buses need setup() again (removed devices stay removed). */
  reset(): void {
    this.rate = { I2C1: 0, I2C2: 0 }
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
      const rate = Number(cfg?.bitrate)
      this.rate[bus] = rate > 0 && Number.isFinite(rate) ? rate : DEFAULT_BITRATE
    }
    o.writeTo = (addr: unknown, ...data: unknown[]) => {
      const a = i2cAddress(sb, addr)
      const bytes = toBytes(data)
      this.transfer(sb, bus, 'jshI2CWrite', a, bytes.length, (d) => d.write(Uint8Array.from(bytes), this.clock.now))
    }
    o.readFrom = (addr: unknown, quantity: unknown) => {
      const a = i2cAddress(sb, addr)
      const n = Number(quantity)
      if (!Number.isInteger(n) || n < 0) throw sb.error(`expected a byte count, got ${String(quantity)}`)
      const out = new sb.C.Uint8Array(n)
      if (n === 0) {
        this.cost?.call()
        return out
      }
      this.transfer(sb, bus, 'jshI2CRead', a, n, (d) => {
        const r = d.read(n, this.clock.now)
        if (r === null) return false
        out.set(r.subarray(0, n))
        return true
      })
      return out
    }
    return o
  }

  /** One bus transaction of `bytes` data bytes (the native call): the device answers, or the transfer fails as on the ESP32. */
  private transfer(sb: Sandbox, bus: BusName, op: string, addr: number, bytes: number, fn: (d: I2CDevice) => boolean): void {
    const rate = this.rate[bus]
    if (!rate) {
      this.cost?.call()
      throw sb.error(`${op}:, unknown error code ${ESP_ERR_INVALID_STATE}`)
    }
    const dev = this.devices?.[bus]?.find((d) => d.address === addr)
    const ok = dev && !this.removed.has(addr) ? fn(dev) : false
    // The device sees the time the transfer starts; the interpreter waits until it ends.
    this.cost?.i2c(ok ? bytes : 0, rate)
    if (!ok) throw sb.error(`${op}: slave doesn't ACK the transfer`)
  }
}

function i2cAddress(sb: Sandbox, addr: unknown): number {
  const a = typeof addr === 'object' && addr !== null ? Number((addr as { address?: unknown }).address) : Number(addr)
  if (!Number.isInteger(a) || a < 0 || a > 127) throw sb.error(`expected a 7-bit I2C address, got ${String(addr)}`)
  return a
}
