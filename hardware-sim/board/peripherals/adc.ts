/**
 * The ADC: `analogRead` on the ESP32's ADC pins, a 12-bit SAR converter
 * over 0..3.3 V whose code the ESP32 port returns as a fraction, raw/4096
 * (`jshPinAnalog` in targets/esp32/jshardware.c). Other pins throw.
 */
import type { AnalogSource } from '../../hardware.ts'
import type { Sandbox } from '../sandbox.ts'
import type { BoardCost } from '../../cost/board-cost.ts'
import { pinNumber } from './pins.ts'

/** ESP32 pins Espruino can read with analogRead: ADC1 (32..39) and ADC2. */
export const ADC_PINS = new Set([32, 33, 34, 35, 36, 37, 38, 39, 0, 2, 4, 12, 13, 14, 15, 25, 26, 27])

/** Host-side check of the board's wiring: analog sources only on ADC pins. */
export function checkAnalogSources(sources: Record<number, AnalogSource> | undefined): void {
  for (const pin of Object.keys(sources ?? {})) if (!ADC_PINS.has(Number(pin))) throw new TypeError(`expected analog sources on ADC pins (${[...ADC_PINS].join(', ')}), got D${pin}`)
}

export class Adc {
  constructor(
    private readonly clock: { readonly now: number },
    private readonly sources: Record<number, AnalogSource> | undefined,
    /** Charges each conversion when the board charges time. */
    private readonly cost: BoardCost | null = null,
  ) {}

  install(sb: Sandbox): void {
    sb.def('analogRead', (p: unknown) => {
      const n = pinNumber(sb, p)
      if (!ADC_PINS.has(n)) throw sb.error(`Pin D${n} is not an ADC pin`)
      const v = this.convert(n)
      this.cost?.adc()
      return v
    })
  }

  /** One conversion: the source's voltage now, clamped and quantised. */
  private convert(pin: number): number {
    const src = this.sources?.[pin]
    const v = src ? src.voltage(this.clock.now) : 0
    // 12-bit SAR ADC over 0..3.3 V; the ESP32 port returns raw/4096 (jshPinAnalog).
    const raw = Math.max(0, Math.min(4095, Math.round((Number.isFinite(v) ? v : 0) / 3.3 * 4095)))
    return raw / 4096
  }
}
