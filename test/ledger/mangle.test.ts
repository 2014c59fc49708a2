// Malformed input at every public entry point: a clear typed error, never a crash or a pass.
import t from 'tap'
import { encodeCbor, decodeCbor, CborError } from '../../ledger/cbor.ts'
import { decodeHeader, encodeHeader, BlockError } from '../../ledger/block.ts'
import { checkProof, ProofCheckError } from '../../ledger/proof-check.ts'
import { openLedger, LedgerError } from '../../ledger/ledger.ts'
import { sha256, ed25519Verify } from '../../ledger/crypto.ts'
import { tmp, producerKey, fakeFrame, quiet } from './helpers.ts'

const deps = { sha256, ed25519Verify }

t.test('deterministic CBOR: round trip, and every non-canonical form refused', async (t) => {
  const v = new Map<number | string, never>([[1, 'a' as never], [0, new Uint8Array([1, 2]) as never], ['k', [1, -5, 2 ** 40, true, null] as never]])
  const b = encodeCbor(v)
  t.same(decodeCbor(b), v)
  t.equal(Buffer.from(encodeCbor(500)).toString('hex'), '1901f4')
  t.equal(Buffer.from(encodeCbor(-1)).toString('hex'), '20')
  for (const [hex, why] of [
    ['1817', 'non-shortest uint'],
    ['a2020101ff', 'trailing bytes'],
    ['a202010101', 'unsorted keys'],
    ['a201010101', 'duplicate keys'],
    ['5f', 'indefinite length'],
    ['fa3f800000', 'float'],
    ['62c328', 'invalid UTF-8'],
    ['5820', 'truncated bytes'],
    ['', 'empty'],
    ['c100', 'tag'],
  ] as const) t.throws(() => decodeCbor(Buffer.from(hex, 'hex')), CborError, why)
  t.throws(() => encodeCbor(1.5), CborError)
  t.throws(() => encodeCbor(2 ** 53), CborError)
})

t.test('block headers: wrong shapes refused', async (t) => {
  const h = { v: 1 as const, height: 0, prev: new Uint8Array(32), blockRoot: new Uint8Array(32), firstLeaf: 0, leafCount: 1, logSize: 1, logRoot: new Uint8Array(32), tMin: 0, tMax: 0, cutAt: 0, producerId: 'p' }
  t.same(decodeHeader(encodeHeader(h)), h)
  t.throws(() => decodeHeader(encodeHeader({ ...h, logSize: 2 })), BlockError, 'sizes disagree')
  t.throws(() => decodeHeader(encodeHeader({ ...h, prev: new Uint8Array(31) })), BlockError, 'short hash')
  t.throws(() => decodeHeader(encodeCbor([1, 2])), BlockError)
  t.throws(() => decodeHeader(new Uint8Array([0xa0])), BlockError)
  t.throws(() => decodeHeader(new Uint8Array(0)), BlockError)
})

t.test('checkProof: garbage of every kind is refused with ProofCheckError', async (t) => {
  const l = await openLedger({ dir: tmp(), producerKey, producerId: 'm', blockIntervalMs: 60_000, ...quiet })
  const r = await l.appendFrame(fakeFrame('d', 1), { deviceId: 'd', seq: 1, t0: 1 })
  await l.appendFrame(fakeFrame('d', 2), { deviceId: 'd', seq: 2, t0: 2 })
  await l.appendFrame(fakeFrame('d', 3), { deviceId: 'd', seq: 3, t0: 3 })
  const good = await l.proof(r.leafHash)
  await l.close()
  checkProof(good, producerKey.publicKey, deps)
  const cases: [string, (b: any) => void][] = [
    ['null', () => null],
    ['version', (b) => (b.v = 2)],
    ['header not hex', (b) => (b.block.header = 'zz')],
    ['header truncated', (b) => (b.block.header = b.block.header.slice(0, -2))],
    ['signature short', (b) => (b.block.signature = b.block.signature.slice(2))],
    ['leaf hash short', (b) => (b.leaf.hash = b.leaf.hash.slice(2))],
    ['index moved', (b) => ((b.leaf.index = 1), (b.inLog.index = 1), (b.inBlock.index = 1))],
    ['inLog size wrong', (b) => (b.inLog.size = 99)],
    ['path missing', (b) => (b.inBlock.path = b.inBlock.path.slice(1))],
    ['path extra', (b) => b.inLog.path.push(b.leaf.hash)],
    ['path not array', (b) => (b.inLog.path = 'x')],
    ['logRoot swapped', (b) => (b.logRoot = b.leaf.hash)],
    ['bytes not base64', (b) => (b.leaf.bytes = '!!!')],
    ['block hash wrong', (b) => (b.block.hash = '00'.repeat(32))],
    ['bad witness', (b) => b.block.witnesses.push({ publicKey: '11'.repeat(32), signature: '22'.repeat(64) })],
  ]
  for (const [name, mutate] of cases) {
    let b = structuredClone(good) as any
    const out = mutate(b)
    if (out === null) b = null
    t.throws(() => checkProof(b, producerKey.publicKey, deps), ProofCheckError, name)
  }
})

t.test('ledger entry points validate their arguments', async (t) => {
  await t.rejects(openLedger({ dir: tmp(), producerId: 'x' } as never), LedgerError)
  await t.rejects(openLedger({ dir: tmp(), producerKey: { privateKey: new Uint8Array(31), publicKey: producerKey.publicKey }, producerId: 'x' }), TypeError)
  await t.rejects(openLedger({ dir: tmp(), producerKey: { privateKey: producerKey.privateKey, publicKey: new Uint8Array(32) }, producerId: 'x' }), /does not match/)
  await t.rejects(openLedger({ dir: tmp(), producerKey, producerId: '' }), /producerId/)
  await t.rejects(openLedger({ dir: tmp(), producerKey, producerId: 'x', blockMaxLeaves: 0 }), /blockMaxLeaves/)
  const l = await openLedger({ dir: tmp(), producerKey, producerId: 'x', blockIntervalMs: 60_000, ...quiet })
  await t.rejects(l.appendFrame('nope' as never, { deviceId: 'd', seq: 1, t0: 1 }), { code: 'invalid' })
  await t.rejects(l.appendFrame(new Uint8Array(3), { deviceId: '', seq: 1, t0: 1 }), { code: 'invalid' })
  await t.rejects(l.appendFrame(new Uint8Array(3), { deviceId: 'd', seq: 1.5, t0: 1 }), { code: 'invalid' })
  await t.rejects(l.appendFrame(new Uint8Array(3), { deviceId: 'd', seq: 1, t0: 2 ** 48 }), { code: 'invalid' })
  await t.rejects(l.proof('zz'), { code: 'not-found' })
  await t.rejects(l.importBlock({ header: '', signature: '', witnesses: [], leaves: [] }), { code: 'readonly' }, 'the producer never imports')
  t.equal(l.size, 0, 'nothing was appended by the bad calls')
  await l.close()
  const replica = await openLedger({ dir: tmp(), producerPublicKey: producerKey.publicKey, producerId: 'x', ...quiet })
  await t.rejects(replica.appendFrame(new Uint8Array(3), { deviceId: 'd', seq: 1, t0: 1 }), { code: 'readonly' })
  await t.rejects(replica.importBlock({ header: 'zz', signature: '', witnesses: [], leaves: [] }), LedgerError)
  await t.rejects(replica.importBlock({ header: '00', signature: '00', witnesses: [], leaves: [] }), /block header/)
  await replica.close()
})
