/**
 * Live replication: a real gateway process (`--peer-port`) serves its ledger to a real
 * `mhealth ledger serve` replica process while simulated boards keep publishing; the
 * replica holds the gateway's head after more blocks, after a gateway restart, and its
 * directory verifies. A peer serving a tampered block is refused.
 */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:http'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { MqttClient } from 'mqtt'
import { repoRoot, runCli } from '../helpers/cli.ts'
import { waitFor } from '../helpers/wait.ts'
import { connectDevice, endClient, frame, newDeviceKey, publishAcked, type SimKey } from './helpers/devices.ts'
import { spawnGateway, type GatewayProcess } from './helpers/process.ts'

interface Head {
  height: number
  hash: string
  logSize: number
  logRoot: string
}

const getJson = async <T>(url: string): Promise<T> => (await fetch(url)).json() as Promise<T>
const headOf = (url: string): Promise<Head> => getJson<Head>(url + '/head')

interface Replica {
  child: ChildProcess
  url: string
  stderr: () => string
  stop(): Promise<void>
}

/** `mhealth ledger serve` as a replica of the gateway; resolves once it listens (it has synced once by then). */
function startReplica(dir: string, gw: GatewayProcess, peers: string[]): Promise<Replica> {
  const args = [join(repoRoot, 'bin', 'mhealth.js'), 'ledger', 'serve', '--data', dir, '--producer-id', gw.ready.id, '--producer-pub', gw.ready.publicKey, '--poll-ms', '200', ...peers.flatMap((p) => ['--peer', p])]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stderr!.on('data', (d) => (err += d))
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d) => {
      out += d
      const m = /listening (http:\/\/\S+)/.exec(out)
      if (m) resolve({ child, url: m[1]!, stderr: () => err, stop: async () => void (child.kill('SIGTERM'), await exited) })
    })
    child.once('exit', (code) => reject(new Error(`replica exited ${code} before listening: ${err}`)))
  })
}

/** Simulated boards publishing frames (QoS 1, each awaited) until stopped. */
function pump(mqttPort: number, keys: SimKey[], seqs: Map<string, number>): { stop(): Promise<void>; sent: () => number } {
  let running = true
  let sent = 0
  const run = async (): Promise<void> => {
    const clients: MqttClient[] = await Promise.all(keys.map((k) => connectDevice(`mqtt://127.0.0.1:${mqttPort}`, k)))
    while (running) {
      await Promise.all(keys.map((k, i) => {
        const seq = (seqs.get(k.id) ?? 0) + 1
        seqs.set(k.id, seq)
        return publishAcked(clients[i]!, `mhealth/dev/${k.id}/frames`, frame(k, seq)).then(() => void sent++)
      }))
      await new Promise((r) => setTimeout(r, 20)) // about 40 frames/s per board: well under the rate limit
    }
    await Promise.all(clients.map(endClient))
  }
  const done = run()
  return { sent: () => sent, stop: async () => void ((running = false), await done) }
}

