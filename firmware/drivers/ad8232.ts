/**
 * AD8232 single-lead ECG front end: the output on an ADC pin (12-bit on the ESP32),
 * lead-off detection on LO+ / LO- (high when an electrode is off, AD8232 datasheet
 * "Leads-off detection", DC mode), optional SDN (low = shutdown).
 */

export interface EcgPins {
  out: any
  loPlus: any
  loMinus: any
  sdn?: any
}

export interface AnalogIO {
  analogRead(pin: any): number
  digitalRead(pin: any): number
  digitalWrite(pin: any, v: number): void
}

export class Ad8232 {
  io: AnalogIO
  pins: EcgPins

  constructor(io: AnalogIO, pins: EcgPins) {
    this.io = io
    this.pins = pins
    if (pins.sdn !== undefined) io.digitalWrite(pins.sdn, 1)
  }

  /** One 12-bit sample (analogRead gives 0..1 of full scale). */
  sample(): number {
    const v = Math.floor(this.io.analogRead(this.pins.out) * 4096)
    return v > 4095 ? 4095 : v < 0 ? 0 : v
  }

  leadOff(): boolean {
    return this.io.digitalRead(this.pins.loPlus) === 1 || this.io.digitalRead(this.pins.loMinus) === 1
  }
}
