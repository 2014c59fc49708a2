/**
 * Block headers: what they contain, their deterministic CBOR encoding, the bytes the
 * producer signs and the block hash that chains them. No Node imports (the browser
 * verifier uses this file too). Byte layout: docs/ledger.md "Block header".
 */
import { encodeCbor, decodeCbor, CborError } from './cbor.ts'
import type { Sha256 } from './merkle.ts'

export interface BlockHeader {
  v: 1
  height: number
  /** SHA-256 of the previous header's CBOR; 32 zero bytes for height 0. */
  prev: Uint8Array
  /** RFC 6962 root over this block's leaves. */
  blockRoot: Uint8Array
  /** Global index of the block's first leaf. */
  firstLeaf: number
  leafCount: number
  /** Size and RFC 9162 root of the whole log (all leaves up to and including this block). */
  logSize: number
  logRoot: Uint8Array
  /** Earliest and latest leaf time (frame t0 / consent issuedAt), ms since epoch; 0 when empty. */
  tMin: number
  tMax: number
  /** When the producer cut the block, ms since epoch. */
  cutAt: number
  producerId: string
}

// Integer map keys (ordered by value in deterministic CBOR; see docs/ledger.md).
const K = { v: 0, height: 1, prev: 2, blockRoot: 3, firstLeaf: 4, leafCount: 5, logSize: 6, logRoot: 7, tMin: 8, tMax: 9, cutAt: 10, producerId: 11 } as const

/** Domain-separation prefixes, so a block signature can never be mistaken for anything else. */
export const BLOCK_SIG_CONTEXT = new TextEncoder().encode('mhealth-ledger-block-v1\0')
export const WITNESS_SIG_CONTEXT = new TextEncoder().encode('mhealth-ledger-witness-v1\0')
export const ZERO_HASH = new Uint8Array(32)

export class BlockError extends Error {
  override name = 'BlockError'
}

const FIELDS = Object.keys(K) as (keyof typeof K)[]

export function encodeHeader(h: BlockHeader): Uint8Array {
  return encodeCbor(new Map<number, number | string | Uint8Array>(FIELDS.map((f) => [K[f], h[f]])))
}

export function decodeHeader(bytes: Uint8Array): BlockHeader {
  let m
  try {
    m = decodeCbor(bytes)
  } catch (e) {
    throw new BlockError(`block header: ${(e as CborError).message}`)
  }
  if (!(m instanceof Map) || m.size !== 12) throw new BlockError('block header: expected a CBOR map with 12 entries')
  const int = (k: number, name: string): number => {
    const x = m.get(k)
    if (typeof x !== 'number' || x < 0) throw new BlockError(`block header: ${name} expected a non-negative integer, got ${String(x)}`)
    return x
  }
  const h32 = (k: number, name: string): Uint8Array => {
    const x = m.get(k)
    if (!(x instanceof Uint8Array) || x.length !== 32) throw new BlockError(`block header: ${name} expected 32 bytes`)
    return x
  }
  const v = int(K.v, 'v')
  if (v !== 1) throw new BlockError(`block header: unsupported version ${v}`)
  const producerId = m.get(K.producerId)
  if (typeof producerId !== 'string') throw new BlockError('block header: producerId expected text')
  const h: BlockHeader = {
    v: 1,
    height: int(K.height, 'height'),
    prev: h32(K.prev, 'prev'),
    blockRoot: h32(K.blockRoot, 'blockRoot'),
    firstLeaf: int(K.firstLeaf, 'firstLeaf'),
    leafCount: int(K.leafCount, 'leafCount'),
    logSize: int(K.logSize, 'logSize'),
    logRoot: h32(K.logRoot, 'logRoot'),
    tMin: int(K.tMin, 'tMin'),
    tMax: int(K.tMax, 'tMax'),
    cutAt: int(K.cutAt, 'cutAt'),
    producerId,
  }
  if (h.firstLeaf + h.leafCount !== h.logSize) throw new BlockError(`block header: firstLeaf + leafCount (${h.firstLeaf + h.leafCount}) != logSize (${h.logSize})`)
  return h
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a)
  out.set(b, a.length)
  return out
}

/** The bytes the producer signs with Ed25519: context || header CBOR. */
export const blockToBeSigned = (headerBytes: Uint8Array): Uint8Array => concat(BLOCK_SIG_CONTEXT, headerBytes)
/** The bytes a witness co-signs: its own context || header CBOR. */
export const witnessToBeSigned = (headerBytes: Uint8Array): Uint8Array => concat(WITNESS_SIG_CONTEXT, headerBytes)
/** Block hash = SHA-256(header CBOR); signatures are not part of it, so co-signing never changes it. */
export const blockHash = (sha256: Sha256, headerBytes: Uint8Array): Uint8Array => sha256(headerBytes)
