/**
 * Issue 13, items 1 and 4, with real gateway processes on real directories:
 * - one writer per data directory: a second `mhealth gateway` (or `ledger serve` with the
 *   gateway's key) on the same directory exits 1 naming the first one's PID, while read-only
 *   commands keep working beside it; a SIGTERMed gateway frees the directory, a SIGKILLed
 *   one leaves a stale lock that the next start takes over (and says so);
 * - private state: directories 0700, files 0600 (registry.sqlite and its -wal/-shm, the
 *   ledger's files, gateway.key, admin.token, the TLS key), and a start fixes the modes of
 *   an existing directory, with a log line.
 */
import t from 'tap'
import { chmodSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.ts'
import { tempDir } from '../helpers/tmp.ts'
import { spawnGateway } from './helpers/process.ts'

const gatewayArgs = (dir: string) => ['gateway', '--data', dir, '--mqtt-port', 'auto', '--mqtts-port', '0', '--ws-port', '0', '--http-port', 'auto']

/** Every path under `dir` (relative) with its permission bits. */
function modes(dir: string): Record<string, number> {
  const out: Record<string, number> = { '.': statSync(dir).mode & 0o777 }
  for (const f of readdirSync(dir, { recursive: true }) as string[]) {
    try {
      out[f] = statSync(join(dir, f)).mode & 0o777
    } catch {
      // a temp file renamed away meanwhile
    }
  }
  return out
}

t.test('a second gateway on a data directory in use is refused, naming the first; readers still work', async (t) => {
  const dir = join(tempDir('mh-dd-'), 'data')
  const first = await spawnGateway(dir)
  t.teardown(() => first.child.exitCode === null && first.kill9())
  const pid = first.child.pid!

  const second = await runCli(gatewayArgs(dir))
  t.equal(second.code, 1, 'the second gateway exits 1')
  t.match(second.stderr, new RegExp(`data directory ${dir.replace(/[/.]/g, '\\$&')} is in use by a running gateway \\(pid ${pid}, since \\d{4}-`), 'and names the running one by PID')
  t.notMatch(second.stdout, /"ready"/, 'it never said ready')

  const serve = await runCli(['ledger', 'serve', '--data', dir, '--producer-id', first.ready.id, '--producer-key', join(dir, 'gateway.key'), '--port', '0'])
  t.equal(serve.code, 1, '`ledger serve` with the gateway key is refused too')
  t.match(serve.stderr, new RegExp(`in use by a running gateway \\(pid ${pid},`))

  const verify = await runCli(['ledger', 'verify', '--data', dir])
  t.equal(verify.code, 0, `ledger verify works beside the gateway (${verify.stderr.trim()})`)
  const list = await runCli(['device', 'list', '--data', dir])
  t.equal(list.code, 0, `device list works beside the gateway (${list.stderr.trim()})`)
  t.equal(first.child.exitCode, null, 'the first gateway is still running')

  t.equal(await first.stop(), 0, 'SIGTERM: the first stops cleanly')
  t.notOk(existsSync(join(dir, 'lock')), 'and removes its lock')
  const next = await spawnGateway(dir)
  t.pass('then a gateway starts on the directory')
  await next.kill9()
  t.ok(existsSync(join(dir, 'lock')), 'SIGKILL leaves the lock behind')
  const after = await spawnGateway(dir)
  t.match(after.stderr(), new RegExp(`taking over the stale lock .*pid ${next.child.pid}`), 'the next start takes the stale lock over and says so')
  t.equal(JSON.parse(readFileSync(join(dir, 'lock'), 'utf8')).pid, after.child.pid, 'the lock now names the new gateway')
  t.equal(await after.stop(), 0)
})

t.test('the data directory is private: 0700 directories, 0600 files; a start fixes loose modes', async (t) => {
  const dir = join(tempDir('mh-dd-'), 'data')
  const gw = await spawnGateway(dir, ['--mqtts-port', 'auto'])
  t.teardown(() => gw.child.exitCode === null && gw.kill9())
  const running = modes(dir)
  for (const f of ['registry.sqlite', 'registry.sqlite-wal', 'gateway.key', 'admin.token', 'lock', 'tls/key.pem', 'tls/cert.pem', 'ledger/ledger.json']) t.ok(f in running, `${f} exists`)
  t.ok(Object.keys(running).some((f) => f.startsWith('ledger/seg-')), 'a ledger segment exists')
  for (const [f, m] of Object.entries(running)) {
    const isDir = statSync(join(dir, f)).isDirectory()
    t.equal(m.toString(8), isDir ? '700' : '600', `${f} is ${isDir ? '0700' : '0600'} while running`)
  }
  t.equal(await gw.stop(), 0)
  for (const [f, m] of Object.entries(modes(dir))) {
    const isDir = statSync(join(dir, f)).isDirectory()
    t.equal(m.toString(8), isDir ? '700' : '600', `${f} is ${isDir ? '0700' : '0600'} after stop`)
  }

  // An older gateway (or a careless copy) left them open to everyone.
  chmodSync(dir, 0o755)
  chmodSync(join(dir, 'registry.sqlite'), 0o644)
  chmodSync(join(dir, 'ledger'), 0o755)
  const seg = readdirSync(join(dir, 'ledger')).find((f) => f.startsWith('seg-'))!
  chmodSync(join(dir, 'ledger', seg), 0o644)
  chmodSync(join(dir, 'gateway.key'), 0o640)
  const again = await spawnGateway(dir)
  const fixed = again.stderr().split('\n').filter((l) => l.includes('made private')).map((l) => JSON.parse(l))
  t.equal(fixed.length, 1, 'one log line says the modes were fixed')
  t.same(new Set(fixed[0]?.changed), new Set(['.', 'gateway.key', 'ledger', join('ledger', seg), 'registry.sqlite']), 'and names each path it changed')
  for (const [f, m] of Object.entries(modes(dir))) {
    const isDir = statSync(join(dir, f)).isDirectory()
    t.equal(m.toString(8), isDir ? '700' : '600', `${f} is private again`)
  }
  t.equal(await again.stop(), 0)
})
