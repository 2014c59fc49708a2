/**
 * Issue 13, item 5: `mhealth backup` while a real gateway runs, `mhealth restore` into a
 * new directory, and a real gateway on the restored directory that takes a frame from a
 * simulated board (registry restored: it authenticates) and continues the same chain.
 * Refusals: a non-empty target without --force, a damaged or truncated archive, --force
 * over a directory a gateway runs on.
 */
import t from 'tap'
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { resolveConfig } from '../../gateway/config.ts'
import { startGateway, type Gateway } from '../../gateway/gateway.ts'
import { memoryLogger } from '../../gateway/log.ts'
import type { LedgerFrameStore } from '../../gateway/ledger-store.ts'
import { openLedgerReadOnly } from '../../ledger/ledger.ts'
import { toHex } from '../../ledger/merkle.ts'
import { connectDevice, endClient, frame, newDeviceKey, publishAcked, registerSim } from '../gateway/helpers/devices.ts'
import { runCli } from '../helpers/cli.ts'
import { tempDir } from '../helpers/tmp.ts'
import { waitFor } from '../helpers/wait.ts'

const topic = (id: string): string => `mhealth/dev/${id}/frames`
const start = (dataDir: string): Promise<Gateway> =>
  startGateway(resolveConfig({ dataDir, mqttPort: 'auto', mqttsPort: 0, wsPort: 0, httpPort: 0, logLevel: 'warn' }), { log: memoryLogger() })

/** Every path under `dir` with its permission bits. */
function modes(dir: string): Map<string, number> {
  const out = new Map<string, number>()
  const walk = (p: string, rel: string): void => {
    const st = statSync(p)
    out.set(rel || '.', st.mode & 0o777)
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n), rel ? `${rel}/${n}` : n)
  }
  walk(dir, '')
  return out
}

