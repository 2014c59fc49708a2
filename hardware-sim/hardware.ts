/**
 * The contracts between the virtual board (pins, I2C buses, clock) and the
 * device models attached to it. Devices are passive: the board passes its
 * virtual time on every access and a device catches up lazily (a MAX30102
 * fills its FIFO, an ATECC608 finishes a command) from that time. Times are
 * milliseconds on the board's virtual clock.
 */

/** A device on a virtual I2C bus. */
export interface I2CDevice {
  /** 7-bit address. */
  readonly address: number
  /** Master write transaction (START, addr+W, data..., STOP). Returns false to NACK (asleep, busy, absent). */
  write(data: Uint8Array, nowMs: number): boolean
  /** Master read transaction (START, addr+R, n bytes, STOP). Returns null to NACK. */
  read(n: number, nowMs: number): Uint8Array | null
}

/** Voltage on an analog pin, in volts (the board's ADC clamps to 0..3.3 V and quantises to 12 bits). */
export interface AnalogSource {
  voltage(nowMs: number): number
}

/** Level on a digital input pin. */
export interface DigitalSource {
  level(nowMs: number): boolean
}

/** Something that listens to a digital output pin (e.g. the AD8232's shutdown input). */
export interface DigitalSink {
  set(level: boolean, nowMs: number): void
}

/**
 * A device on a virtual SPI bus, selected by its own chip-select pin. One call is one
 * transaction: CS goes low, `tx.length` bytes are clocked full duplex, CS goes high.
 */
export interface SPIDevice {
  /** Returns exactly `tx.length` bytes: what the device drove on MISO while `tx` went out on MOSI. */
  transfer(tx: Uint8Array, nowMs: number): Uint8Array
}
