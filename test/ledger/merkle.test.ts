import t from 'tap'
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sharedData } from '../helpers/cli.ts'
import {
  rfc6962, rootOf, inclusionProof, consistencyProof, verifyInclusion, verifyConsistency, CompactRange,
  RootMismatchError, ProofError, toHex, fromHex, type LeafSource,
} from '../../ledger/merkle.ts'

const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest())
const h = rfc6962(sha256)
const vecDir = join(sharedData, 'vectors', 'merkle')
const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'))

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.json') ? [p] : []
  })
}

/** Runs every transparency-dev vector of one kind: accepted when it should be, rejected with a proof error when not. */
function vectorTest(kind: 'inclusion' | 'consistency', verify: (v: Record<string, any>) => void): void {
  t.test(`${kind} vectors (transparency-dev, strict rules)`, async (t) => {
    const files = walk(join(vecDir, kind))
    t.equal(files.length, 98, `all 98 ${kind} vectors present`)
    for (const f of files) {
      const v = JSON.parse(readFileSync(f, 'utf8'))
      const name = `${relative(vecDir, f)}: ${v.desc}`
      let err: unknown
      try {
        verify(v)
      } catch (e) {
        err = e
      }
      if (v.wantErr) t.ok(err instanceof ProofError || err instanceof RootMismatchError, `${name} -> rejected (${(err as Error)?.message})`)
      else t.equal(err, undefined, `${name} -> accepted`)
    }
  })
}

vectorTest('inclusion', (v) => verifyInclusion(h, v.leafIdx, v.treeSize, b64(v.leafHash), (v.proof ?? []).map(b64), b64(v.root)))
vectorTest('consistency', (v) => verifyConsistency(h, v.size1, v.size2, (v.proof ?? []).map(b64), b64(v.root1), b64(v.root2)))

const ref = JSON.parse(readFileSync(join(vecDir, 'rfc6962_reference_tree.json'), 'utf8'))
const refLeaves: Uint8Array[] = ref.leafInputsHex.map((x: string) => h.leafHash(fromHex(x)))

t.test('RFC 6962 reference tree: roots for n = 0..8, node hashes, compact range', async (t) => {
  const cr = new CompactRange(h)
  for (let n = 0; n <= 8; n++) {
    t.equal(toHex(rootOf(h, refLeaves.slice(0, n))), ref.rootHashesHex[n], `MTH(D[0:${n}])`)
    t.equal(toHex(cr.root()), ref.rootHashesHex[n], `compact range root at size ${n}`)
    if (n < 8) cr.append(refLeaves[n])
  }
  ref.nodeHashesHexByLevel.forEach((level: string[], l: number) => {
    level.forEach((hex, i) => t.equal(toHex(rootOf(h, refLeaves.slice(i << l, (i + 1) << l))), hex, `node level ${l} index ${i}`))
  })
})

// Generated proofs for every (index, size) and (size1, size2) up to 40 leaves, verified both ways.
function leaves(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => h.leafHash(new TextEncoder().encode(`leaf ${i}`)))
}
const L = leaves(40)
const src: LeafSource = { leaf: (i) => L[i] }

t.test('generated inclusion and consistency proofs verify', async (t) => {
  let count = 0
  for (let size = 1; size <= 40; size++) {
    const root = rootOf(h, L.slice(0, size))
    for (let i = 0; i < size; i++) {
      verifyInclusion(h, i, size, L[i], inclusionProof(h, src, i, size), root)
      count++
    }
    for (let s1 = 1; s1 <= size; s1++) {
      verifyConsistency(h, s1, size, consistencyProof(h, src, s1, size), rootOf(h, L.slice(0, s1)), root)
      count++
    }
  }
  t.equal(count, 1640, 'every leaf and every prefix of each tree size 1-40 (2 x 820 proofs) verified')
})

/** Corruption probe: every mutation of a valid proof must fail (transparency-dev style). */
function* corruptInclusion(i: number, size: number, leaf: Uint8Array, proof: Uint8Array[]): Generator<[string, number, number, Uint8Array, Uint8Array[]]> {
  if (i > 0) yield ['index-1', i - 1, size, leaf, proof]
  yield ['index+1', i + 1, size, leaf, proof]
  yield ['index^2', i ^ 2, size, leaf, proof]
  yield ['size*2', i, size * 2, leaf, proof]
  if (size > 1) yield ['size/2', i, Math.floor(size / 2), leaf, proof]
  yield ['extra node', i, size, leaf, [...proof, leaf]]
  yield ['preceding node', i, size, leaf, [leaf, ...proof]]
  if (proof.length) yield ['missing node', i, size, leaf, proof.slice(0, -1)]
  for (let k = 0; k < proof.length; k++) {
    const p = proof.map((x) => x.slice())
    p[k][k % 32] ^= 1 << (k % 8)
    yield [`flipped bit in node ${k}`, i, size, leaf, p]
  }
  const bad = leaf.slice()
  bad[31] ^= 0x80
  yield ['flipped leaf bit', i, size, bad, proof]
}

