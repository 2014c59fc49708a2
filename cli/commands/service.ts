import { existsSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { group, print, type Command } from '../command.ts'
import { parseCli, stringOpt, type Parsed } from '../args.ts'
import { CliError, UsageError } from '../errors.ts'
import { checkUnitOptions, serviceUnit, stateDirectoryOf, type ServiceUnitOptions } from '../service-unit.ts'

const DEFAULT_DATA = '/var/lib/mhealth'
const DEFAULT_USER = 'mhealth'
const DEFAULT_OUT = '/etc/systemd/system/mhealth-gateway.service'
const repoBin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'mhealth.js')

const OPTIONS = {
  data: { type: 'string' },
  user: { type: 'string' },
  config: { type: 'string' },
  node: { type: 'string' },
  mhealth: { type: 'string' },
} as const

const OPTIONS_HELP = `  --data DIR       data directory (default ${DEFAULT_DATA}: systemd makes it, owned by the
                   service user, mode 0700; any other path is made by the commands printed)
  --user NAME      the account it runs as (default ${DEFAULT_USER})
  --config FILE    JSON gateway config (ports, per-listener bind addresses, TLS; docs/gateway.md)
  --node PATH      node executable (default: this one, ${process.execPath})
  --mhealth PATH   bin/mhealth.js (default: this checkout's)`

function unitOptions(p: Parsed): ServiceUnitOptions {
  const config = stringOpt(p, 'config')
  const o: ServiceUnitOptions = {
    node: stringOpt(p, 'node') ?? process.execPath,
    mhealth: resolve(stringOpt(p, 'mhealth') ?? repoBin),
    dataDir: resolve(stringOpt(p, 'data') ?? DEFAULT_DATA),
    user: stringOpt(p, 'user') ?? DEFAULT_USER,
    config: config === undefined ? undefined : resolve(config),
  }
  const bad = checkUnitOptions(o)
  if (bad) throw new UsageError(bad)
  for (const [flag, path] of [['--node', o.node], ['--mhealth', o.mhealth], ['--config', o.config]] as const)
    if (path !== undefined && !existsSync(path)) throw new CliError(`${flag}: ${path} does not exist (the unit would not start)`)
  return o
}

/** What an administrator runs after the unit file is written (this command never calls systemctl). */
function installSteps(o: ServiceUnitOptions, out: string): string[] {
  const name = basename(out)
  const steps = [
    `# The service account (no login, no home of its own):`,
    `sudo useradd --system --user-group --no-create-home --home-dir ${o.dataDir} --shell /usr/sbin/nologin ${o.user}`,
  ]
  if (!stateDirectoryOf(o.dataDir)) steps.push(`# The data directory (systemd makes it only under /var/lib):`, `sudo install -d -o ${o.user} -g ${o.user} -m 0700 ${o.dataDir}`)
  steps.push(
    `# Build the gateway bundle once (the service may not write outside its data directory):`,
    `${o.node} ${o.mhealth} gateway --help > /dev/null`,
  )
  if (dirname(out) !== '/etc/systemd/system') steps.push(`# The unit where systemd looks for it:`, `sudo install -m 0644 ${out} /etc/systemd/system/${name}`)
  steps.push(
    `# Start it now and at every boot; its log (and the TLS fingerprint line) is in the journal:`,
    `sudo systemctl daemon-reload`,
    `sudo systemctl enable --now ${name}`,
    `journalctl -u ${name} -f`,
    `# Admin commands on the live data directory run as the service user, e.g.:`,
    `sudo -u ${o.user} ${o.node} ${o.mhealth} user add NAME --role clinician --data ${o.dataDir}`,
  )
  return steps
}

const unit: Command = {
  name: 'unit',
  summary: 'Print the systemd unit that runs the gateway as a service',
  usage: `Usage: mhealth service unit [--data DIR] [--user NAME] [--config FILE] [--node PATH] [--mhealth PATH]

Prints a systemd unit for \`mhealth gateway\`: its own user, Restart=on-failure, logs to
journald, a sandbox (ProtectSystem=strict, NoNewPrivileges, PrivateTmp, no capabilities)
that can write only the data directory. See docs/gateway.md "Running as a service".

Options:
${OPTIONS_HELP}`,
  async run(argv, io) {
    print(io, serviceUnit(unitOptions(parseCli(argv, OPTIONS))))
    return 0
  },
}

const install: Command = {
  name: 'install',
  summary: 'Write the systemd unit file and print the commands that enable it',
  usage: `Usage: mhealth service install [--data DIR] [--user NAME] [--config FILE] [--out FILE | --print]

Writes the unit of \`mhealth service unit\` to FILE (default ${DEFAULT_OUT},
which needs root) and prints the commands to run next: make the service user, build the
gateway bundle, systemctl daemon-reload and enable --now. It does not run systemctl itself.
--print writes nothing and prints the unit instead.

Options:
${OPTIONS_HELP}
  --out FILE       where to write the unit (default ${DEFAULT_OUT})
  --print          print the unit to stdout instead of writing it`,
  async run(argv, io) {
    const p = parseCli(argv, { ...OPTIONS, out: { type: 'string' }, print: { type: 'boolean' } })
    const o = unitOptions(p)
    const text = serviceUnit(o)
    if (p.values.print === true) {
      if (stringOpt(p, 'out') !== undefined) throw new UsageError('--out and --print: give one')
      print(io, text)
      return 0
    }
    const out = resolve(stringOpt(p, 'out') ?? DEFAULT_OUT)
    if (!out.endsWith('.service')) throw new UsageError(`--out: a unit file name ends in .service, got ${out}`)
    try {
      writeFileSync(out, text, { mode: 0o644 })
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      const hint = e.code === 'EACCES' || e.code === 'EPERM' ? ' (run it with sudo, or --out FILE and install that file)' : ''
      throw new CliError(`cannot write ${out}: ${e.message}${hint}`)
    }
    io.stderr.write(`wrote ${out}\n`)
    print(io, installSteps(o, out).join('\n'))
    return 0
  },
}

export const command: Command = group('service', 'Run the gateway as a systemd service', [unit, install])
