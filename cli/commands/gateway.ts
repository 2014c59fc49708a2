import { join } from 'node:path'
import { print, untilStopSignal, type Command } from '../command.ts'
import { parseCli, stringOpt, type Parsed } from '../args.ts'
import { parsePort, type PortSpec } from '../../gateway/config.ts'
import { CliError, UsageError } from '../errors.ts'

/** A `--NAME-port` option: a number, 0 (listener off) or 'auto'; usage error otherwise. */
export function portOpt(p: Parsed, name: string): PortSpec | undefined {
  const v = stringOpt(p, name)
  if (v === undefined) return undefined
  try {
    return parsePort(v, `--${name}`)
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

export const command: Command = {
  name: 'gateway',
  summary: 'Run the clinic gateway (MQTT/TCP, MQTT/TLS, MQTT/WebSocket (ws, wss), HTTP(S) API, ledger)',
  usage: `Usage: mhealth gateway [--config FILE] [--data DIR] [options]

Runs the gateway: an MQTT broker that admits only registered, authenticated devices,
verifies every frame and stores it in the ledger (DIR/ledger) before acknowledging it.
State lives in DIR (default ./data): registry.sqlite, gateway.key (Ed25519, the ledger
producer key), admin.token (HTTP admin API), tls/ (self-signed certificate made on first
start; its SHA-256 fingerprint is printed for devices to pin), ledger/.

Options (override the config file, which overrides the defaults; see docs/gateway.md):
  --config FILE        JSON config file
  --data DIR           state directory (default ./data)
  --host ADDR          bind address for every listener (default 127.0.0.1)
  --mqtt-port N        MQTT over TCP (default 1883; 0 = off; 'auto' = any free port)
  --mqtts-port N       MQTT over TLS (default 8883)
  --ws-port N          MQTT over WebSocket (default 8080)
  --wss-port N         MQTT over secure WebSocket, wss:// (default 0 = off; e.g. 8084)
  --http-port N        HTTP API, /metrics, /healthz (default 8081)
  --peer-port N        serve the ledger to replicas (\`mhealth ledger serve --peer\`; default 0 = off)
  --https-port N       the same API (and --dashboard) over HTTPS (default 0 = off; e.g. 8443)
  --mqtt-host ADDR     bind address of one listener (default: --host); likewise
  --mqtts-host ADDR    e.g. --host 127.0.0.1 --mqtts-host 0.0.0.0 keeps the admin
  --ws-host ADDR       API on this machine and serves boards on the ward network
  --wss-host ADDR
  --http-host ADDR
  --https-host ADDR
  --tls-cert FILE      PEM certificate (with --tls-key) instead of the self-signed one
                       (one certificate for MQTTS, WSS and HTTPS)
  --tls-key FILE
  --redis URL          share sessions and messages with other gateways (Aedes clustering)
  --allow-anonymous    admit clients without credentials, no ACLs (protocol testing ONLY)
  --log-level LEVEL    debug, info, warn or error (default info)
  --dashboard          also serve the ward dashboard on the HTTP listener (/, /api/dash/*);
                       users log in with the accounts of \`mhealth user add\` (config key
                       "dashboard": true does the same)

Prints one JSON line {"ready":true,...} with the bound ports (and "dashboard": its URL) when every listener is up.
Logs are JSON lines on stderr. SIGINT/SIGTERM shut down gracefully: frames in flight
are stored and acknowledged, then the ledger is closed.`,
  async run(argv, io) {
    const p = parseCli(argv, {
      config: { type: 'string' },
      data: { type: 'string' },
      host: { type: 'string' },
      'mqtt-port': { type: 'string' },
      'mqtts-port': { type: 'string' },
      'ws-port': { type: 'string' },
      'http-port': { type: 'string' },
      'peer-port': { type: 'string' },
      'wss-port': { type: 'string' },
      'https-port': { type: 'string' },
      'mqtt-host': { type: 'string' },
      'mqtts-host': { type: 'string' },
      'ws-host': { type: 'string' },
      'wss-host': { type: 'string' },
      'http-host': { type: 'string' },
      'https-host': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      redis: { type: 'string' },
      'allow-anonymous': { type: 'boolean' },
      'log-level': { type: 'string' },
      dashboard: { type: 'boolean' },
    })
    const { resolveConfig, readConfigFile, hostOf, ConfigError } = await import('../../gateway/config.ts')
    let cfg
    try {
      const file = stringOpt(p, 'config')
      cfg = resolveConfig(file ? readConfigFile(file) : {}, {
        dataDir: stringOpt(p, 'data'),
        host: stringOpt(p, 'host'),
        mqttPort: portOpt(p, 'mqtt-port'),
        mqttsPort: portOpt(p, 'mqtts-port'),
        wsPort: portOpt(p, 'ws-port'),
        httpPort: portOpt(p, 'http-port'),
        peerPort: portOpt(p, 'peer-port'),
        wssPort: portOpt(p, 'wss-port'),
        httpsPort: portOpt(p, 'https-port'),
        mqttHost: stringOpt(p, 'mqtt-host'),
        mqttsHost: stringOpt(p, 'mqtts-host'),
        wsHost: stringOpt(p, 'ws-host'),
        wssHost: stringOpt(p, 'wss-host'),
        httpHost: stringOpt(p, 'http-host'),
        httpsHost: stringOpt(p, 'https-host'),
        tlsCert: stringOpt(p, 'tls-cert'),
        tlsKey: stringOpt(p, 'tls-key'),
        redisUrl: stringOpt(p, 'redis'),
        allowAnonymous: p.values['allow-anonymous'] === true ? true : undefined,
        logLevel: stringOpt(p, 'log-level') as never,
        dashboard: p.values.dashboard === true ? true : undefined,
      })
    } catch (err) {
      if (err instanceof ConfigError) throw new UsageError(err.message)
      throw err
    }
    const dashboard = cfg.dashboard
    if (dashboard && cfg.httpPort === 0 && cfg.httpsPort === 0) throw new UsageError('--dashboard needs the HTTP listener (or HTTPS): --http-port and --https-port cannot both be 0')
    if (cfg.allowAnonymous) io.stderr.write('WARNING: --allow-anonymous: any client is admitted with no ACLs. For protocol conformance testing only.\n')
    const { startGateway } = await import('../../gateway/gateway.ts')
    let gw
    try {
      gw = await startGateway(cfg)
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      if (e.code === 'EADDRINUSE' || e.code === 'EACCES') throw new CliError(`cannot listen: ${e.message}`)
      // A damaged ledger is the operator's to restore, not a bug: say what was lost, exit 1.
      if (e.name === 'LedgerError' && e.code === 'damaged') throw new CliError(e.message)
      if (e.name === 'DataDirBusy') throw new CliError(e.message)
      throw err
    }
    let dashboardUrl: string | undefined
    if (dashboard) {
      try {
        const { mountDashboard } = await import('../../dashboard/mount.ts')
        const { Spo2CalibrationDir } = await import('../../gateway/spo2-calibration-dir.ts')
        const spo2Calibrations = new Spo2CalibrationDir(join(cfg.dataDir, 'calibrations'), { warn: (m) => io.stderr.write(`mhealth gateway: calibration skipped: ${m}
`) })
        const mounted = await mountDashboard(gw, { host: hostOf(cfg, 'http'), spo2Calibrations })
        // Over HTTPS when it is on: that is the address to give the ward.
        dashboardUrl = gw.ports.https !== null ? `https://${hostOf(cfg, 'https')}:${gw.ports.https}/` : mounted.url
        // The page is built and cached now; esbuild's service process need not live as long as the gateway.
        await (await import('esbuild')).stop()
      } catch (err) {
        await gw.close()
        throw err
      }
    }
    if (gw.tlsFingerprint) io.stderr.write(`TLS certificate SHA-256 fingerprint (pin this on devices): ${gw.tlsFingerprint}\n`)
    print(io, JSON.stringify({ ready: true, ports: gw.ports, id: gw.identity.id, publicKey: gw.identity.publicKeyHex, tlsSha256: gw.tlsFingerprint, dataDir: cfg.dataDir, dashboard: dashboardUrl }))
    await untilStopSignal()
    await gw.close()
    return 0
  },
}
