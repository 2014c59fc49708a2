/**
 * A well-formedness gate run before cbor-x sees any bytes. cbor-x is a fast,
 * lenient decoder: it lets duplicate map keys overwrite each other, accepts
 * indefinite lengths and non-shortest heads, and would let a frame carry
 * trailing bytes. Frames are signed bytes that end up as ledger leaves, so
 * we accept only one encoding of each value (RFC 8949 §4.2.1 preferred
 * heads, definite lengths, no duplicate keys, nothing after the item).
 */
import { FrameError } from './errors.ts'

export interface StrictLimits {
  maxDepth: number
  /** Cap on items in any one array or map, before any allocation. */
  maxItems: number
}

const DEFAULT_LIMITS: StrictLimits = { maxDepth: 16, maxItems: 4096 }
const TWO53 = 9007199254740992
const utf8 = new TextDecoder('utf-8', { fatal: true })

function fail(msg: string, at: number): never {
  throw new FrameError('cbor', `${msg} at byte ${at}`)
}

/** Throws FrameError('cbor') unless `bytes` is exactly one item in the strict subset. */
export function assertStrictCbor(bytes: Uint8Array, limits: StrictLimits = DEFAULT_LIMITS): void {
  const end = item(bytes, 0, 0, limits)
  if (end !== bytes.length) fail(`${bytes.length - end} trailing byte(s) after the CBOR item`, end)
}

function readHead(b: Uint8Array, p: number): { major: number; info: number; arg: number; next: number } {
  if (p >= b.length) fail('unexpected end of input', p)
  const ib = b[p]
  const major = ib >> 5
  const info = ib & 31
  let arg: number
  let next = p + 1
  if (info < 24) arg = info
  else if (info <= 27) {
    const n = 1 << (info - 24)
    if (next + n > b.length) fail('unexpected end of input in a head', p)
    arg = 0
    for (let i = 0; i < n; i++) arg = arg * 256 + b[next + i]
    next += n
    if (arg >= TWO53 && !(major === 7)) fail('integer argument beyond 2^53', p)
    // preferred serialisation: the shortest head that holds the argument
    if (major !== 7) {
      const min = arg < 24 ? 0 : arg < 256 ? 24 : arg < 65536 ? 25 : arg < 4294967296 ? 26 : 27
      if (info !== min) fail('non-shortest head', p)
    }
  } else if (info === 31) fail(major === 7 ? 'unexpected break' : 'indefinite length', p)
  else fail(`reserved additional information ${info}`, p)
  return { major, info, arg, next }
}

function item(b: Uint8Array, p: number, depth: number, limits: StrictLimits): number {
  if (depth > limits.maxDepth) fail(`nesting deeper than ${limits.maxDepth}`, p)
  const h = readHead(b, p)
  switch (h.major) {
    case 0:
    case 1:
      return h.next
    case 2:
    case 3: {
      const end = h.next + h.arg
      if (end > b.length) fail(`string of ${h.arg} bytes runs past the end`, p)
      if (h.major === 3) {
        try {
          utf8.decode(b.subarray(h.next, end))
        } catch {
          fail('text string is not valid UTF-8', p)
        }
      }
      return end
    }
    case 4: {
      if (h.arg > limits.maxItems) fail(`array of ${h.arg} items exceeds ${limits.maxItems}`, p)
      let q = h.next
      for (let i = 0; i < h.arg; i++) q = item(b, q, depth + 1, limits)
      return q
    }
    case 5: {
      if (h.arg > limits.maxItems) fail(`map of ${h.arg} entries exceeds ${limits.maxItems}`, p)
      let q = h.next
      const seen = new Set<string>()
      for (let i = 0; i < h.arg; i++) {
        const k0 = q
        q = item(b, q, depth + 1, limits)
        const key = Buffer.from(b.buffer, b.byteOffset + k0, q - k0).toString('latin1')
        if (seen.has(key)) fail('duplicate map key', k0)
        seen.add(key)
        q = item(b, q, depth + 1, limits)
      }
      return q
    }
    case 6:
      return item(b, h.next, depth + 1, limits)
    default: {
      // major 7: simple values and floats
      if (h.info === 24 && h.arg < 32) fail('simple value in two-byte form', p)
      return h.next
    }
  }
}
