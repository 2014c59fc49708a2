import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:http'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { repoRoot } from '../helpers/cli.ts'
import { openLedger, type BlockTransfer } from '../../ledger/ledger.ts'
import { startPeer } from '../../ledger/sync.ts'
import { verifyLedger } from '../../ledger/verify.ts'
import { toHex } from '../../ledger/merkle.ts'
import { ed25519Generate, ed25519Sign, ed25519PrivateKey } from '../../ledger/crypto.ts'
import { encodeHeader, decodeHeader, blockToBeSigned } from '../../ledger/block.ts'
import { tmp, producerKey, fakeFrame, quiet } from './helpers.ts'
import { waitFor } from '../helpers/wait.ts'

/** Spaces the producer's appends out over time (blocks get cut on their interval in between). */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const pubHex = toHex(producerKey.publicKey)

function keyFile(k: { privateKey: Uint8Array; publicKey: Uint8Array }): string {
  const f = join(tmp(), 'k.json')
  writeFileSync(f, JSON.stringify({ type: 'ed25519', id: 'w', publicKey: toHex(k.publicKey), privateKey: toHex(k.privateKey) }))
  return f
}

/** Starts `mhealth ledger serve` as a replica; resolves with its URL once it listens. */
function replica(dir: string, peers: string[], witness: string): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const args = [join(repoRoot, 'bin', 'mhealth.js'), 'ledger', 'serve', '--data', dir, '--producer-id', 'gw-sync', '--producer-pub', pubHex, '--witness-key', witness, ...peers.flatMap((p) => ['--peer', p])]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stderr!.on('data', (d) => (err += d))
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d) => {
      out += d
      const m = /listening (http:\/\/\S+)/.exec(out)
      if (m) resolve({ child, url: m[1], stderr: () => err })
    })
    child.on('exit', (code) => reject(new Error(`replica exited ${code}: ${err}`)))
  })
}

async function head(url: string): Promise<{ height: number; hash: string; logRoot: string }> {
  return (await fetch(url + '/head')).json() as Promise<{ height: number; hash: string; logRoot: string }>
}