t.test('backup a running gateway, restore, and continue the same chain', async (t) => {
  const root = tempDir('mh-backup-')
  const data = join(root, 'data')
  const gw = await start(data)
  let gwOpen = true
  t.teardown(() => (gwOpen ? gw.close() : undefined))
  const key = newDeviceKey('se')
  registerSim(gw.registry, key, 'patient-7')
  const url = `mqtt://127.0.0.1:${gw.ports.mqtt}`
  const dev = await connectDevice(url, key)
  for (let s = 1; s <= 6; s++) await publishAcked(dev, topic(key.id), frame(key, s))
  const ledger = (gw.store as LedgerFrameStore).ledger
  await waitFor(() => ledger.head().logSize >= 6, 'a block over the six frames', 30_000)

  const archive = join(root, 'gw.tar.gz')
  const b = await runCli(['backup', '--data', data, '--out', archive])
  t.equal(b.code, 0, `backup beside the running gateway exits 0 (${b.stderr})`)
  t.match(b.stdout, /^wrote .*gw\.tar\.gz: \d+ files/m)
  t.match(b.stdout, /ledger: \d+ blocks, 6 leaves \(6 frames\), head block \d+ [0-9a-f]{64}/)
  t.equal(statSync(archive).mode & 0o777, 0o600, 'the archive is private')
  const backedHead = /head block (\d+) ([0-9a-f]{64})/.exec(b.stdout)!
  await endClient(dev)
  await gw.close()
  gwOpen = false

  const data2 = join(root, 'restored')
  const r = await runCli(['restore', '--from', archive, '--data', data2])
  t.equal(r.code, 0, `restore exits 0 (${r.stderr})`)
  t.match(r.stdout, /ledger verifies: \d+ blocks, 6 leaves \(6 frames\)/)
  for (const [p, m] of modes(data2)) t.equal(m, statSync(join(data2, p)).isDirectory() ? 0o700 : 0o600, `${p} is private`)
  t.ok(existsSync(join(data2, 'registry.sqlite')) && existsSync(join(data2, 'gateway.key')), 'registry and key restored')
  t.same(readFileSync(join(data2, 'gateway.key')), readFileSync(join(data, 'gateway.key')), 'the same producer key')
  const v = await runCli(['ledger', 'verify', '--data', data2])
  t.equal(v.code, 0, `the restored ledger verifies (${v.stderr})`)
  t.match(v.stdout, new RegExp(`head: block ${backedHead[1]} ${backedHead[2]}`))

  // A real gateway on the restored directory: the board authenticates (registry restored) and its frame extends the chain.
  const gw2 = await start(data2)
  let gw2Open = true
  t.teardown(() => (gw2Open ? gw2.close() : undefined))
  const l2 = (gw2.store as LedgerFrameStore).ledger
  const h0 = l2.head()
  t.equal(h0.hash, backedHead[2], 'the restored gateway starts at the backed-up head')
  const dev2 = await connectDevice(`mqtt://127.0.0.1:${gw2.ports.mqtt}`, key)
  await publishAcked(dev2, topic(key.id), frame(key, 7))
  await waitFor(() => l2.height > h0.height, 'a new block on the restored gateway', 30_000)
  const nb = l2.getBlock(h0.height + 1)!
  t.equal(toHex(nb.header.prev), backedHead[2], "the new block's prev hash is the restored head")

  // --force over a directory a gateway runs on is refused; nothing moved.
  const busy = await runCli(['restore', '--from', archive, '--data', data2, '--force'])
  t.equal(busy.code, 1)
  t.match(busy.stderr, /data directory .*restored is in use by a running .*\(pid \d+/)
  await endClient(dev2)
  await gw2.close()
  gw2Open = false
  const after = await runCli(['ledger', 'verify', '--data', data2])
  t.equal(after.code, 0, `still verifies after the new frame (${after.stderr})`)
  const l = await openLedgerReadOnly(join(data2, 'ledger'))
  t.equal((await l.frames({ deviceId: key.id })).length, 7, 'six restored frames and the new one')
  await l.close()

  // Non-empty target: refused without --force; with --force the old directory is moved aside, not deleted.
  const refused = await runCli(['restore', '--from', archive, '--data', data2])
  t.equal(refused.code, 1)
  t.match(refused.stderr, /is not empty; restore into a new directory, or give --force/)
  const forced = await runCli(['restore', '--from', archive, '--data', data2, '--force'])
  t.equal(forced.code, 0, `--force restores (${forced.stderr})`)
  const aside = /moved the existing .* to (\S+)/.exec(forced.stdout)![1]
  t.ok(existsSync(join(aside, 'ledger')), 'the replaced directory is kept aside')
})

t.test('damaged or truncated archives are refused with a clear error; nothing is created', async (t) => {
  const root = tempDir('mh-backup-bad-')
  const data = join(root, 'data')
  const gw = await start(data)
  const key = newDeviceKey('bare')
  registerSim(gw.registry, key)
  const dev = await connectDevice(`mqtt://127.0.0.1:${gw.ports.mqtt}`, key)
  await publishAcked(dev, topic(key.id), frame(key, 1))
  await waitFor(() => (gw.store as LedgerFrameStore).ledger.head().logSize >= 1, 'a block', 30_000)
  await endClient(dev)
  await gw.close()
  const archive = join(root, 'a.tar.gz')
  t.equal((await runCli(['backup', '--data', data, '--out', archive])).code, 0)
  const good = readFileSync(archive)
  const flipped = Buffer.from(good)
  flipped[Math.floor(flipped.length / 2)] ^= 0xff
  writeFileSync(join(root, 'flipped.tar.gz'), flipped)
  writeFileSync(join(root, 'short.tar.gz'), good.subarray(0, good.length - 40))
  writeFileSync(join(root, 'junk.tar.gz'), 'not an archive')
  for (const f of ['flipped', 'short', 'junk']) {
    const dest = join(root, `to-${f}`)
    const r = await runCli(['restore', '--from', join(root, `${f}.tar.gz`), '--data', dest])
    t.equal(r.code, 1, `${f}: exit 1`)
    t.match(r.stderr, /is not a valid backup archive/, `${f}: says so (${r.stderr.trim()})`)
    t.notOk(existsSync(dest), `${f}: nothing restored`)
  }
  mkdirSync(join(root, 'nogw'))
  const nogw = await runCli(['backup', '--data', join(root, 'nogw'), '--out', join(root, 'x.tar.gz')])
  t.equal(nogw.code, 1)
  t.match(nogw.stderr, /is not a gateway data directory/)
  for (const cmd of ['backup', 'restore']) {
    const h = await runCli([cmd, '--help'])
    t.equal(h.code, 0)
    t.match(h.stdout, new RegExp(`^Usage: mhealth ${cmd} `))
  }
  t.match((await runCli(['--help'])).stdout, /^\s+backup\s+.*\n(.*\n)*\s+restore\s+/m, 'both are in the command list')
})
