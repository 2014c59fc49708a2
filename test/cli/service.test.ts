/**
 * `mhealth service`: the systemd unit it writes passes `systemd-analyze verify` (ExecStart a
 * real node and bin/mhealth.js), with its own user, restart on failure and the sandbox; the
 * install prints the systemctl steps and never runs them; bad input is a clear error. And
 * the gateway's log, as journald gets it from a pipe: one JSON line per entry, no colour.
 */
import t from 'tap'
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { runCli, repoRoot } from '../helpers/cli.ts'
import { tempDir } from '../helpers/tmp.ts'
import { spawnGateway } from '../gateway/helpers/process.ts'

const ANALYZE = '/usr/bin/systemd-analyze'
const noAnalyze = existsSync(ANALYZE) ? false : `${ANALYZE} is not installed (apt-get install systemd)`

/** `systemd-analyze verify` on a unit file: its exit code and what it complained about. */
function verify(unitFile: string): { code: number | null; out: string } {
  const r = spawnSync(ANALYZE, ['verify', unitFile], { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_COLOR: '0' } })
  return { code: r.status, out: `${r.stdout}${r.stderr}`.trim() }
}

const dir = tempDir('mh-service-')

t.test('service unit: StateDirectory under /var/lib, own user, restart, sandbox; systemd-analyze verify passes', async (t) => {
  const r = await runCli(['service', 'unit', '--data', '/var/lib/mhealth'])
  t.equal(r.code, 0, r.stderr)
  const unit = r.stdout
  t.match(unit, `ExecStart=${process.execPath} ${join(repoRoot, 'bin', 'mhealth.js')} gateway --data /var/lib/mhealth\n`)
  for (const line of ['User=mhealth', 'Group=mhealth', 'Restart=on-failure', 'StateDirectory=mhealth', 'StateDirectoryMode=0700', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'PrivateTmp=yes', 'UMask=0077', 'StandardError=journal', 'WantedBy=multi-user.target'])
    t.match(unit, new RegExp(`^${line}$`, 'm'), line)
  t.notMatch(unit, /ReadWritePaths=/, 'StateDirectory is writable by itself')
  if (noAnalyze) {
    t.comment(`skipped systemd-analyze verify: ${noAnalyze}`)
    return
  }
  const file = join(dir, 'mhealth-gateway.service')
  const w = await runCli(['service', 'install', '--data', '/var/lib/mhealth', '--out', file])
  t.equal(w.code, 0, w.stderr)
  t.equal(readFileSync(file, 'utf8'), unit, 'install writes the same unit')
  const v = verify(file)
  t.equal(v.code, 0, v.out)
  t.equal(v.out, '', 'no warnings')
})

t.test('service install: explicit data dir and user, the steps printed, nothing run', { skip: noAnalyze }, async (t) => {
  const file = join(dir, 'clinic-gw.service')
  const cfg = join(dir, 'gateway.json')
  writeFileSync(cfg, '{"mqttsHost": "0.0.0.0"}')
  const r = await runCli(['service', 'install', '--data', '/srv/mhealth-data', '--user', 'clinicgw', '--config', cfg, '--out', file])
  t.equal(r.code, 0, r.stderr)
  const unit = readFileSync(file, 'utf8')
  t.match(unit, /^User=clinicgw$/m)
  t.match(unit, /^ReadWritePaths=\/srv\/mhealth-data$/m)
  t.match(unit, new RegExp(`^ExecStart=.* gateway --data /srv/mhealth-data --config ${cfg}$`, 'm'))
  t.match(r.stdout, /sudo useradd --system .* clinicgw/)
  t.match(r.stdout, /sudo install -d -o clinicgw -g clinicgw -m 0700 \/srv\/mhealth-data/)
  t.match(r.stdout, /sudo systemctl daemon-reload\nsudo systemctl enable --now clinic-gw.service/)
  t.match(r.stdout, `sudo install -m 0644 ${file} /etc/systemd/system/clinic-gw.service`)
  const v = verify(file)
  t.equal(v.code, 0, v.out)
  t.equal(v.out, '', 'no warnings')
})

t.test('a node path with a space is quoted so systemd finds the executable', { skip: noAnalyze }, async (t) => {
  const odd = join(dir, 'node 20 %i')
  mkdirSync(odd)
  symlinkSync(process.execPath, join(odd, 'node'))
  const file = join(dir, 'odd.service')
  const r = await runCli(['service', 'install', '--node', join(odd, 'node'), '--out', file])
  t.equal(r.code, 0, r.stderr)
  t.match(readFileSync(file, 'utf8'), `ExecStart="${odd.replace('%', '%%')}/node" `)
  const v = verify(file)
  t.equal(v.code, 0, v.out)
})

t.test('bad input: a clear error, nothing written', async (t) => {
  const cases: Array<[string[], number, RegExp]> = [
    [['--user', 'Clinic User'], 2, /--user: expected a system user name/],
    [['--data', '/srv/my data'], 2, /--data: a service data directory must not contain spaces/],
    [['--node', '/nope/node'], 1, /--node: \/nope\/node does not exist/],
    [['--config', join(dir, 'missing.json')], 1, /--config: .*missing.json does not exist/],
    [['--out', join(dir, 'unit.txt')], 2, /--out: a unit file name ends in \.service/],
    [['--out', '/proc/nope/x.service'], 1, /cannot write \/proc\/nope\/x.service/],
    [['--out', join(dir, 'y.service'), '--print'], 2, /--out and --print/],
  ]
  for (const [args, code, msg] of cases) {
    const r = await runCli(['service', 'install', ...args])
    t.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`)
    t.match(r.stderr, msg)
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
  }
  t.notOk(existsSync(join(dir, 'y.service')))
})

t.test('--help', async (t) => {
  const g = await runCli(['service', '--help'])
  t.equal(g.code, 0)
  t.match(g.stdout, /unit\s+Print the systemd unit/)
  t.match(g.stdout, /install\s+Write the systemd unit file/)
  const i = await runCli(['service', 'install', '--help'])
  t.equal(i.code, 0)
  t.match(i.stdout, /Usage: mhealth service install .*--out FILE \| --print/)
  const top = await runCli(['--help'])
  t.match(top.stdout, /service/)
})

t.test('gateway logs through a pipe (as journald reads them): one JSON object per line, no colour', async (t) => {
  const gw = await spawnGateway(join(dir, 'gw-data'), ['--mqtts-port', 'auto'])
  await gw.stop()
  const lines = gw.stderr().split('\n').filter((l) => l !== '')
  t.ok(lines.length >= 3, `some log lines: ${lines.length}`)
  t.notMatch(gw.stderr(), /\x1b\[/, 'no ANSI escape sequences')
  for (const l of lines) {
    if (l.startsWith('TLS certificate SHA-256 fingerprint')) continue // the operator's line, one line too
    let entry: { level?: string; msg?: string } = {}
    t.doesNotThrow(() => (entry = JSON.parse(l)), `a JSON line: ${l.slice(0, 80)}`)
    t.ok(entry.level && entry.msg, 'with level and msg')
  }
  t.ok(lines.some((l) => l.includes('"gateway stopped"')), 'the stop is logged')
})
