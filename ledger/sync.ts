/**
 * Peer sync over HTTP (node:http), following the paper's rules:
 *  - a node announces each new block to its peers (POST /announce);
 *  - a node that joins asks its peers for their head (GET /head);
 *  - a node that sees a higher block fetches it and appends it if it links, otherwise
 *    fetches the missing range (GET /blocks/:height), one block at a time;
 *  - every received block is fully verified (Ledger.importBlock) before it is stored;
 *  - a peer that serves an invalid or forked chain is refused, reported and never
 *    followed again (banned by URL);
 *  - replicas holding a witness key co-sign each verified block and send the
 *    co-signature to their peers (POST /witness), so the producer cannot rewrite history unseen;
 *  - with `pollMs`, a node also asks its peers for their head on a timer: an announcement
 *    is lost when the announcer restarts (it forgets who its peers were) or when we were
 *    down, and a replica of a live gateway must keep up all the same.
 * Peers identify themselves with the X-Peer header (their base URL), so a node learns
 * who is out there from whoever talks to it.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { HttpError, errorMessage } from '../http/errors.ts'
import { readJson } from '../http/body.ts'
import { sendJson } from '../http/respond.ts'
import { Router } from '../http/router.ts'
import { createHttpServer, requestListener, type RequestContext } from '../http/server.ts'
import { fromHex, toHex } from '../protocol/portable/bytes.ts'
import { Ledger, LedgerError, type BlockTransfer } from './ledger.ts'

export interface PeerReport {
  peer: string
  height?: number
  reason: string
  at: number
}

export interface PeerOptions {
  ledger: Ledger
  host?: string
  port?: number
  /** Base URLs of known peers, e.g. http://127.0.0.1:4100 */
  peers?: string[]
  /** Ed25519 key this node co-signs verified blocks with. */
  witnessKey?: { privateKey: Uint8Array; publicKey: Uint8Array }
  log?: (msg: string) => void
  /** Per-request timeout (ms). */
  timeoutMs?: number
  /** Ask every peer for its head this often (ms) besides on start; 0 or unset = only on start. */
  pollMs?: number
}

export interface PeerNode {
  url: string
  peers(): string[]
  reports: PeerReport[]
  onReport(cb: (r: PeerReport) => void): void
  /** Ask every peer for its head and catch up; resolves when done. */
  syncNow(): Promise<void>
  close(): Promise<void>
}

/** Announcements and co-signatures are a few hundred bytes; blocks travel in answers, not requests. */
const BODY = { maxBytes: 64 * 1024 }

