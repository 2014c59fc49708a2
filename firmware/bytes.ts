/**
 * Bytes <-> Espruino binary strings. Espruino sockets and Storage speak strings whose
 * char codes are bytes (0..255); frames are Uint8Arrays. E.toString / E.toUint8Array do the
 * copy natively on the board; the loops are the same conversion for Node tests.
 * Hex is protocol/portable/bytes.ts's toHex/fromHex.
 */

declare const E: any

const hasE = typeof E !== 'undefined' && typeof E.toString === 'function' && typeof E.toUint8Array === 'function'

export function u8ToStr(u8: Uint8Array): string {
  if (hasE) return E.toString(u8)
  let s = ''
  for (let i = 0; i < u8.length; i++) s += String.fromCharCode(u8[i])
  return s
}

export function strToU8(s: string): Uint8Array {
  if (hasE) return E.toUint8Array(s)
  const u8 = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) u8[i] = s.charCodeAt(i) & 255
  return u8
}

/** Two-byte big-endian length prefix as a binary string. */
export function u16be(n: number): string {
  return String.fromCharCode((n >> 8) & 255, n & 255)
}

/** MQTT UTF-8 string: length prefix + bytes. Topics and IDs here are ASCII. */
export function mqttStr(s: string): string {
  return u16be(s.length) + s
}
