/**
 * CRC-16 as the ATECC508A/608A computes it over command and response packets: polynomial
 * 0x8005, initial value 0, data bits fed least-significant first, result sent little-endian
 * (Microchip ATECC508A datasheet, section 9.1 "I/O Blocks", CRC). Also used as the
 * checksum of the persisted counters.
 *
 * Byte at a time through a table: feeding a byte's bits LSB first is feeding its
 * bit-reversed value MSB first, so the usual MSB-first table applies to rev(b). The bitwise
 * form took ~30 interpreted statements per byte (2,000 for one signature response, tens of
 * ms on an ESP32 in a single callback, delaying the ECG tick); this takes ~3.
 */
let table: Uint16Array | null = null
let rev: Uint8Array | null = null

function init(): void {
  table = new Uint16Array(256)
  rev = new Uint8Array(256)
  for (let i = 0; i < 256; i++) {
    let c = i << 8
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x8005) & 0xffff : (c << 1) & 0xffff
    table[i] = c
    let r = 0
    for (let k = 0; k < 8; k++) if (i & (1 << k)) r |= 128 >> k
    rev[i] = r
  }
}

export function crc16(data: Uint8Array | string, start: number, end: number): number {
  if (!table) init()
  const t = table as Uint16Array
  const rv = rev as Uint8Array
  let crc = 0
  if (typeof data === 'string') {
    for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ t[((crc >> 8) ^ rv[data.charCodeAt(i) & 255]) & 255]
  } else {
    for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ t[((crc >> 8) ^ rv[data[i]]) & 255]
  }
  return crc
}
