/**
 * The gateway's live ledger served to replicas over the ledger's peer sync protocol
 * (ledger/sync.ts, the one `mhealth ledger serve` speaks): GET /head, GET /blocks/:height,
 * and each block announced to the replicas that have asked once it is durable. A replica
 * is `mhealth ledger serve --producer-pub KEY --peer URL` on another machine; it verifies
 * every block before storing it. Opt-in (`peerPort`), because the blocks carry the frames.
 */
import type { Ledger } from '../ledger/ledger.ts'
import type { PortSpec } from './config.ts'
import type { FrameStore } from './ledger-port.ts'
import type { Logger } from './log.ts'

export interface PeerListener {
  port: number
  url: string
  close(): Promise<void>
}

/** Starts the peer listener when `cfg.peerPort` asks for one; null when it is off. */
export async function startPeerListener(store: FrameStore, cfg: { peerPort: PortSpec; host: string }, log: Logger): Promise<PeerListener | null> {
  if (cfg.peerPort === 0) return null
  const ledger = (store as { ledger?: Ledger }).ledger
  if (!ledger) throw new Error('peerPort: this gateway\'s frame store is not a ledger, so there is nothing to serve to replicas')
  const { startPeer } = await import('../ledger/sync.ts')
  const node = await startPeer({
    ledger,
    host: cfg.host,
    port: cfg.peerPort === 'auto' ? 0 : cfg.peerPort,
    log: (msg) => log.log('warn', msg, { component: 'peer' }),
  })
  const port = Number(new URL(node.url).port)
  log.log('info', 'serving the ledger to replicas', { url: node.url })
  return { port, url: node.url, close: () => node.close() }
}