t.test('a replica follows a live gateway: its head while frames arrive, after a restart; verified on disk', async (t) => {
  const gwDir = mkdtempSync(join(tmpdir(), 'mh-repl-gw-'))
  const repDir = mkdtempSync(join(tmpdir(), 'mh-repl-r-'))
  const evilDir = mkdtempSync(join(tmpdir(), 'mh-repl-evil-'))
  t.teardown(() => {
    for (const d of [gwDir, repDir, evilDir]) rmSync(d, { recursive: true, force: true })
  })
  let gp = await spawnGateway(gwDir, ['--peer-port', 'auto'])
  t.teardown(() => gp.kill9())
  const peerPort = (gp.ready.ports as { peer?: number | null }).peer
  t.ok(peerPort, `the ready line reports the peer port (${peerPort})`)
  const gwUrl = `http://127.0.0.1:${peerPort}`

  const admin = readFileSync(join(gwDir, 'admin.token'), 'utf8').trim()
  const keys: SimKey[] = [newDeviceKey('se'), newDeviceKey('bare')]
  for (const k of keys) {
    const body = k.type === 'p256'
      ? { profile: 'se', publicKey: Buffer.from(k.publicKey).toString('hex'), patient: 'p-1' }
      : { profile: 'bare', id: k.id, secret: Buffer.from(k.secret).toString('hex'), patient: 'p-2' }
    const res = await fetch(`http://127.0.0.1:${gp.ready.ports.http}/api/devices`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    t.equal(res.status, 201, `registered ${k.type}`)
  }
  const seqs = new Map<string, number>()

  let p = pump(gp.ready.ports.mqtt!, keys, seqs)
  await waitFor(async () => (await headOf(gwUrl)).height >= 0, 'the gateway\'s first block', 30_000, 50)
  const replica = await startReplica(repDir, gp, [gwUrl])
  t.teardown(() => replica.stop())

  // While frames keep arriving: N more blocks on the gateway, and the replica holds the same block N.
  const N = 3
  const start = (await headOf(gwUrl)).height
  await waitFor(async () => (await headOf(gwUrl)).height >= start + N, `${N} more gateway blocks after ${start}`, 60_000, 50)
  const target = (await headOf(gwUrl)).height
  let rh = await headOf(replica.url)
  await waitFor(async () => (rh = await headOf(replica.url)).height >= target, () => `the replica at block ${target} while frames arrive (at ${rh.height})`, 30_000, 50)
  const [ours, theirs] = await Promise.all([getJson<{ header: string }>(`${gwUrl}/blocks/${target}`), getJson<{ header: string }>(`${replica.url}/blocks/${target}`)])
  t.equal(theirs.header, ours.header, `block ${target} on the replica is the gateway's, taken while frames were arriving`)
  await p.stop()
  t.ok(p.sent() > 0, `${p.sent()} frames acknowledged`)
  // Settled: every acknowledged frame is in a block (the last one is cut on the block interval) and the replica holds it.
  let acked = p.sent()
  let gh = await headOf(gwUrl)
  const settled = async (): Promise<boolean> => {
    ;[gh, rh] = await Promise.all([headOf(gwUrl), headOf(replica.url)])
    return gh.logSize === acked && gh.hash === rh.hash
  }
  await waitFor(settled, () => `the replica at the gateway head ${gh.height} holding all ${acked} frames (gateway log ${gh.logSize}, replica at ${rh.height})`, 30_000, 50)
  t.same(rh, gh, 'the replica\'s head is the gateway\'s head')

  // The gateway restarts on the same data dir and peer port: it has forgotten the replica,
  // whose polls find it again and bring it its new blocks.
  t.equal(await gp.stop(), 0, 'gateway stopped cleanly')
  gp = await spawnGateway(gwDir, ['--peer-port', String(peerPort)])
  const before = (await headOf(gwUrl)).height
  p = pump(gp.ready.ports.mqtt!, keys, seqs)
  await waitFor(async () => (await headOf(gwUrl)).height >= before + 2, `2 more gateway blocks after the restart (from ${before})`, 60_000, 50)
  await p.stop()
  acked += p.sent()
  await waitFor(settled, () => `the replica at the restarted gateway's head ${gh.height} holding all ${acked} frames (gateway log ${gh.logSize}, replica at ${rh.height})`, 30_000, 50)
  t.same(rh, gh, 'after the gateway restart the replica holds its head again')
  t.notMatch(replica.stderr(), /refusing peer/, 'the replica never refused the gateway')

  // A malicious peer passes the gateway's chain through but alters one frame in block 1.
  const evil = createServer((req, res) => {
    void (async () => {
      const up = await fetch(gwUrl + req.url)
      let body = await up.text()
      if (up.ok && req.url === '/blocks/1') {
        const b = JSON.parse(body) as { leaves: string[] }
        const leaf = Buffer.from(b.leaves[0]!, 'base64')
        leaf[leaf.length - 1]! ^= 0x01
        b.leaves[0] = leaf.toString('base64')
        body = JSON.stringify(b)
      }
      res.writeHead(up.status, { 'content-type': 'application/json' }).end(body)
    })().catch(() => res.writeHead(502).end())
  })
  await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()))
  t.teardown(() => void evil.close())
  const evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`
  const fooled = await startReplica(evilDir, gp, [evilUrl])
  let reports: { peer: string; reason: string }[] = []
  await waitFor(async () => (reports = await getJson(fooled.url + '/reports')).length > 0, 'the replica to report the tampering peer', 30_000, 50)
  t.equal(reports[0]!.peer, evilUrl, 'the tampering peer is the one reported')
  t.match(reports[0]!.reason, /^invalid block 1: /, `block 1 refused: ${reports[0]!.reason}`)
  t.equal((await headOf(fooled.url)).height, 0, 'the tampered block and everything after it were not appended')
  await fooled.stop()
  let v = await runCli(['ledger', 'verify', '--data', evilDir, '--key', gp.ready.publicKey])
  t.equal(v.code, 0, `what the fooled replica stored verifies: ${v.stdout}${v.stderr}`)
  // Pointed at the gateway, the same replica catches up from where it stopped.
  const healed = await startReplica(evilDir, gp, [gwUrl])
  t.same(await headOf(healed.url), await headOf(gwUrl), 'the refused replica, pointed at the gateway, has its head')
  await healed.stop()

  await replica.stop()
  v = await runCli(['ledger', 'verify', '--data', repDir, '--key', gp.ready.publicKey])
  t.equal(v.code, 0, `mhealth ledger verify passes on the replica's directory: ${v.stdout}${v.stderr}`)
  t.match(v.stdout, `head: block ${gh.height} ${gh.hash}`, 'the replica on disk ends at the gateway head')
  t.equal(await gp.stop(), 0)
})
