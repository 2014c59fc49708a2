/**
 * The ledger's public types and its error class (ledger.ts re-exports them), plus the
 * parsing of hex that callers and peers hand in.
 */
import type { BlockHeader } from './block.ts'
import type { LeafKind } from './leaf.ts'
import { fromHex } from '../protocol/portable/bytes.ts'

export interface LedgerOptions {
  /** Data directory (created if missing). */
  dir: string
  /** Producer's Ed25519 key (32-byte seed + 32-byte public key). Omit for a replica that only imports blocks. */
  producerKey?: { privateKey: Uint8Array; publicKey: Uint8Array }
  /** Required for a replica: the producer public key every block must be signed with. */
  producerPublicKey?: Uint8Array
  producerId: string
  /** Cut a block at most this long after its first leaf (ms). */
  blockIntervalMs?: number
  /** ... or as soon as it has this many leaves. */
  blockMaxLeaves?: number
  /** Prune frame payloads whose t0 is older than this many days (hashes and headers stay). */
  retentionDays?: number
  /** Extra wait before each group commit (ms); 0 = commit on the next tick. */
  groupCommitMs?: number
  /** Roll to a new segment file at a block boundary once this size is reached. */
  segmentBytes?: number
  /** Where operational messages go (torn tail cut, pruning); default console.error. */
  log?: (msg: string) => void
  /** Clock (tests). */
  now?: () => number
  /** Open for reading only (CLI tools next to a running gateway): no writes, no timers, no tail repair. */
  readOnly?: boolean
  /** Write the on-disk index checkpoint at most this often (ms); leaves not yet indexed stay in memory. */
  indexCommitMs?: number
}

export class LedgerError extends Error {
  override name = 'LedgerError'
  constructor(message: string, readonly code: 'duplicate' | 'invalid' | 'not-found' | 'closed' | 'readonly' | 'block' | 'damaged') {
    super(message)
  }
}

export type { LeafKind }

export interface StoredBlock {
  header: BlockHeader
  headerBytes: Uint8Array
  signature: Uint8Array
  hash: Uint8Array
  witnesses: { publicKey: Uint8Array; signature: Uint8Array }[]
}

export interface FrameInfo {
  leafIndex: number
  leafHash: string
  deviceId: string
  seq: number
  t0: number
  /** Frame bytes, or null once retention pruned them. */
  bytes: Uint8Array | null
}

export interface ProofBundle {
  v: 1
  leaf: { hash: string; index: number; kind: LeafKind; deviceId?: string; seq?: number; t0?: number; bytes?: string }
  block: { header: string; signature: string; hash: string; witnesses: { publicKey: string; signature: string }[] }
  inBlock: { index: number; size: number; path: string[] }
  inLog: { index: number; size: number; path: string[] }
  logRoot: string
}

/** Exported block with its leaves' record bodies, as sent between peers. */
export interface BlockTransfer {
  header: string
  signature: string
  witnesses: { publicKey: string; signature: string }[]
  /** Base64 record bodies of the block's leaves (frame, pruned frame or consent), in order. */
  leaves: string[]
}

/** Hex from a caller or a peer as bytes, or undefined if it is not a hex string. */
export function tryFromHex(s: unknown): Uint8Array | undefined {
  if (typeof s !== 'string') return undefined
  try {
    return fromHex(s)
  } catch {
    return undefined
  }
}
