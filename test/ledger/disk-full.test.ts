/**
 * A write that fails (a full disk: ENOSPC, or a short write the OS reports as success) makes
 * nothing after it durable: the frames it carried are refused, never acknowledged, and the
 * ledger takes no more until `recover()` reopens it as after a crash. Reads keep working
 * meanwhile; what was acknowledged before is all there afterwards; listeners carry over.
 * The failure is injected at the file layer here (test/gateway/disk-full.test.ts fills a
 * real filesystem).
 */
import t from 'tap'
import { open } from 'node:fs/promises'
import { openLedger, StorageError } from '../../ledger/ledger.ts'
import { tmp, producerKey, fakeFrame, quiet } from './helpers.ts'

type WritevFn = (buffers: NodeJS.ArrayBufferView[], position?: number) => Promise<{ bytesWritten: number; buffers: NodeJS.ArrayBufferView[] }>

/** Makes the next `n` writev calls of every FileHandle write only half their first buffer (really) and report that. */
async function shortWrites(n: number): Promise<() => void> {
  const probe = await open(tmp() + '/probe', 'w')
  const proto = Object.getPrototypeOf(probe) as { writev: WritevFn }
  await probe.close()
  const real = proto.writev
  let left = n
  proto.writev = async function (this: { write(b: Uint8Array): Promise<{ bytesWritten: number }> }, buffers, position) {
    if (left <= 0) return real.call(this, buffers, position)
    left--
    const first = buffers[0] as Uint8Array
    const { bytesWritten } = await this.write(first.subarray(0, first.length >> 1))
    return { bytesWritten, buffers }
  }
  return () => (proto.writev = real)
}

t.test('a short write refuses its frames and everything after, until recover(); nothing acknowledged is lost', async (t) => {
  const dir = tmp()
  const l = await openLedger({ dir, producerKey, producerId: 'gw-full', blockMaxLeaves: 8, blockIntervalMs: 60_000, ...quiet })
  t.teardown(() => l.close().catch(() => {}))
  let blocks = 0
  l.onBlock(() => blocks++)
  for (let seq = 1; seq <= 20; seq++) await l.appendFrame(fakeFrame('dev-a', seq), { deviceId: 'dev-a', seq, t0: 1000 + seq })
  await l.cutBlock()
  const blocksBefore = blocks

  const restore = await shortWrites(1)
  const first = [21, 22, 23].map((seq) => l.appendFrame(fakeFrame('dev-a', seq), { deviceId: 'dev-a', seq, t0: 1000 + seq }))
  // queued while the failing write is in progress: must not be written behind the torn record
  await new Promise((r) => setImmediate(r))
  const queued = [30, 31].map((seq) => l.appendFrame(fakeFrame('dev-a', seq), { deviceId: 'dev-a', seq, t0: 1000 + seq }).catch((e: Error) => e))
  const results = await Promise.allSettled(first)
  restore()
  t.ok((await Promise.all(queued)).every((e) => e instanceof StorageError), 'frames queued during the failed write are refused too')
  t.ok(results.every((r) => r.status === 'rejected' && r.reason instanceof StorageError && /short write/.test(r.reason.message)), 'the batch that was cut short is refused (never acknowledged)')
  t.match(l.storageFault, /short write: \d+ of \d+ bytes/, 'storageFault says why')
  await t.rejects(l.appendFrame(fakeFrame('dev-a', 24), { deviceId: 'dev-a', seq: 24, t0: 1024 }), StorageError, 'nothing more is taken while the fault stands')
  t.equal((await l.frames({ deviceId: 'dev-a', limit: 100 })).filter((f) => f.seq <= 20).length, 20, 'reads keep working')

  await l.recover()
  t.equal(l.storageFault, undefined, 'recovered')
  const after = (await l.frames({ deviceId: 'dev-a', limit: 100 })).map((f) => f.seq).sort((a, b) => a - b)
  t.same(after, Array.from({ length: 20 }, (_, i) => i + 1), 'the 20 acknowledged frames are there; the torn record is cut')
  for (const seq of [21, 22, 23, 24]) await l.appendFrame(fakeFrame('dev-a', seq), { deviceId: 'dev-a', seq, t0: 1000 + seq })
  await l.cutBlock()
  t.ok(blocks > blocksBefore, 'a block listener registered before the fault still hears new blocks')
  await l.close()

  const again = await openLedger({ dir, producerKey, producerId: 'gw-full', blockIntervalMs: 60_000, ...quiet })
  const seqs = (await again.frames({ deviceId: 'dev-a', limit: 100 })).map((f) => f.seq).sort((a, b) => a - b)
  t.same(seqs, Array.from({ length: 24 }, (_, i) => i + 1), 'after a reopen: 24 frames, each once')
  await again.close()
})

t.test('recover() on a healthy ledger does nothing', async (t) => {
  const l = await openLedger({ dir: tmp(), producerKey, producerId: 'gw-ok', blockIntervalMs: 60_000, ...quiet })
  await l.appendFrame(fakeFrame('d', 1), { deviceId: 'd', seq: 1, t0: 1 })
  await l.recover()
  t.equal(l.size, 1)
  await l.close()
})
