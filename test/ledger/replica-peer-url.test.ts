/**
 * A producer listening on every interface (a gateway with host 0.0.0.0) announces itself as
 * http://0.0.0.0:PORT; a replica must learn it at the address the announcement came from,
 * or on another machine it would fetch announced blocks from itself.
 */
import t from 'tap'
import { openLedger } from '../../ledger/ledger.ts'
import { startPeer } from '../../ledger/sync.ts'
import { waitFor } from '../helpers/wait.ts'
import { tmp, producerKey, fakeFrame, quiet } from './helpers.ts'

t.test('a wildcard X-Peer is read as the address the request came from', async (t) => {
  const A = await openLedger({ dir: tmp(), producerKey, producerId: 'gw-wild', blockIntervalMs: 60_000, ...quiet })
  const nodeA = await startPeer({ ledger: A, host: '0.0.0.0', ...quiet })
  const port = new URL(nodeA.url).port
  t.equal(nodeA.url, `http://0.0.0.0:${port}`, 'the producer calls itself by its wildcard address')
  const R = await openLedger({ dir: tmp(), producerPublicKey: producerKey.publicKey, producerId: 'gw-wild', ...quiet })
  const nodeR = await startPeer({ ledger: R, peers: [`http://127.0.0.1:${port}`], ...quiet })
  t.teardown(async () => {
    await nodeR.close()
    await nodeA.close()
    await R.close()
    await A.close()
  })
  for (let i = 0; i < 5; i++) await A.appendFrame(fakeFrame('d', i), { deviceId: 'd', seq: i, t0: i })
  await A.cutBlock()
  await waitFor(() => R.head().hash === A.head().hash, 'the announced block on the replica', 10_000)
  t.same(nodeR.peers(), [`http://127.0.0.1:${port}`], 'the replica knows the producer by the address it reached it at, not 0.0.0.0')
  t.same(nodeR.reports, [], 'no peer refused')
})
