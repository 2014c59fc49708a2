/**
 * CRC-16 as the ATECC508A/608A computes it over command and response packets: polynomial
 * 0x8005, initial value 0, data bits fed least-significant first, result sent little-endian
 * (Microchip ATECC508A datasheet, section 9.1 "I/O Blocks", CRC). Also used as the
 * checksum of the persisted counters.
 *
 * Feeding each byte's bits LSB first into an MSB-first register is the mirror image of the
 * reflected algorithm: run the register reflected (polynomial 0xA001, one table lookup per
 * byte, no per-byte bit reversal) and reflect the 16-bit result once at the end. About 16
 * interpreted tokens per byte: a signature response (67 bytes) and a Nonce command (39) are
 * each one short loop, not a callback-long one.
 */
// Built when the bundle loads (about 110,000 interpreter units: 1.4 s of an ESP32 at the high
// cost), never lazily inside a secure-element session: the ATECC608 sleeps 1.3 s after its
// wake, so a first command that had to build the table first (personalisation, on a board with
// nothing else using CRC yet) was NACKed.
const table = new Uint16Array(256)
const rev = new Uint8Array(256)
for (let i = 0; i < 256; i++) {
  let c = i
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1
  table[i] = c
  let r = 0
  for (let k = 0; k < 8; k++) if (i & (1 << k)) r |= 128 >> k
  rev[i] = r
}

export function crc16(data: Uint8Array | string, start: number, end: number): number {
  const t = table
  let c = 0
  if (typeof data === 'string') {
    for (let i = start; i < end; i++) c = (c >>> 8) ^ t[(c ^ data.charCodeAt(i)) & 255]
  } else {
    // Two bytes per iteration: the loop's own bookkeeping is a third of a byte's cost.
    let i = start
    for (; i + 1 < end; i += 2) {
      c = (c >>> 8) ^ t[(c ^ data[i]) & 255]
      c = (c >>> 8) ^ t[(c ^ data[i + 1]) & 255]
    }
    if (i < end) c = (c >>> 8) ^ t[(c ^ data[i]) & 255]
  }
  const rv = rev
  return (rv[c & 255] << 8) | rv[c >> 8] // reflect the 16 bits back
}
