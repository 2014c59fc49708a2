import { print, untilStopSignal, type Command } from '../command.ts'
import { parseCli, stringOpt, intOpt } from '../args.ts'
import { CliError } from '../errors.ts'
import { portOpt } from './gateway.ts'

const usage = `Usage: mhealth demo [--data DIR] [--patients N] [--http-port N] [--mqtt-port N]
                   [--mqtts-port N] [--ws-port N] [--mitdb DIR]

Runs the whole system on its embedded defaults, no board needed: the gateway with
its ledger, the clinic dashboard at http://127.0.0.1:8080, and a ward of simulated
patients, each a virtual ESP32 running the real firmware bundle (ATECC608-signed
or HMAC frames over MQTT). One patient's SpO2 falls below the alarm threshold
within about three minutes; one is in atrial fibrillation. Ctrl-C stops
everything cleanly; the next start continues the same ledger and boards.

  --data DIR        state: gateway, ledger, boards, ward.json (default ./data/demo)
  --patients N      patients to simulate, 1-8 (default 8)
  --http-port N     dashboard and HTTP API (default 8080)
  --mqtt-port N     MQTT over TCP (default 1883); also --mqtts-port (8883), --ws-port (8083)
                    any port: 0 turns that listener off (not http/mqtt), 'auto' picks a free one
  --mitdb DIR       MIT-BIH records for the replayed patients (default ../shared/data/ecg/mitdb
                    when present; synthetic rhythms stand in otherwise)`

export const command: Command = {
  name: 'demo',
  summary: 'run the system on embedded defaults, no board needed (npm start)',
  usage,
  async run(argv, io) {
    const p = parseCli(argv, {
      data: { type: 'string' }, patients: { type: 'string' }, mitdb: { type: 'string' },
      'http-port': { type: 'string' }, 'mqtt-port': { type: 'string' }, 'mqtts-port': { type: 'string' }, 'ws-port': { type: 'string' },
    })
    const dataDir = stringOpt(p, 'data') ?? 'data/demo'
    const patients = intOpt(p, 'patients', 8, 1, 8)
    const httpPort = portOpt(p, 'http-port')
    const mqttPort = portOpt(p, 'mqtt-port')
    if (httpPort === 0 || mqttPort === 0) throw new CliError('the demo needs its HTTP and MQTT listeners: --http-port and --mqtt-port cannot be 0')
    const { existsSync } = await import('node:fs')
    const { join, resolve } = await import('node:path')
    const { fileURLToPath } = await import('node:url')
    const repo = resolve(fileURLToPath(import.meta.url), '..', '..', '..')
    const mitdbDir = stringOpt(p, 'mitdb') ?? [join(repo, '..', 'shared', 'data', 'ecg', 'mitdb')].find((d) => existsSync(d)) ?? null
    if (mitdbDir !== null && !existsSync(mitdbDir)) throw new CliError(`--mitdb ${mitdbDir}: no such folder`)

    const { startDemo } = await import('../../demo/run.ts')
    print(io, `starting the gateway, ledger and dashboard (state in ${dataDir})`)
    let demo
    try {
      demo = await startDemo({
        dataDir, patients, mitdbDir, httpPort, mqttPort,
        mqttsPort: portOpt(p, 'mqtts-port'), wsPort: portOpt(p, 'ws-port'),
        say: (line) => print(io, line),
      })
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      if (e.code === 'EADDRINUSE') throw new CliError(`cannot listen: ${e.message} (another gateway or demo running? pick other ports with --http-port/--mqtt-port)`)
      throw err
    }
    const gw = demo.gateway
    print(io, '')
    for (const pt of demo.patients) print(io, `  ${pt.bed}  ${pt.name.padEnd(13)} ${pt.profile === 'se' ? 'SE  ' : 'bare'} ${pt.deviceId}  ${pt.story}`)
    print(io, '')
    print(io, `dashboard  ${demo.url}`)
    print(io, `  clinician login: ${demo.users.clinician.username} / ${demo.users.clinician.password}`)
    print(io, `  admin login:     ${demo.users.admin.username} / ${demo.users.admin.password}  (devices, consent)`)
    print(io, `mqtt       mqtt://127.0.0.1:${gw.ports.mqtt}${gw.ports.mqtts ? `   mqtts://127.0.0.1:${gw.ports.mqtts} (SHA-256 ${gw.tlsFingerprint})` : ''}`)
    print(io, `metrics    http://127.0.0.1:${gw.ports.http}/metrics`)
    print(io, `ledger     mhealth ledger verify --data ${join(dataDir, 'gateway')}   (after Ctrl-C)`)
    print(io, 'Ctrl-C stops everything.')

    const m = gw.metrics
    let last = m.framesAccepted.get()
    const progress = setInterval(() => {
      const now = m.framesAccepted.get()
      print(io, `frames stored ${now} (+${((now - last) / 10).toFixed(1)}/s), devices connected ${m.devicesConnected.get()}/${patients}, rejected ${m.framesRejected.total()}`)
      last = now
    }, 10_000)
    await untilStopSignal()
    clearInterval(progress)
    print(io, 'stopping: boards, dashboard, gateway, ledger')
    await demo.stop()
    print(io, `stopped; ${m.framesAccepted.get()} frames stored this run`)
    return 0
  },
}