t.test('corruption probe: every mutated inclusion proof fails', async (t) => {
  let n = 0
  for (const size of [1, 2, 3, 5, 8, 13, 21, 32, 40]) {
    const root = rootOf(h, L.slice(0, size))
    for (let i = 0; i < size; i++) {
      for (const [what, idx, sz, leaf, proof] of corruptInclusion(i, size, L[i], inclusionProof(h, src, i, size))) {
        // A mutated (index, size) can still be a valid statement about the same tree only if
        // it proves the *same* leaf at the *same* place; that never holds for distinct leaves.
        t.throws(() => verifyInclusion(h, idx, sz, leaf, proof, root), `size ${size} leaf ${i}: ${what}`)
        n++
      }
    }
  }
  t.ok(n > 500, `${n} corrupted proofs rejected`) // a floor against an emptied probe; the count follows the proof lengths
})

t.test('corruption probe: every mutated consistency proof fails', async (t) => {
  let n = 0
  for (const size2 of [2, 3, 7, 8, 13, 32, 40]) {
    const root2 = rootOf(h, L.slice(0, size2))
    for (let s1 = 1; s1 < size2; s1++) {
      const root1 = rootOf(h, L.slice(0, s1))
      const proof = consistencyProof(h, src, s1, size2)
      const muts: [string, number, number, Uint8Array[], Uint8Array, Uint8Array][] = [
        ['size1+1', s1 + 1, size2, proof, root1, root2],
        ['size2*2', s1, size2 * 2, proof, root1, root2],
        ['extra node', s1, size2, [...proof, root1], root1, root2],
        ['preceding node', s1, size2, [root1, ...proof], root1, root2],
        ['missing node', s1, size2, proof.slice(0, -1), root1, root2],
        ['swapped roots', s1, size2, proof, root2, root1],
      ]
      if (s1 > 1) muts.push(['size1-1', s1 - 1, size2, proof, root1, root2])
      proof.forEach((_, k) => {
        const p = proof.map((x) => x.slice())
        p[k][(k * 7) % 32] ^= 1 << (k % 8)
        muts.push([`flipped bit in node ${k}`, s1, size2, p, root1, root2])
      })
      for (const [what, a, b, p, r1, r2] of muts) {
        t.throws(() => verifyConsistency(h, a, b, p, r1, r2), `${s1}->${size2}: ${what}`)
        n++
      }
    }
  }
  t.ok(n > 300, `${n} corrupted proofs rejected`) // a floor against an emptied probe; the count follows the proof lengths
})

t.test('RootMismatchError carries expected and calculated roots', async (t) => {
  const root = rootOf(h, L.slice(0, 5))
  const proof = inclusionProof(h, src, 2, 5)
  const wrong = root.slice()
  wrong[0] ^= 1
  try {
    verifyInclusion(h, 2, 5, L[2], proof, wrong)
    t.fail('should throw')
  } catch (e) {
    t.ok(e instanceof RootMismatchError)
    t.same((e as RootMismatchError).expected, wrong)
    t.same((e as RootMismatchError).calculated, root)
  }
  t.throws(() => inclusionProof(h, src, 5, 5), ProofError)
  t.throws(() => consistencyProof(h, src, 0, 5), ProofError)
  t.throws(() => verifyInclusion(h, -1, 5, L[0], proof, root), ProofError)
  t.throws(() => verifyInclusion(h, 0.5, 5, L[0], proof, root), ProofError)
})

t.test('merkle.ts imports only portable code; the proof checker bundles for the browser', async (t) => {
  const text = readFileSync(new URL('../../ledger/merkle.ts', import.meta.url), 'utf8')
  t.notMatch(text, /^\s*(import|export)\s[^\n]*from\s+'(?!\.\.\/protocol\/portable\/)/m, 'no imports but protocol/portable')
  const { build } = await import('esbuild')
  const out = await build({ entryPoints: [fileURLToPath(new URL('../../ledger/proof-check.ts', import.meta.url))], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent' })
  const js = out.outputFiles[0].text
  t.notMatch(js, /node:|require\(/, 'bundle has no Node module references')
  // Run the bundle with @noble/hashes + @noble/curves (what the dashboard does) on a real proof.
  const mod = await import('data:text/javascript;base64,' + Buffer.from(js).toString('base64'))
  const { sha256: nobleSha } = await import('@noble/hashes/sha2.js')
  const { ed25519 } = await import('@noble/curves/ed25519.js')
  const { openLedger } = await import('../../ledger/ledger.ts')
  const { producerKey, tmp, fakeFrame, quiet } = await import('./helpers.ts')
  const l = await openLedger({ dir: tmp(), producerKey, producerId: 'browser', blockIntervalMs: 60_000, ...quiet })
  const r = await l.appendFrame(fakeFrame('d', 1), { deviceId: 'd', seq: 1, t0: 1 })
  await l.appendFrame(fakeFrame('d', 2), { deviceId: 'd', seq: 2, t0: 2 })
  const bundle = await l.proof(r.leafHash)
  await l.close()
  const res = mod.checkProof(bundle, producerKey.publicKey, { sha256: nobleSha, ed25519Verify: (pk: Uint8Array, m: Uint8Array, s: Uint8Array) => ed25519.verify(s, m, pk) })
  t.equal(res.leafIndex, 0, 'bundled checker + noble verify a node-made proof')
})