t.test('three nodes: one killed and restarted mid-stream, one fed a forged block; honest heads end identical', async (t) => {
  const dirA = tmp()
  const dirB = tmp()
  const dirC = tmp()
  const A = await openLedger({ dir: dirA, producerKey, producerId: 'gw-sync', blockMaxLeaves: 10, blockIntervalMs: 50, ...quiet })
  const nodeA = await startPeer({ ledger: A, ...quiet })
  const wB = ed25519Generate()
  const wC = ed25519Generate()
  let B = await replica(dirB, [nodeA.url], keyFile(wB))
  const C = await replica(dirC, [nodeA.url, B.url], keyFile(wC))
  let seq = 0
  const feed = async (n: number) => {
    for (let i = 0; i < n; i++) {
      await Promise.all(Array.from({ length: 5 }, () => A.appendFrame(fakeFrame('dev-s', seq, 120), { deviceId: 'dev-s', seq: seq++, t0: 1_700_000_000_000 + seq })))
      await sleep(10)
    }
  }
  await feed(20)
  // Kill B hard mid-stream, keep producing, then restart it on the same data directory.
  B.child.kill('SIGKILL')
  await new Promise((r) => B.child.once('close', r))
  await feed(20)
  B = await replica(dirB, [nodeA.url, C.url], keyFile(wB))

  // A forger announces a block one past the real head to C, serving real blocks below it.
  const forgerKey = ed25519Generate()
  let forgedHeight = -1
  const forger = createServer(async (req, res) => {
    const m = /^\/blocks\/(\d+)$/.exec(req.url ?? '')
    if (m) {
      const h = Number(m[1])
      let body: BlockTransfer | undefined
      if (h < forgedHeight) body = await A.exportBlock(h)
      else if (h === forgedHeight) {
        // Copy the previous block's leaves under a header it signs itself (wrong key).
        const real = (await A.exportBlock(h - 1))!
        const hd = decodeHeader(Buffer.from(real.header, 'hex'))
        const fake = encodeHeader({ ...hd, height: h, prev: A.getBlock(h - 1)!.hash, firstLeaf: hd.logSize, logSize: hd.logSize + hd.leafCount })
        body = { header: toHex(fake), signature: toHex(ed25519Sign(ed25519PrivateKey(forgerKey.privateKey, forgerKey.publicKey), blockToBeSigned(fake))), witnesses: [], leaves: real.leaves }
      }
      res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' })
      return res.end(JSON.stringify(body ?? {}))
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((r) => forger.listen(0, '127.0.0.1', () => r()))
  const forgerUrl = `http://127.0.0.1:${(forger.address() as AddressInfo).port}`
  await A.cutBlock()
  forgedHeight = A.height + 1
  const ann = await fetch(C.url + '/announce', { method: 'POST', headers: { 'content-type': 'application/json', 'x-peer': forgerUrl }, body: JSON.stringify({ height: forgedHeight, hash: '00'.repeat(32) }) })
  t.equal(ann.status, 202)

  await feed(10)
  await A.cutBlock()
  // Wait for the honest heads to converge.
  const want = A.head()
  let hb = await head(B.url)
  let hc = await head(C.url)
  await waitFor(async () => {
    ;[hb, hc] = await Promise.all([head(B.url), head(C.url)])
    return hb.hash === want.hash && hc.hash === want.hash
  }, () => `B and C at the producer head ${want.height} (B at ${hb.height}, C at ${hc.height})`, 20_000, 100).catch(() => {}) // the two checks below say which did not
  t.same(hb, { height: want.height, hash: want.hash, logSize: want.logSize, logRoot: want.logRoot }, 'B (killed and restarted) has the producer head')
  t.same(hc, { height: want.height, hash: want.hash, logSize: want.logSize, logRoot: want.logRoot }, 'C (fed a forged block) has the producer head')
  const reports = (await (await fetch(C.url + '/reports')).json()) as { peer: string; reason: string; height: number }[]
  const r = reports.find((x) => x.peer === forgerUrl)
  t.ok(r, 'C reported the forger')
  t.match(r?.reason, new RegExp(`invalid block ${forgedHeight}: .*bad producer signature`))
  t.equal((await fetch(C.url + '/head', { headers: { 'x-peer': forgerUrl } })).status, 403, 'the forger is refused from then on')
  // Witness co-signatures from B and C reached the producer (each posts its own once it holds a block).
  const witnesses = () => {
    const keys = new Set<string>()
    for (let h = 0; h <= A.height; h++) for (const w of A.getBlock(h)!.witnesses) keys.add(toHex(w.publicKey))
    return keys
  }
  await waitFor(() => witnesses().size === 2, () => `co-signatures from both B and C (have ${witnesses().size} witnesses)`, 20_000).catch(() => {})
  t.same([...witnesses()].sort(), [toHex(wB.publicKey), toHex(wC.publicKey)].sort(), 'the producer holds co-signatures from both replicas, and no one else\'s')

  for (const n of [B, C]) {
    n.child.kill('SIGTERM')
    await new Promise((res) => n.child.once('close', res))
  }
  forger.close()
  await nodeA.close()
  await A.close()
  for (const [name, dir] of [['A', dirA], ['B', dirB], ['C', dirC]]) {
    const rep = await verifyLedger(dir)
    t.ok(rep.ok, `${name} verifies: ${rep.problem?.message ?? ''}`)
    if (name !== 'A') t.equal(rep.head?.hash, want.hash, `${name} on disk ends at the producer head`)
  }
})

t.test('in-process peers: a fork announcement and a block with altered leaves are refused and reported', async (t) => {
  const A = await openLedger({ dir: tmp(), producerKey, producerId: 'gw-sync', blockMaxLeaves: 4, blockIntervalMs: 60_000, ...quiet })
  for (let i = 0; i < 12; i++) await A.appendFrame(fakeFrame('d', i, 64), { deviceId: 'd', seq: i, t0: i })
  const nodeA = await startPeer({ ledger: A, ...quiet })
  const R = await openLedger({ dir: tmp(), producerPublicKey: producerKey.publicKey, producerId: 'gw-sync', ...quiet })
  const nodeR = await startPeer({ ledger: R, peers: [nodeA.url], ...quiet })
  t.equal(R.head().hash, A.head().hash, 'a joining node asks for the head and catches up at once')

  // Evil peer 1: claims a different block at a height we hold (fork).
  const fork = 'http://127.0.0.1:9'
  await fetch(nodeR.url + '/announce', { method: 'POST', headers: { 'x-peer': fork, 'content-type': 'application/json' }, body: JSON.stringify({ height: 1, hash: 'ab'.repeat(32) }) })
  // Evil peer 2: serves the producer's real, correctly signed next header with one leaf altered.
  await A.appendFrame(fakeFrame('d', 100, 64), { deviceId: 'd', seq: 100, t0: 100 })
  await A.appendFrame(fakeFrame('d', 101, 64), { deviceId: 'd', seq: 101, t0: 101 })
  const evil = createServer(async (req, res) => {
    const real = (await A.exportBlock(3))!
    const leaf = Buffer.from(real.leaves[1], 'base64')
    leaf[leaf.length - 1] ^= 1
    real.leaves[1] = leaf.toString('base64')
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(real))
  })
  // Stop R from hearing about block 3 from A first: close A's peer before cutting it.
  await nodeA.close()
  await A.cutBlock()
  await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()))
  const evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`
  const reported = new Promise((r) => nodeR.onReport((x) => x.peer === evilUrl && r(x)))
  await fetch(nodeR.url + '/announce', { method: 'POST', headers: { 'x-peer': evilUrl, 'content-type': 'application/json' }, body: JSON.stringify({ height: 3 }) })
  const rep = (await reported) as { reason: string }
  t.match(rep.reason, /invalid block 3: .*blockRoot mismatch/, 'altered leaf caught by re-hashing')
  const forkRep = nodeR.reports.find((x) => x.peer === fork)
  t.match(forkRep?.reason, /^fork: their block 1 is abab/, 'fork reported')
  t.equal(R.height, 2, 'nothing from the evil peers was stored')
  evil.close()
  await nodeR.close()
  await R.close()
  await A.close()
})
