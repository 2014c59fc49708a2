/**
 * The CRC-16 of Microchip CryptoAuthentication packets (ATECC508A/608A
 * datasheet, "CRC Calculation"): polynomial 0x8005, register starts at 0,
 * each data byte fed least-significant bit first, no reflection of the
 * result, no final XOR. On the wire the 16-bit result goes low byte first.
 * Known answer: the wake token `04 11` has CRC 0x4333, sent as `33 43`.
 */
export function crc16(bytes: Uint8Array): number {
  let crc = 0
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]
    for (let mask = 1; mask < 0x100; mask <<= 1) {
      const dataBit = (b & mask) !== 0 ? 1 : 0
      const crcBit = crc >>> 15
      crc = (crc << 1) & 0xffff
      if (dataBit !== crcBit) crc ^= 0x8005
    }
  }
  return crc
}

/** `bytes` followed by their CRC-16, low byte first, as a packet is framed. */
export function appendCrc(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length + 2)
  out.set(bytes)
  const c = crc16(bytes)
  out[bytes.length] = c & 0xff
  out[bytes.length + 1] = c >>> 8
  return out
}

/** True if the last two bytes are the CRC-16 (LE) of the bytes before them. */
export function checkCrc(packet: Uint8Array): boolean {
  if (packet.length < 3) return false
  const c = crc16(packet.subarray(0, packet.length - 2))
  return packet[packet.length - 2] === (c & 0xff) && packet[packet.length - 1] === c >>> 8
}
