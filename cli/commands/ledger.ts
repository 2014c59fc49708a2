import { readFile, writeFile } from 'node:fs/promises'
import { existsSync, mkdirSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { group, untilStopSignal, print, type Command } from '../command.ts'
import { parseCli, requireOpt, stringOpt, intOpt } from '../args.ts'
import { CliError, UsageError, invalidOn } from '../errors.ts'
import { readEd25519KeyPair } from '../key-arg.ts'
import { toHex, fromHex } from '../../protocol/portable/bytes.ts'

const HASH_RE = /^[0-9a-fA-F]{64}$/

/** A gateway data directory holds its ledger in ledger/: accept either directory. */
function ledgerDir(dir: string): string {
  return !existsSync(join(dir, 'ledger.json')) && existsSync(join(dir, 'ledger', 'ledger.json')) ? join(dir, 'ledger') : dir
}

/**
 * The directory whose writer lock covers the ledger in `dir`: a gateway's data directory
 * when the ledger is its ledger/ (so `ledger serve` and the gateway exclude each other),
 * else the ledger directory itself.
 */
function writerDir(dir: string): string {
  const parent = dirname(dir)
  return basename(dir) === 'ledger' && existsSync(join(parent, 'gateway.key')) ? parent : dir
}

/** The ledger in `dir`, opened read-only (safe next to a running gateway); a failure is one line, exit 1. */
export async function openLedgerOrFail(dir: string) {
  const { openLedgerReadOnly } = await import('../../ledger/ledger.ts')
  try {
    return await openLedgerReadOnly(dir)
  } catch (e) {
    throw new CliError((e as Error).message)
  }
}

/** A public key given as 64 hex characters or as a key file (JSON with "publicKey" hex, or a file holding the hex). */
async function readPublicKey(arg: string): Promise<Uint8Array> {
  if (HASH_RE.test(arg)) return fromHex(arg)
  let text: string
  try {
    text = (await readFile(arg, 'utf8')).trim()
  } catch (e) {
    throw new UsageError(`--key: expected 64 hex characters or a key file, got '${arg}' (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`)
  }
  if (HASH_RE.test(text)) return fromHex(text)
  let j
  try {
    j = JSON.parse(text)
  } catch {
    throw new UsageError(`--key: ${arg} is neither hex nor a JSON key file`)
  }
  const pub = j?.publicKey ?? j?.producerPublicKey
  if (j?.type !== undefined && j.type !== 'ed25519') throw new UsageError(`--key: ${arg} holds a ${j.type} key; the ledger producer key is ed25519`)
  if (typeof pub !== 'string' || !HASH_RE.test(pub)) throw new UsageError(`--key: ${arg} has no 32-byte hex "publicKey"`)
  return fromHex(pub)
}

const verify: Command = {
  name: 'verify',
  summary: 'Re-hash every leaf and check every block link, root and signature',
  usage: `Usage: mhealth ledger verify --data DIR [--key PUBKEY] [--json]

Reads every segment of the ledger in DIR, re-hashes every frame and consent record,
checks every block's link, Merkle root, log root and Ed25519 signature (and witness
co-signatures), and stops at the first problem, naming the block or leaf and the file
offset. The producer key comes from DIR/ledger.json unless --key (hex or key file) pins it.

Exit status: 0 valid, 1 invalid, 2 usage error.`,
  async run(argv, io) {
    const p = parseCli(argv, { data: { type: 'string' }, key: { type: 'string' }, json: { type: 'boolean' } })
    const dir = ledgerDir(requireOpt(p, 'data'))
    const keyArg = stringOpt(p, 'key')
    const publicKey = keyArg ? await readPublicKey(keyArg) : undefined
    const { verifyLedger } = await import('../../ledger/verify.ts')
    const rep = await verifyLedger(dir, { publicKey })
    if (p.values.json) print(io, JSON.stringify(rep, null, 2))
    else if (rep.ok) {
      print(io, `ok: ${rep.blocks} blocks, ${rep.leaves} leaves (${rep.frames} frames, ${rep.pruned} pruned, ${rep.consent} consent${rep.alarms ? `, ${rep.alarms} alarm events` : ''}), ${rep.witnessSignatures} witness signatures${rep.pendingLeaves ? `, ${rep.pendingLeaves} leaves after the last block` : ''}`)
      if (rep.head) print(io, `head: block ${rep.head.height} ${rep.head.hash}, log size ${rep.head.logSize}, root ${rep.head.logRoot}`)
    }
    if (!rep.ok) {
      if (!p.values.json) io.stderr.write(`INVALID: ${rep.problem?.message}\n`)
      return 1
    }
    return 0
  },
}

const proof: Command = {
  name: 'proof',
  summary: 'Print a self-contained JSON inclusion proof for a frame',
  usage: `Usage: mhealth ledger proof --data DIR --frame HASH [--out FILE] [--no-bytes]

Prints a JSON proof for the leaf whose RFC 6962 leaf hash is HASH (64 hex): the leaf
(and its bytes unless --no-bytes or pruned), its path in its block, its path in the whole
log, the signed block header and the log root. Check it with 'mhealth ledger check-proof'.
Opens DIR read-only, so it is safe next to a running gateway.`,
  async run(argv, io) {
    const p = parseCli(argv, { data: { type: 'string' }, frame: { type: 'string' }, out: { type: 'string' }, 'no-bytes': { type: 'boolean' } })
    const dir = ledgerDir(requireOpt(p, 'data'))
    const frame = requireOpt(p, 'frame')
    if (!HASH_RE.test(frame)) throw new UsageError(`--frame expects a 64-hex leaf hash, got '${frame}'`)
    const { LedgerError } = await import('../../ledger/ledger.ts')
    const l = await openLedgerOrFail(dir)
    try {
      const bundle = await l.proof(frame.toLowerCase(), { includeBytes: !p.values['no-bytes'] })
      const text = JSON.stringify(bundle, null, 2) + '\n'
      const out = stringOpt(p, 'out')
      if (out) await writeFile(out, text)
      else io.stdout.write(text)
      return 0
    } catch (e) {
      if (e instanceof LedgerError) throw new CliError(e.message)
      throw e
    } finally {
      await l.close()
    }
  },
}

const checkProofCmd: Command = {
  name: 'check-proof',
  summary: "Check a proof file offline with only the producer's public key",
  usage: `Usage: mhealth ledger check-proof FILE --key PUBKEY [--json]

Checks the proof in FILE ('-' for stdin) with nothing but the producer's Ed25519 public
key (64 hex, or a key file with "publicKey"): the header signature, both Merkle paths
(in the block and in the whole log), the leaf bytes if present, witness co-signatures.

Exit status: 0 valid, 1 invalid, 2 usage error.`,
  async run(argv, io) {
    const p = parseCli(argv, { key: { type: 'string' }, json: { type: 'boolean' } }, { min: 1, max: 1, names: ['FILE'] })
    const key = await readPublicKey(requireOpt(p, 'key'))
    const file = p.positionals[0]
    let text: string
    try {
      text = file === '-' ? await readStdin() : await readFile(file, 'utf8')
    } catch (e) {
      throw new CliError(`cannot read ${file}: ${(e as Error).message}`)
    }
    let bundle
    try {
      bundle = JSON.parse(text)
    } catch {
      throw new CliError(`INVALID: ${file} is not JSON`)
    }
    const { checkProof, ProofCheckError } = await import('../../ledger/proof-check.ts')
    const { sha256, ed25519Verify } = await import('../../ledger/crypto.ts')
    const r = await invalidOn(ProofCheckError, () => checkProof(bundle, key, { sha256, ed25519Verify }))
    if (p.values.json) print(io, JSON.stringify({ ok: true, ...r, header: undefined }, null, 2))
    else
      print(
        io,
        `ok: leaf ${r.leafHash} is leaf ${r.leafIndex} of block ${r.height} (${r.blockHash}), in the log of size ${r.logSize} with root ${r.logRoot}` +
          `${r.bytesChecked ? '; leaf bytes match' : ''}${r.witnesses.length ? `; ${r.witnesses.length} witness co-signature(s)` : ''}`,
      )
    return 0
  },
}

const head: Command = {
  name: 'head',
  summary: 'Show the latest block of a ledger',
  usage: `Usage: mhealth ledger head --data DIR [--json]

Prints the head block (height, hash, log size and root, time range, producer).`,
  async run(argv, io) {
    const p = parseCli(argv, { data: { type: 'string' }, json: { type: 'boolean' } })
    const dir = ledgerDir(requireOpt(p, 'data'))
    const l = await openLedgerOrFail(dir)
    const h = l.head()
    await l.close()
    const { header, ...rest } = h
    const out = { ...rest, producerId: header?.producerId, tMin: header?.tMin, tMax: header?.tMax, cutAt: header?.cutAt }
    if (p.values.json) print(io, JSON.stringify(out, null, 2))
    else if (h.height < 0) print(io, `empty ledger (${h.pendingLeaves} leaves, no block yet)`)
    else print(io, `block ${h.height} ${h.hash}\nlog size ${h.logSize}, root ${h.logRoot}\nproducer ${out.producerId}, cut at ${new Date(out.cutAt!).toISOString()}${h.pendingLeaves ? `\n${h.pendingLeaves} leaves after the head` : ''}`)
    return 0
  },
}

const consistency: Command = {
  name: 'consistency',
  summary: 'Print an RFC 9162 consistency proof between two log sizes',
  usage: `Usage: mhealth ledger consistency --data DIR --from SIZE1 --to SIZE2

Prints JSON {size1, size2, root1, root2, proof} showing the log of SIZE1 leaves is a
prefix of the log of SIZE2 leaves (sizes are block logSize values).`,
  async run(argv, io) {
    const p = parseCli(argv, { data: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' } })
    const dir = ledgerDir(requireOpt(p, 'data'))
    requireOpt(p, 'from')
    requireOpt(p, 'to')
    const size1 = intOpt(p, 'from', 0, 1)
    const size2 = intOpt(p, 'to', 0, 1)
    if (size1 > size2) throw new UsageError(`--from (${size1}) must not exceed --to (${size2})`)
    const l = await openLedgerOrFail(dir)
    try {
      if (size2 > l.size) throw new CliError(`--to ${size2} exceeds the log size ${l.size}`)
      print(io, JSON.stringify({ size1, size2, root1: toHex(l.tree.rootAt(size1)), root2: toHex(l.tree.rootAt(size2)), proof: l.consistency(size1, size2) }, null, 2))
      return 0
    } finally {
      await l.close()
    }
  },
}

const serve: Command = {
  name: 'serve',
  summary: 'Run a ledger peer (producer or replica) with HTTP block sync',
  usage: `Usage: mhealth ledger serve --data DIR --producer-id ID (--producer-key FILE | --producer-pub KEY)
                           [--port N] [--host H] [--peer URL]... [--witness-key FILE] [--poll-ms N]

Serves the ledger in DIR to peers over HTTP and follows them: announces new blocks,
asks peers for their head on start, fetches missing blocks, verifies every block before
storing it, and refuses (and reports) peers serving invalid or forked chains.
With --producer-key the node is the producer (its blocks come from the gateway); with
--producer-pub it is a replica of that producer. --witness-key co-signs verified blocks.
A replica of a live gateway: run \`mhealth gateway --peer-port N\` and give the replica
--peer http://GATEWAY:N, --producer-id and --producer-pub from the gateway's ready line.
Peers are asked for their head every --poll-ms (default 5000; 0 = only on start), so a
replica keeps up across a gateway restart. (On a live gateway's own data directory this
command is refused: the gateway is its writer.)
Prints 'listening URL' when ready; stops cleanly on SIGINT/SIGTERM.`,
  async run(argv, io) {
    const p = parseCli(argv, {
      data: { type: 'string' }, 'producer-id': { type: 'string' }, 'producer-key': { type: 'string' }, 'producer-pub': { type: 'string' },
      port: { type: 'string' }, host: { type: 'string' }, peer: { type: 'string', multiple: true }, 'witness-key': { type: 'string' },
      'poll-ms': { type: 'string' },
    })
    const dir = ledgerDir(requireOpt(p, 'data'))
    const producerId = requireOpt(p, 'producer-id')
    const keyFile = stringOpt(p, 'producer-key')
    const pubArg = stringOpt(p, 'producer-pub')
    if (!keyFile === !pubArg) throw new UsageError('give exactly one of --producer-key (producer) or --producer-pub (replica)')
    const port = intOpt(p, 'port', 0, 0, 65535)
    const pollMs = intOpt(p, 'poll-ms', 5000, 0)
    const peers = (p.values.peer as string[] | undefined) ?? []
    for (const u of peers) if (!/^https?:\/\/[^/]+/.test(u)) throw new UsageError(`--peer expects a URL like http://127.0.0.1:4100, got '${u}'`)
    const producerKey = keyFile ? await readEd25519KeyPair(keyFile, '--producer-key') : undefined
    const producerPublicKey = pubArg ? await readPublicKey(pubArg) : undefined
    const wk = stringOpt(p, 'witness-key')
    const witnessKey = wk ? await readEd25519KeyPair(wk, '--witness-key') : undefined
    const { openLedger } = await import('../../ledger/ledger.ts')
    const { startPeer } = await import('../../ledger/sync.ts')
    const log = (m: string): void => void io.stderr.write(m + '\n')
    const { acquireDirLock, describeHolder, DirLockBusy } = await import('../../ledger/dir-lock.ts')
    const lockDir = writerDir(dir)
    let lock
    try {
      mkdirSync(lockDir, { recursive: true })
      lock = acquireDirLock(lockDir, { log })
    } catch (e) {
      if (e instanceof DirLockBusy) throw new CliError(`data directory ${lockDir} is in use by ${describeHolder(e.holder)}; stop it first (verify, proof and head read it safely beside it)`)
      throw e
    }
    let ledger
    try {
      ledger = await openLedger({ dir, producerId, producerKey, producerPublicKey, log })
    } catch (e) {
      throw new CliError((e as Error).message)
    }
    const node = await startPeer({ ledger, port, host: stringOpt(p, 'host') ?? '127.0.0.1', peers, witnessKey, log, pollMs })
    print(io, `listening ${node.url}`)
    ledger.onBlock((b) => print(io, `block ${b.header.height} ${toHex(b.hash)} logSize ${b.header.logSize}`))
    await untilStopSignal()
    await node.close()
    await ledger.close()
    lock.release()
    return 0
  },
}

const repair: Command = {
  name: 'repair',
  summary: 'Repair a damaged ledger: keep what verifies, re-sign the rest, say what was dropped',
  usage: `Usage: mhealth ledger repair --data DIR [--producer-key FILE] [--json]

Repairs the ledger in DIR (a gateway data directory or its ledger/ directory) after a
torn or garbled tail, blocks interleaved by two writers, or a damaged index:
  - the longest prefix that verifies is kept byte for byte (proofs already issued hold);
  - every later frame or consent record that is still whole and parses is re-appended
    under new blocks signed by the producer key; the blocks that covered it are dropped;
  - everything else is dropped, and each drop is listed with its file offset and reason;
  - the index is rebuilt from the segments.
Every file it changes is first copied to DIR/ledger/damaged-<time>/ (printed), with a
REPAIR.txt of this report. The result is verified before it exits.

The producer key is DIR/gateway.key for a gateway's data directory, else --producer-key.
Takes the data directory's writer lock: refused while a gateway (or ledger serve) runs.

Exit status: 0 repaired and verified, 1 failure, 2 usage error.`,
  async run(argv, io) {
    const p = parseCli(argv, { data: { type: 'string' }, 'producer-key': { type: 'string' }, json: { type: 'boolean' } })
    const data = requireOpt(p, 'data')
    if (!existsSync(data)) throw new CliError(`no ledger at ${data}: no such directory`)
    const dir = ledgerDir(data)
    if (!existsSync(join(dir, 'ledger.json'))) throw new CliError(`no ledger at ${dir} (no ledger.json)`)
    const lockDir = writerDir(dir)
    const keyFile = stringOpt(p, 'producer-key') ?? (lockDir !== dir ? join(lockDir, 'gateway.key') : undefined)
    if (!keyFile) throw new UsageError(`${dir} is not a gateway's ledger: give the producer key with --producer-key FILE`)
    const producerKey = await readEd25519KeyPair(keyFile, '--producer-key')
    const { acquireDirLock, describeHolder, DirLockBusy } = await import('../../ledger/dir-lock.ts')
    let lock
    try {
      lock = acquireDirLock(lockDir)
    } catch (e) {
      if (e instanceof DirLockBusy) throw new CliError(`data directory ${lockDir} is in use by ${describeHolder(e.holder)}; stop it before repairing`)
      throw e
    }
    try {
      const { repairLedger, formatRepair } = await import('../../ledger/repair.ts')
      let rep
      try {
        rep = await repairLedger(dir, producerKey)
      } catch (e) {
        throw new CliError((e as Error).message)
      }
      if (p.values.json) print(io, JSON.stringify(rep, null, 2))
      else print(io, formatRepair(rep))
      return rep.verify.ok ? 0 : 1
    } finally {
      lock.release()
    }
  },
}

async function readStdin(): Promise<string> {
  let s = ''
  for await (const chunk of process.stdin) s += chunk
  return s
}

export const command: Command = group('ledger', 'Verify the ledger, print and check proofs', [verify, proof, checkProofCmd, head, consistency, serve, repair])