export async function startPeer(opts: PeerOptions): Promise<PeerNode> {
  const { ledger } = opts
  const log = opts.log ?? ((m: string) => console.error(m))
  const timeoutMs = opts.timeoutMs ?? 10_000
  const peers = new Set<string>((opts.peers ?? []).map((u) => normUrl(u)))
  const banned = new Set<string>()
  const reports: PeerReport[] = []
  const reportCbs: ((r: PeerReport) => void)[] = []
  let url = ''
  let closed = false
  // Sync steps run one at a time so two announcements never import the same height twice.
  let chain: Promise<unknown> = Promise.resolve()
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const p = chain.then(f, f)
    chain = p.catch(() => {})
    return p
  }

  function report(peer: string, reason: string, height?: number): void {
    banned.add(peer)
    peers.delete(peer)
    const r = { peer, height, reason, at: Date.now() }
    reports.push(r)
    log(`ledger sync: refusing peer ${peer}: ${reason}`)
    for (const cb of reportCbs) cb(r)
  }

  function learn(peer: string | undefined): void {
    if (!peer) return
    const p = normUrl(peer)
    if (p && p !== url && !banned.has(p)) peers.add(p)
  }

  async function call(peer: string, method: string, path: string, body?: unknown): Promise<unknown> {
    const ac = new AbortController()
    const timer = setTimeout(() => ac.abort(), timeoutMs)
    try {
      const res = await fetch(peer + path, {
        method,
        headers: { 'content-type': 'application/json', 'x-peer': url },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: ac.signal,
      })
      if (res.status === 404) return undefined
      if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}`)
      return res.status === 204 ? undefined : await res.json()
    } finally {
      clearTimeout(timer)
    }
  }

  /** Brings us up to `height` from `peer`, verifying every block; reports the peer on any invalid block. */
  async function catchUp(peer: string, height: number, hash?: string): Promise<void> {
    if (banned.has(peer) || closed) return
    const ours = ledger.height
    if (height <= ours) {
      // Same height or lower: their block there must be ours, or they are on a fork.
      if (hash && hash !== toHex(ledger.getBlock(height)!.hash)) report(peer, `fork: their block ${height} is ${hash}, ours is ${toHex(ledger.getBlock(height)!.hash)}`, height)
      return
    }
    if (ledger.producerIsLocal) {
      report(peer, `claims block ${height} but this node is the producer and its head is ${ours}`, height)
      return
    }
    for (let h = ours + 1; h <= height; h++) {
      let t: BlockTransfer | undefined
      try {
        t = (await call(peer, 'GET', `/blocks/${h}`)) as BlockTransfer | undefined
      } catch (e) {
        log(`ledger sync: ${peer} unreachable while fetching block ${h}: ${(e as Error).message}`)
        return
      }
      if (!t) {
        report(peer, `announced block ${height} but does not serve block ${h}`, h)
        return
      }
      try {
        await ledger.importBlock(t)
      } catch (e) {
        if (e instanceof LedgerError || (e as Error).name === 'BlockError') report(peer, `invalid block ${h}: ${(e as Error).message}`, h)
        else log(`ledger sync: cannot store block ${h}: ${(e as Error).message}`)
        return
      }
    }
  }

  async function witness(height: number): Promise<void> {
    if (!opts.witnessKey) return
    const sig = ledger.witnessSign(height, opts.witnessKey)
    await ledger.addWitness(height, opts.witnessKey.publicKey, sig).catch(() => false)
    const body = { height, publicKey: toHex(opts.witnessKey.publicKey), signature: toHex(sig) }
    await Promise.all([...peers].map((p) => call(p, 'POST', '/witness', body).catch(() => {})))
  }

  const unsub = ledger.onBlock((b) => {
    const height = b.header.height
    const msg = { height, hash: toHex(b.hash) }
    void witness(height).catch(() => {})
    for (const p of peers) void call(p, 'POST', '/announce', msg).catch(() => {})
  })

  /** A request from a peer: who it says it is (X-Peer), already checked against the banned list. */
  type Ctx = RequestContext & { peer: string | undefined }

  const routes = new Router<Ctx>()
    .get('/head', ({ res }) => {
      const h = ledger.head()
      sendJson(res, 200, { height: h.height, hash: h.hash, logSize: h.logSize, logRoot: h.logRoot })
    })
    .get('/blocks/:height', async ({ res }, p) => {
      const t = /^\d+$/.test(p.height) ? await ledger.exportBlock(Number(p.height)) : undefined
      if (!t) throw new HttpError(404, 'no such block')
      sendJson(res, 200, t)
    })
    .get('/reports', ({ res }) => sendJson(res, 200, reports))
    .post('/announce', async ({ req, res, peer }) => {
      const body = await readJson(req, BODY)
      const height = body.height
      if (typeof height !== 'number' || !Number.isSafeInteger(height) || height < 0) throw new HttpError(400, 'expected {height, hash}')
      sendJson(res, 202, { ok: true })
      if (peer) void serial(() => catchUp(peer, height, typeof body.hash === 'string' ? body.hash : undefined))
    })
    .post('/witness', async ({ req, res }) => {
      const b = await readJson(req, BODY)
      let added: boolean
      try {
        added = await ledger.addWitness(Number(b.height), fromHex(String(b.publicKey)), fromHex(String(b.signature)))
      } catch (e) {
        throw new HttpError(400, errorMessage(e))
      }
      sendJson(res, 200, { added })
    })

  function handle(c: RequestContext): unknown {
    const from = c.req.headers['x-peer']
    const peer = typeof from === 'string' ? normUrl(from, c.req.socket.remoteAddress) : undefined
    if (peer && banned.has(peer)) throw new HttpError(403, 'peer refused')
    learn(peer)
    const m = routes.match(c.method, c.path)
    // Unknown paths and methods alike are a 404: a peer only needs to know what is served.
    if (!m.handler) throw new HttpError(404, 'not found')
    return m.handler({ ...c, peer }, m.params)
  }

  const server: Server = createHttpServer(requestListener(handle, { onInternal: (e) => log(`ledger sync: request failed: ${errorMessage(e)}`) }))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve())
  })
  const addr = server.address() as AddressInfo
  url = `http://${opts.host ?? '127.0.0.1'}:${addr.port}`

  async function syncNow(): Promise<void> {
    await Promise.all(
      [...peers].map(async (p) => {
        try {
          const h = (await call(p, 'GET', '/head')) as { height: number; hash: string } | undefined
          if (h && typeof h.height === 'number') await serial(() => catchUp(p, h.height, h.hash))
        } catch (e) {
          log(`ledger sync: peer ${p} unreachable: ${(e as Error).message}`)
        }
      }),
    )
  }
  await syncNow() // a node that joins asks its peers for their head
  // One poll at a time, rescheduled when done: a slow peer never piles up requests.
  let pollTimer: NodeJS.Timeout | undefined
  const schedulePoll = (): void => {
    if (!opts.pollMs || closed) return
    pollTimer = setTimeout(() => void syncNow().finally(schedulePoll), opts.pollMs)
    pollTimer.unref()
  }
  schedulePoll()

  return {
    url,
    peers: () => [...peers],
    reports,
    onReport: (cb) => void reportCbs.push(cb),
    syncNow,
    async close() {
      closed = true
      clearTimeout(pollTimer)
      unsub()
      await new Promise<void>((r) => server.close(() => r()))
      server.closeAllConnections?.()
      await chain
    },
  }
}

/**
 * A peer's base URL. A node listening on every interface (a gateway with host 0.0.0.0)
 * calls itself http://0.0.0.0:PORT; the address its request came from is where it is.
 */
function normUrl(s: string, remote?: string): string {
  try {
    const u = new URL(s)
    if (remote && (u.hostname === '0.0.0.0' || u.hostname === '[::]')) {
      const ip = remote.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '')
      u.hostname = ip.includes(':') ? `[${ip}]` : ip
    }
    return `${u.protocol}//${u.host}`
  } catch {
    return ''
  }
}
