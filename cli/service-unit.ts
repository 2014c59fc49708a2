/**
 * The systemd unit that runs `mhealth gateway` as a service, as text (pure: no file or
 * process is touched here; cli/commands/service.ts writes it and prints the commands).
 *
 * Its own unprivileged user, restarted on failure, logs to journald (the gateway writes one
 * JSON line per entry on stderr, no colour), and a sandbox that leaves it write access to
 * its data directory only: a compromised gateway cannot rewrite the system or read /home.
 */
import { dirname, isAbsolute, join, posix } from 'node:path'

export interface ServiceUnitOptions {
  /** Absolute path of the node executable. */
  node: string
  /** Absolute path of bin/mhealth.js. */
  mhealth: string
  /** Absolute data directory; under /var/lib it becomes systemd's StateDirectory. */
  dataDir: string
  /** The account the gateway runs as (default mhealth). */
  user: string
  /** Absolute path of a JSON config file (ports, bind addresses, TLS), if any. */
  config?: string
}

/** Service account names systemd and useradd both accept. */
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/

/** The StateDirectory name when the data dir is directly or deeper under /var/lib, else null. */
export function stateDirectoryOf(dataDir: string): string | null {
  const rel = posix.relative('/var/lib', posix.normalize(dataDir))
  return rel && !rel.startsWith('..') && !posix.isAbsolute(rel) ? rel : null
}

/**
 * One ExecStart word: double-quoted when it holds a space or quote, with systemd's
 * specifier (%) and variable ($) characters escaped so a path is taken literally.
 */
export function execWord(arg: string): string {
  const escaped = arg.replace(/%/g, '%%').replace(/\$/g, '$$$$')
  return /[\s"'\\]/.test(escaped) ? `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : escaped
}

/** A bare path setting: only systemd's specifier character needs escaping (spaces are refused earlier). */
const pathValue = (p: string): string => p.replace(/%/g, '%%')

export function checkUnitOptions(o: ServiceUnitOptions): string | null {
  for (const [name, v] of [['node', o.node], ['mhealth', o.mhealth], ['data', o.dataDir], ['config', o.config]] as const)
    if (v !== undefined && !isAbsolute(v)) return `--${name}: expected an absolute path, got ${JSON.stringify(v)}`
  if (/[\n\r]/.test([o.node, o.mhealth, o.dataDir, o.config ?? ''].join(''))) return 'paths must not contain line breaks'
  // WorkingDirectory= and ReadWritePaths= take the path bare: keep it to one plain word.
  if (/[\s"'\\]/.test(o.dataDir)) return `--data: a service data directory must not contain spaces, quotes or backslashes, got ${JSON.stringify(o.dataDir)}`
  if (!USER_NAME.test(o.user)) return `--user: expected a system user name (lower case letters, digits, _ and -), got ${JSON.stringify(o.user)}`
  return null
}

export function serviceUnit(o: ServiceUnitOptions): string {
  const state = stateDirectoryOf(o.dataDir)
  const exec = [o.node, o.mhealth, 'gateway', '--data', o.dataDir, ...(o.config ? ['--config', o.config] : [])].map(execWord).join(' ')
  return `# mHealth clinic gateway, made by \`mhealth service install\` (see docs/gateway.md "Running as a service").
[Unit]
Description=mHealth clinic gateway (MQTT broker, frame ledger, HTTP API)
Documentation=file://${encodeURI(join(dirname(dirname(o.mhealth)), 'docs', 'gateway.md'))}
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=${o.user}
Group=${o.user}
ExecStart=${exec}
# The gateway takes SIGTERM as a graceful stop: frames in flight are stored and acknowledged
# (up to 30 s of draining), then the ledger is closed; only then would systemd SIGKILL it.
KillSignal=SIGTERM
TimeoutStopSec=60
Restart=on-failure
RestartSec=5
# Logs: one JSON line per entry on stderr, straight into journald (journalctl -u <unit>).
StandardOutput=journal
StandardError=journal
${state ? `# The data directory, made and owned by ${o.user} by systemd, mode 0700.
StateDirectory=${state}
StateDirectoryMode=0700` : `# The data directory (make it beforehand, owned by ${o.user}, mode 0700).
ReadWritePaths=${pathValue(o.dataDir)}`}
WorkingDirectory=${pathValue(o.dataDir)}
UMask=0077
# A smaller V8 young generation: the streaming peak of 1,000 boards stays under 150 MB (docs/gateway-scale.md).
Environment=NODE_OPTIONS=--max-semi-space-size=2
# Up to 5,000 device connections (limits.maxConnections), each a file descriptor.
LimitNOFILE=65536

# Sandbox: the data directory is the only place it can write.
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
# Ports above 1024 need no capability; none is kept.
CapabilityBoundingSet=
AmbientCapabilities=
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
SystemCallArchitectures=native
SystemCallFilter=@system-service
# MemoryDenyWriteExecute is left off: V8's JIT needs writable executable memory.

[Install]
WantedBy=multi-user.target
`
}
