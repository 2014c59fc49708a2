/**
 * The SPI buses `SPI1` (HSPI) and `SPI2` (VSPI) of Espruino's ESP32 port: `setup`, `send`
 * and `write`. A device answers while its chip-select pin is low: the `nss_pin` argument of
 * `send`/`write` frames one transaction the way Espruino does (CS low, bytes, CS high);
 * without it, the device whose CS the firmware drove low with digitalWrite is selected. With
 * no device selected MISO floats high (0xFF), as a pulled-up line reads on a board.
 *
 * `send` returns what came back in the type it was given, as jswrap_spi_i2c.c does: a number
 * for a number, a string for a string, a Uint8Array for an array or typed array. Each call is
 * one native transfer, however many bytes it carries.
 */
import type { SPIDevice } from '../../hardware.ts'
import type { Sandbox } from '../sandbox.ts'
import { toBytes, bytesToBinaryString } from '../format.ts'
import { pinNumber } from './pins.ts'

export type SpiBusName = 'SPI1' | 'SPI2'

/** A device on a bus, selected by its chip-select GPIO. */
export interface SpiAttachment {
  cs: number
  device: SPIDevice
}

export interface SpiTransfer {
  bus: SpiBusName
  bytes: number
  /** Configured clock (Hz): what the transfer took on the wire is bytes × 8 / baud. */
  baud: number
}

const BUSES: SpiBusName[] = ['SPI1', 'SPI2']
/** Espruino's default SPI clock when setup() names none. */
const DEFAULT_BAUD = 100000

export class SpiBuses {
  private baud: Record<SpiBusName, number> = { SPI1: 0, SPI2: 0 }
  /** Called after every transfer (the cost meter charges the wire time). */
  onTransfer: ((t: SpiTransfer) => void) | undefined

  constructor(
    private readonly clock: { readonly now: number },
    private readonly devices: Partial<Record<SpiBusName, SpiAttachment[]>> | undefined,
    /** The level the firmware last wrote to a GPIO (chip selects driven by hand). */
    private readonly written: (gpio: number) => boolean,
  ) {}

  /** A fresh interpreter: buses need setup() again. */
  reset(): void {
    this.baud = { SPI1: 0, SPI2: 0 }
  }

  install(sb: Sandbox): void {
    for (const bus of BUSES) sb.G[bus] = this.busObject(sb, bus)
  }

  private busObject(sb: Sandbox, bus: SpiBusName): Record<string, unknown> {
    const o = new sb.C.Object() as Record<string, unknown>
    o.setup = (cfg?: { baud?: unknown; mode?: unknown }) => {
      if (cfg !== undefined && (cfg === null || typeof cfg !== 'object')) throw sb.error(`expected an options object, got ${typeof cfg}`)
      const baud = cfg?.baud === undefined ? DEFAULT_BAUD : Number(cfg.baud)
      if (!(baud > 0) || !Number.isFinite(baud)) throw sb.error(`expected a baud rate in Hz, got ${String(cfg?.baud)}`)
      this.baud[bus] = baud
    }
    o.send = (data: unknown, nss?: unknown) => {
      const tx = Uint8Array.from(toBytes(data))
      const rx = this.transfer(sb, bus, tx, nss)
      if (typeof data === 'number') return rx[0]
      if (typeof data === 'string') return bytesToBinaryString(rx)
      const out = new sb.C.Uint8Array(rx.length)
      out.set(rx)
      return out
    }
    o.write = (...args: unknown[]) => {
      // write(data..., nss_pin): a trailing Pin object is the chip select.
      let nss: unknown
      if (args.length > 1 && args[args.length - 1] instanceof sb.C.Pin) nss = args.pop()
      this.transfer(sb, bus, Uint8Array.from(toBytes(args)), nss)
    }
    return o
  }

  /** One transaction: the selected device clocks `tx` full duplex. */
  private transfer(sb: Sandbox, bus: SpiBusName, tx: Uint8Array, nss: unknown): Uint8Array {
    if (!this.baud[bus]) throw sb.error(`${bus} not set up: call ${bus}.setup() first`)
    const list = this.devices?.[bus] ?? []
    let dev: SPIDevice | undefined
    if (nss !== undefined && nss !== null) {
      const cs = pinNumber(sb, nss)
      dev = list.find((a) => a.cs === cs)?.device
    } else dev = list.find((a) => this.written(a.cs) === false)?.device
    let rx: Uint8Array
    if (dev) {
      rx = dev.transfer(tx, this.clock.now)
      if (rx.length !== tx.length) throw new Error(`SPI device on ${bus} answered ${rx.length} bytes to ${tx.length}`)
    } else rx = new Uint8Array(tx.length).fill(0xff)
    this.onTransfer?.({ bus, bytes: tx.length, baud: this.baud[bus] })
    return rx
  }
}
