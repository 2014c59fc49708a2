/**
 * GPIO: the D0..D39 pin objects' digital side (`pinMode`, `getPinMode`,
 * `digitalWrite`, `digitalRead`). Inputs come from DigitalSources, outputs
 * go to DigitalSinks, both at the board's virtual time; a pin with no
 * source reads back the level last written to it.
 */
import type { DigitalSource, DigitalSink } from '../../hardware.ts'
import type { Sandbox } from '../sandbox.ts'

const PIN_MODES = ['input', 'input_pullup', 'input_pulldown', 'output', 'opendrain', 'opendrain_pullup', 'analog', 'auto', 'af_output', 'af_opendrain']

interface PinState {
  mode: string
  level: boolean
}

/** The GPIO number of a pin argument (a Pin object or a number), or Espruino's "Invalid pin". */
export function pinNumber(sb: Sandbox, p: unknown): number {
  const n = typeof p === 'number' ? p : p && typeof p === 'object' ? Number((p as { valueOf(): unknown }).valueOf()) : NaN
  if (!Number.isInteger(n) || n < 0 || n > 39) throw sb.error(`Invalid pin: ${String(p)}`)
  return n
}

export class Pins {
  private state = new Map<number, PinState>()

  constructor(
    private readonly clock: { readonly now: number },
    private readonly inputs: Record<number, DigitalSource> | undefined,
    private readonly outputs: Record<number, DigitalSink> | undefined,
  ) {}

  /** A fresh interpreter: modes and written levels are forgotten. */
  reset(): void {
    this.state.clear()
  }

  install(sb: Sandbox): void {
    sb.def('pinMode', (p: unknown, mode: unknown) => {
      const n = pinNumber(sb, p)
      const m = mode === undefined ? 'auto' : String(mode)
      if (!PIN_MODES.includes(m)) throw sb.error(`Unknown pin mode ${JSON.stringify(m)}`)
      this.pin(n).mode = m
    })
    sb.def('getPinMode', (p: unknown) => this.state.get(pinNumber(sb, p))?.mode ?? 'input')
    sb.def('digitalWrite', (p: unknown, v: unknown) => {
      const n = pinNumber(sb, p)
      const level = !!Number(v)
      this.pin(n).level = level
      this.outputs?.[n]?.set(level, this.clock.now)
    })
    sb.def('digitalRead', (p: unknown) => {
      const n = pinNumber(sb, p)
      const src = this.inputs?.[n]
      if (src) return src.level(this.clock.now) ? 1 : 0
      return this.state.get(n)?.level ? 1 : 0
    })
  }

  /** The level last written to an output pin (high when never written: the idle level of a chip select). */
  written(n: number): boolean {
    return this.state.get(n)?.level ?? true
  }

  private pin(n: number): PinState {
    let s = this.state.get(n)
    if (!s) this.state.set(n, (s = { mode: 'auto', level: false }))
    return s
  }
}
