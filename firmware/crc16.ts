/**
 * CRC-16 as the ATECC508A/608A computes it over command and response packets: polynomial
 * 0x8005, initial value 0, data bits fed least-significant first, result sent little-endian
 * (Microchip ATECC508A datasheet, section 9.1 "I/O Blocks", CRC). Also used as the
 * checksum of the persisted counters.
 */
export function crc16(data: Uint8Array | string, start: number, end: number): number {
  let crc = 0
  const isStr = typeof data === 'string'
  for (let i = start; i < end; i++) {
    const b = isStr ? (data as string).charCodeAt(i) & 255 : (data as Uint8Array)[i]
    for (let bit = 1; bit < 256; bit <<= 1) {
      const dataBit = (b & bit) ? 1 : 0
      const crcBit = (crc >> 15) & 1
      crc = (crc << 1) & 0xffff
      if (dataBit !== crcBit) crc ^= 0x8005
    }
  }
  return crc
}
