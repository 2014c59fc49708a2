/**
 * Annotated hex dump of CBOR: one line per head or string, indented by depth,
 * with the meaning of frame map keys and COSE header labels. For docs and for
 * engineers comparing a board's bytes with a known answer.
 */
import { K, K2 } from '../portable/frame.ts'
import { toHex } from '../portable/bytes.ts'

// Version 2 adds keys 18..23; no key means two things in different versions.
const KEY_NAMES: Record<number, string> = Object.fromEntries(Object.entries({ ...K, ...K2 }).map(([n, k]) => [k, n]))
const COSE_LABELS: Record<number, string> = { 1: 'alg', 2: 'crit', 3: 'content type', 4: 'kid' }
const MAJOR = ['uint', 'nint', 'bytes', 'text', 'array', 'map', 'tag', 'simple/float']

interface Ctx { out: string[]; names: Record<number, string> }

export function annotateCbor(bytes: Uint8Array, names: Record<number, string> = KEY_NAMES): string {
  const ctx: Ctx = { out: [], names }
  item(bytes, 0, 0, ctx, '')
  return ctx.out.join('\n')
}

function head(b: Uint8Array, p: number): { major: number; arg: number; len: number } {
  const major = b[p] >> 5
  const info = b[p] & 31
  if (info < 24) return { major, arg: info, len: 1 }
  const n = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : 8
  let arg = 0
  for (let i = 0; i < n; i++) arg = arg * 256 + b[p + 1 + i]
  return { major, arg, len: 1 + n }
}

function line(ctx: Ctx, depth: number, hex: string, note: string) {
  ctx.out.push(`${'  '.repeat(depth)}${hex.padEnd(Math.max(24 - depth * 2, hex.length + 1))} ${note}`)
}

function item(b: Uint8Array, p: number, depth: number, ctx: Ctx, label: string): number {
  const h = head(b, p)
  const hx = toHex(b.subarray(p, p + h.len))
  const pre = label ? `${label}: ` : ''
  switch (h.major) {
    case 0: line(ctx, depth, hx, `${pre}${h.arg}`); return p + h.len
    case 1: line(ctx, depth, hx, `${pre}${-1 - h.arg}`); return p + h.len
    case 2:
    case 3: {
      const s = b.subarray(p + h.len, p + h.len + h.arg)
      const text = h.major === 3 ? JSON.stringify(Buffer.from(s).toString('utf8')) : `${h.arg} bytes`
      line(ctx, depth, hx, `${pre}${MAJOR[h.major]}(${h.arg}) ${h.major === 3 ? text : ''}`.trimEnd())
      if (s.length) line(ctx, depth + 1, toHex(s.subarray(0, 24)) + (s.length > 24 ? '…' : ''), h.major === 3 ? '' : text)
      return p + h.len + h.arg
    }
    case 4: {
      line(ctx, depth, hx, `${pre}array(${h.arg})`)
      let q = p + h.len
      for (let i = 0; i < h.arg; i++) q = item(b, q, depth + 1, ctx, '')
      return q
    }
    case 5: {
      line(ctx, depth, hx, `${pre}map(${h.arg})`)
      let q = p + h.len
      for (let i = 0; i < h.arg; i++) {
        const kh = head(b, q)
        const name = kh.major === 0 ? ctx.names[kh.arg] : undefined
        line(ctx, depth + 1, toHex(b.subarray(q, q + kh.len)), `key ${kh.major === 1 ? -1 - kh.arg : kh.arg}${name ? ` (${name})` : ''}`)
        q += kh.len
        q = item(b, q, depth + 2, ctx, '')
      }
      return q
    }
    case 6: {
      const name = h.arg === 18 ? 'COSE_Sign1' : h.arg === 17 ? 'COSE_Mac0' : ''
      line(ctx, depth, hx, `${pre}tag(${h.arg}) ${name}`.trimEnd())
      return item(b, p + h.len, depth, ctx, '')
    }
    default:
      line(ctx, depth, toHex(b.subarray(p, p + h.len)), `${pre}simple/float`)
      return p + h.len
  }
}

/** Annotates a COSE frame: the envelope, its protected header, then the payload map. */
export function annotateFrame(bytes: Uint8Array, protectedBytes: Uint8Array, payloadBytes: Uint8Array): string {
  return [
    '# COSE envelope',
    annotateCbor(bytes),
    '',
    '# protected header (inside the first byte string)',
    annotateCbor(protectedBytes, COSE_LABELS),
    '',
    '# payload (inside the third byte string)',
    annotateCbor(payloadBytes),
  ].join('\n')
}
