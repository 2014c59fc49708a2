/**
 * The ledger's shared state: one typed object that the concern modules (chain,
 * leaf-index, block-index, checkpoint, consent-log, frame-query, proofs, retention,
 * replication, open) read and change. Each group of fields names the module that
 * writes it; the others only read it. Plus the options resolved into a config.
 */
import type { KeyObject } from 'node:crypto'
import { ed25519PrivateKey, ed25519Sign, ed25519Verify } from './crypto.ts'
import { ConsentState, type ConsentChange } from './consent.ts'
import type { LeafTree } from './tree-index.ts'
import type { IndexStore, Checkpoint, SegStat } from './index-store.ts'
import type { SegmentStore } from './store.ts'
import { LedgerError, type LedgerOptions, type StoredBlock } from './types.ts'

/** One commented defaults object, merged with the caller's options. */
const DEFAULTS = {
  blockIntervalMs: 1000, // paper's rule: a block per second under load
  blockMaxLeaves: 4096, // ... or per 4096 leaves, whichever comes first
  groupCommitMs: 0, // commit on the next tick; concurrent appends share the sync
  segmentBytes: 64 * 1024 * 1024, // keeps retention rewrites bounded
  indexCommitMs: 1000, // bounds the in-memory tail to ~1 s of leaves; each commit costs a few fdatasyncs
}

/** LedgerOptions with the defaults filled in and checked. */
export interface LedgerConfig {
  dir: string
  producerId: string
  blockIntervalMs: number
  blockMaxLeaves: number
  groupCommitMs: number
  segmentBytes: number
  indexCommitMs: number
  retentionDays: number | undefined
  readOnly: boolean
  log: (msg: string) => void
  now: () => number
}

