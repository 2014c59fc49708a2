/**
 * Sample packing: a window of integer samples as a byte string of zigzag
 * varints, the first sample absolute and each later one as the difference
 * from its predecessor. ECG at 250 Hz moves a few ADC counts per sample, so
 * most samples cost one byte; PPG (18-bit) deltas usually cost two.
 *
 * Arithmetic only (no 32-bit bit tricks) so values up to 2^31 stay exact on
 * Espruino and Node alike.
 */

/** Largest magnitude a packed sample or delta may have. */
export const PACK_LIMIT = 2147483647
/** A varint longer than this cannot encode a value within PACK_LIMIT's zigzag range. */
const MAX_VARINT_BYTES = 5

function zigzag(d: number): number {
  return d >= 0 ? d * 2 : -d * 2 - 1
}

/** Upper bound of the packed size of n samples; size buffers with it. */
export function maxPackedSize(n: number): number {
  return n * MAX_VARINT_BYTES
}

/**
 * Packs `count` samples from `src` (starting at `start`) into `out` at `pos`;
 * returns the position after the last byte written.
 */
export function packInto(src: ArrayLike<number>, start: number, count: number, out: Uint8Array, pos: number): number {
  let prev = 0
  for (let i = 0; i < count; i++) {
    const s = src[start + i]
    if (s !== Math.floor(s) || s < -PACK_LIMIT || s > PACK_LIMIT) throw new Error('sample ' + i + ' must be an integer within ±' + PACK_LIMIT + ', got ' + s)
    let z = zigzag(s - prev)
    prev = s
    while (z >= 128) {
      out[pos++] = (z % 128) + 128
      z = Math.floor(z / 128)
    }
    out[pos++] = z
  }
  return pos
}

export function pack(samples: ArrayLike<number>): Uint8Array {
  const tmp = new Uint8Array(maxPackedSize(samples.length))
  const end = packInto(samples, 0, samples.length, tmp, 0)
  return new Uint8Array(tmp.subarray(0, end))
}

/**
 * Unpacks a byte string into samples. Throws on truncated or overlong varints
 * and on more than `maxCount` samples, so a hostile frame cannot make the
 * decoder allocate without bound.
 */
export function unpack(bytes: Uint8Array, maxCount: number): number[] {
  const out: number[] = []
  let prev = 0
  let p = 0
  while (p < bytes.length) {
    if (out.length >= maxCount) throw new Error('more than ' + maxCount + ' samples')
    let z = 0
    let mul = 1
    let n = 0
    for (;;) {
      if (p >= bytes.length) throw new Error('truncated varint at byte ' + p)
      const b = bytes[p++]
      n++
      if (n > MAX_VARINT_BYTES) throw new Error('varint longer than ' + MAX_VARINT_BYTES + ' bytes at byte ' + (p - n))
      z += (b % 128) * mul
      mul *= 128
      if (b < 128) {
        if (b === 0 && n > 1) throw new Error('non-minimal varint at byte ' + (p - n))
        break
      }
    }
    const d = z % 2 === 0 ? z / 2 : -(z + 1) / 2
    prev += d
    if (prev < -PACK_LIMIT || prev > PACK_LIMIT) throw new Error('sample out of range at byte ' + p)
    out.push(prev)
  }
  return out
}
