import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { sharedData } from '../helpers/cli.ts'
import { CborWriter, encodeValue } from '../../protocol/portable/cbor.ts'
import { fromHex, toHex } from '../../protocol/portable/bytes.ts'

interface Item { hex: string; roundtrip: boolean; decoded?: unknown; diagnostic?: string }
const items: Item[] = JSON.parse(readFileSync(join(sharedData, 'vectors', 'cbor', 'appendix_a.json'), 'utf8'))

/** A value the encoder must write as a float even when it is integral (JSON loses that). */
class F { constructor(readonly x: number) {} }
class Simple { constructor(readonly n: number) {} }

/** Diagnostic notation, the subset Appendix A uses for items without `decoded`. */
function parseDiag(s: string): unknown {
  let p = 0
  const ws = () => { while (p < s.length && /\s/.test(s[p])) p++ }
  const value = (): unknown => {
    ws()
    if (s.startsWith("h'", p)) { const e = s.indexOf("'", p + 2); const v = fromHex(s.slice(p + 2, e)); p = e + 1; return v }
    if (s[p] === '"') { const e = s.indexOf('"', p + 1); const v = s.slice(p + 1, e); p = e + 1; return v }
    if (s[p] === '[') { p++; const a: unknown[] = []; ws(); if (s[p] === ']') { p++; return a } for (;;) { a.push(value()); ws(); if (s[p++] === ']') return a } }
    if (s[p] === '{') { p++; const pairs: Array<[unknown, unknown]> = []; ws(); if (s[p] === '}') { p++; return { cborPairs: pairs } } for (;;) { const k = value(); ws(); p++; const v = value(); pairs.push([k, v]); ws(); if (s[p++] === '}') return { cborPairs: pairs } } }
    for (const [word, v] of [['Infinity', new F(Infinity)], ['-Infinity', new F(-Infinity)], ['NaN', new F(NaN)], ['true', true], ['false', false], ['null', null], ['undefined', undefined]] as const) {
      if (s.startsWith(word, p)) { p += word.length; return v }
    }
    const sm = /^simple\((\d+)\)/.exec(s.slice(p)); if (sm) { p += sm[0].length; return new Simple(Number(sm[1])) }
    const m = /^-?\d+(\.\d+)?(e[+-]?\d+)?/.exec(s.slice(p))!
    p += m[0].length
    ws()
    if (s[p] === '(') { p++; const inner = value(); ws(); p++; return { cborTag: Number(m[0]), value: inner } }
    return m[1] || m[2] ? new F(Number(m[0])) : Number(m[0])
  }
  return value()
}

function write(w: CborWriter, v: unknown): void {
  if (v instanceof F) { w.float(v.x); return }
  if (v instanceof Simple) { w.simple(v.n); return }
  if (v && typeof v === 'object' && 'cborTag' in v) { w.tag((v as any).cborTag); write(w, (v as any).value); return }
  if (v && typeof v === 'object' && 'cborPairs' in v) { const pairs = (v as any).cborPairs; w.mapHeader(pairs.length); for (const [k, x] of pairs) { write(w, k); write(w, x) } return }
  encodeValue(w, v)
}

function valueOf(it: Item): unknown {
  if (it.diagnostic !== undefined) return parseDiag(it.diagnostic)
  if (typeof it.decoded === 'number' && /^f[9ab]/.test(it.hex)) return new F(it.decoded)
  return it.decoded
}

/** Why an item is beyond a BigInt-free encoder (exact only to ±2^53). */
function unproducible(it: Item): string | null {
  if (/^c[23]/.test(it.hex)) return 'bignum (tag 2/3)'
  // The vector file predates RFC 8949, whose §3.3 made simple values below 32
  // in the two-byte form not well-formed; the encoder refuses to write one.
  if (it.hex === 'f818') return 'simple(24) two-byte form is not well-formed under RFC 8949 §3.3'
  if (/^[13]b/.test(it.hex) && BigInt('0x' + it.hex.slice(2)) > BigInt(Number.MAX_SAFE_INTEGER)) return 'integer beyond 2^53'
  return null
}

t.test('RFC 8949 Appendix A: every item the portable encoder can produce, byte for byte', async (t) => {
  const skipped: string[] = []
  let reproduced = 0
  for (const it of items.filter((i) => i.roundtrip)) {
    const why = unproducible(it)
    if (why) { skipped.push(`${it.hex}: ${why}`); continue }
    const w = new CborWriter(8)
    write(w, valueOf(it))
    t.equal(toHex(w.result()), it.hex, `${it.diagnostic ?? JSON.stringify(it.decoded)} → ${it.hex}`)
    reproduced++
  }
  t.equal(reproduced, 60, '65 round-trip items, all reproduced but five: 2^64-1 and -2^64 (beyond 2^53), two bignums, and the RFC 7049-only simple(24)')
  t.equal(skipped.length, 5, `skipped: ${skipped.join('; ')}`)
})

t.test('items that are not preferred serialisation are never produced: the encoder picks the shortest form', async (t) => {
  for (const it of items.filter((i) => !i.roundtrip && i.diagnostic === undefined && /^f[ab]/.test(i.hex))) {
    const x = it.hex.includes('7ff8') || it.hex.includes('7fc0') ? NaN : it.hex.startsWith('faff') || it.hex.startsWith('fbfff') ? -Infinity : Infinity
    const w = new CborWriter(8).float(x)
    t.not(toHex(w.result()), it.hex, `${it.hex} is written as ${toHex(w.result())}`)
    t.equal(w.result().length, 3, 'half precision')
  }
})

t.test('CborWriter grows past its initial capacity and reuses its buffer after reset', async (t) => {
  const w = new CborWriter(16)
  const big = new Uint8Array(1000).fill(7)
  w.bytes(big)
  t.equal(w.result().length, 1003)
  w.reset().uint(1)
  t.equal(toHex(w.result()), '01')
  t.throws(() => new CborWriter(8).uint(2 ** 53), /2\^53/)
  t.throws(() => new CborWriter(8).uint(1.5), /integer/)
  t.throws(() => new CborWriter(8).ascii('ü'), /ASCII/)
})