/** Checks the options and resolves the producer key; throws LedgerError('invalid'). */
export function resolveOptions(opts: LedgerOptions): { cfg: LedgerConfig; key: KeyObject | undefined; producerPublicKey: Uint8Array } {
  let key: KeyObject | undefined
  let producerPublicKey: Uint8Array
  if (opts.producerKey) {
    key = ed25519PrivateKey(opts.producerKey.privateKey, opts.producerKey.publicKey)
    producerPublicKey = opts.producerKey.publicKey
    // A key pair whose halves do not match would sign blocks nobody can verify.
    const probe = ed25519Sign(key, new Uint8Array(1))
    if (!ed25519Verify(producerPublicKey, new Uint8Array(1), probe)) throw new LedgerError('producerKey: publicKey does not match privateKey', 'invalid')
  } else if (opts.producerPublicKey) producerPublicKey = opts.producerPublicKey
  else throw new LedgerError('expected producerKey (producer) or producerPublicKey (replica)', 'invalid')
  if (typeof opts.producerId !== 'string' || opts.producerId.length === 0) throw new LedgerError(`producerId: expected a non-empty string, got ${JSON.stringify(opts.producerId)}`, 'invalid')
  const o = { ...opts, ...DEFAULTS, ...stripUndefined(opts) }
  for (const k of ['blockIntervalMs', 'blockMaxLeaves', 'groupCommitMs', 'segmentBytes', 'indexCommitMs'] as const) {
    const v = o[k]
    if (!Number.isFinite(v) || v < 0 || (k === 'blockMaxLeaves' && v < 1)) throw new LedgerError(`${k}: expected a positive number, got ${v}`, 'invalid')
  }
  const cfg: LedgerConfig = {
    dir: o.dir,
    producerId: o.producerId,
    blockIntervalMs: o.blockIntervalMs,
    blockMaxLeaves: o.blockMaxLeaves,
    groupCommitMs: o.groupCommitMs,
    segmentBytes: o.segmentBytes,
    indexCommitMs: o.indexCommitMs,
    retentionDays: o.retentionDays,
    readOnly: !!o.readOnly,
    log: opts.log ?? ((m) => console.error(m)),
    now: opts.now ?? Date.now,
  }
  return { cfg, key, producerPublicKey }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

/** Listeners of one event; a listener that throws is logged and does not stop the others. */
export class Listeners<T> {
  private readonly set = new Set<(v: T) => void>()
  constructor(private readonly event: string, private readonly log: (msg: string) => void) {}
  /** Returns an unsubscribe function. */
  add(cb: (v: T) => void): () => void {
    this.set.add(cb)
    return () => this.set.delete(cb)
  }
  emit(v: T): void {
    for (const cb of this.set) {
      try {
        cb(v)
      } catch (e) {
        this.log(`ledger: ${this.event} listener failed: ${(e as Error).message}`)
      }
    }
  }
}

/** Hands `from`'s block and consent listeners to `to` (a ledger reopened after a write failure). */
export function adoptListeners(from: LedgerState, to: LedgerState): void {
  const t = to as { blockListeners: Listeners<StoredBlock>; consentListeners: Listeners<ConsentChange> }
  t.blockListeners = from.blockListeners
  t.consentListeners = from.consentListeners
}

/** Device numbers are O(devices) in memory; `dbMax` is the highest seq the SQLite index holds. */
export interface DeviceEntry {
  id: number
  dbMax: number
  maxSeq: number
}

export class LedgerState {
  readonly consent = new ConsentState()
  readonly blockListeners: Listeners<StoredBlock>
  readonly consentListeners: Listeners<ConsentChange>
  /** Segment files; set by open.ts once the segments after the checkpoint are replayed. */
  store!: SegmentStore

  // leaf-index.ts: the tail of leaves not yet in the SQLite index, devices, segment ranges.
  deviceNames: string[] = []
  devices = new Map<string, DeviceEntry>()
  dirtyDevices = new Set<number>()
  /** (device number -> seq -> leaf) for leaves not yet in the SQLite index. */
  tailSeq = new Map<number, Map<number, number>>()
  segStats = new Map<number, SegStat>()
  dirtySegs = new Set<number>()
  // consent-log.ts and replication.ts: consent records and witness co-signatures awaiting the index.
  tailConsent: [number, Uint8Array][] = []
  tailWitness: [number, Uint8Array, Uint8Array][] = []

  // checkpoint.ts
  /** Leaves and blocks covered by the index checkpoint. */
  indexed = 0
  ckpt: Checkpoint | undefined
  committing: Promise<void> | undefined
  /** Set once a read found the index damaged: no more checkpoints until it is rebuilt. */
  indexBroken = false
  lastCommit = 0
  /** Blocks covered by DIR/high-water.json (high-water.ts): it is only ever raised. */
  highWater = 0

  // chain.ts and block-index.ts: blocks.
  blockCount = 0
  durableBlocks = 0
  lastBlock: StoredBlock | undefined
  blockLru = new Map<number, StoredBlock>()
  /** Blocks cut or imported whose records are not durable yet. */
  unflushed = new Map<number, StoredBlock>()
  /** First leaf not yet in a block. */
  pendingStart = 0

  // ledger.ts (open and close)
  blockTimer: NodeJS.Timeout | undefined
  pruneTimer: NodeJS.Timeout | undefined
  closed = false

  constructor(
    readonly cfg: LedgerConfig,
    readonly producerPublicKey: Uint8Array,
    /** The producer's signing key; undefined on replicas and once opened read-only. */
    public key: KeyObject | undefined,
    /** Leaf hashes and subtree roots (in the index files; see tree-index.ts, index-store.ts). */
    readonly tree: LeafTree,
    readonly idx: IndexStore,
  ) {
    this.blockListeners = new Listeners('onBlock', cfg.log)
    this.consentListeners = new Listeners('onConsent', cfg.log)
  }
}

export function checkOpen(s: LedgerState): void {
  if (s.closed) throw new LedgerError('ledger is closed', 'closed')
}
