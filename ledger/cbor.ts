/**
 * Deterministic CBOR (RFC 8949 §4.2.1 core deterministic encoding) for the small set of
 * types ledger structures use: unsigned/negative integers up to 2^53, byte strings,
 * text strings, arrays and maps. Shortest-form heads, definite lengths, map keys sorted
 * by their encoded bytes. The decoder is strict: it rejects anything the encoder would
 * not produce (re-encodes and compares), so one value has exactly one encoding and a
 * signature over it cannot be replayed with different bytes. No Node imports.
 */
export type CborValue = number | string | Uint8Array | boolean | null | CborValue[] | Map<number | string, CborValue>

export class CborError extends Error {
  override name = 'CborError'
}

const te = new TextEncoder()
const td = new TextDecoder('utf-8', { fatal: true })

function head(out: number[], major: number, n: number): void {
  const m = major << 5
  if (n < 24) out.push(m | n)
  else if (n < 0x100) out.push(m | 24, n)
  else if (n < 0x10000) out.push(m | 25, n >> 8, n & 0xff)
  else if (n < 0x100000000) out.push(m | 26, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
  else {
    const hi = Math.floor(n / 0x100000000)
    const lo = n >>> 0
    out.push(m | 27, (hi >>> 24) & 0xff, (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff, (lo >>> 24) & 0xff, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff)
  }
}

function enc(out: number[], v: CborValue): void {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new CborError(`expected a safe integer, got ${v}`)
    if (v >= 0) head(out, 0, v)
    else head(out, 1, -1 - v)
  } else if (typeof v === 'string') {
    const b = te.encode(v)
    head(out, 3, b.length)
    for (let i = 0; i < b.length; i++) out.push(b[i])
  } else if (v instanceof Uint8Array) {
    head(out, 2, v.length)
    for (let i = 0; i < v.length; i++) out.push(v[i])
  } else if (v === false) out.push(0xf4)
  else if (v === true) out.push(0xf5)
  else if (v === null) out.push(0xf6)
  else if (Array.isArray(v)) {
    head(out, 4, v.length)
    for (const x of v) enc(out, x)
  } else if (v instanceof Map) {
    const entries = [...v.entries()].map(([k, x]) => {
      const kb: number[] = []
      enc(kb, k)
      return [kb, x] as const
    })
    entries.sort((a, b) => cmpBytes(a[0], b[0]))
    for (let i = 1; i < entries.length; i++) if (cmpBytes(entries[i - 1][0], entries[i][0]) === 0) throw new CborError('duplicate map key')
    head(out, 5, entries.length)
    for (const [kb, x] of entries) {
      for (const b of kb) out.push(b)
      enc(out, x)
    }
  } else throw new CborError(`cannot encode ${typeof v}`)
}

function cmpBytes(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return a.length - b.length
}

export function encodeCbor(v: CborValue): Uint8Array {
  const out: number[] = []
  enc(out, v)
  return Uint8Array.from(out)
}

/** Decodes exactly one deterministic-CBOR item filling all of `bytes`. */
export function decodeCbor(bytes: Uint8Array): CborValue {
  let pos = 0
  const need = (n: number): void => {
    if (pos + n > bytes.length) throw new CborError(`truncated CBOR at byte ${pos}`)
  }
  const arg = (info: number): number => {
    if (info < 24) return info
    const len = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : -1
    if (len < 0) throw new CborError(`unsupported additional info ${info} at byte ${pos - 1}`)
    need(len)
    let n = 0
    for (let i = 0; i < len; i++) n = n * 256 + bytes[pos++]
    if (!Number.isSafeInteger(n)) throw new CborError('integer beyond 2^53')
    return n
  }
  const item = (depth: number): CborValue => {
    if (depth > 16) throw new CborError('nesting too deep')
    need(1)
    const ib = bytes[pos++]
    const major = ib >> 5
    const info = ib & 31
    if (major === 7) {
      if (ib === 0xf4) return false
      if (ib === 0xf5) return true
      if (ib === 0xf6) return null
      throw new CborError(`unsupported simple/float 0x${ib.toString(16)}`)
    }
    const n = arg(info)
    switch (major) {
      case 0:
        return n
      case 1:
        return -1 - n
      case 2:
        need(n)
        pos += n
        return bytes.slice(pos - n, pos)
      case 3:
        need(n)
        pos += n
        try {
          return td.decode(bytes.subarray(pos - n, pos))
        } catch {
          throw new CborError('invalid UTF-8 in text string')
        }
      case 4: {
        const a: CborValue[] = []
        for (let i = 0; i < n; i++) a.push(item(depth + 1))
        return a
      }
      case 5: {
        const m = new Map<number | string, CborValue>()
        for (let i = 0; i < n; i++) {
          const k = item(depth + 1)
          if (typeof k !== 'number' && typeof k !== 'string') throw new CborError('map keys must be integers or text')
          m.set(k, item(depth + 1))
        }
        return m
      }
      default:
        throw new CborError(`unsupported major type ${major}`)
    }
  }
  const v = item(0)
  if (pos !== bytes.length) throw new CborError(`${bytes.length - pos} trailing bytes after CBOR item`)
  const again = encodeCbor(v)
  if (cmpBytes(again, bytes) !== 0) throw new CborError('not deterministic CBOR (non-shortest head, unsorted or duplicate keys)')
  return v
}
