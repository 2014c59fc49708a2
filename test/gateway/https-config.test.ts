/** The HTTPS/WSS ports and per-listener bind addresses: defaults, layering, and clear errors for bad values (config and CLI). */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaults, hostOf, resolveConfig } from '../../gateway/config.ts'
import { runCli } from '../helpers/cli.ts'

t.test('defaults: HTTPS and WSS off, every listener binds host', async (t) => {
  const c = resolveConfig()
  t.equal(c.httpsPort, 0)
  t.equal(c.wssPort, 0)
  t.same([defaults.mqttPort, defaults.mqttsPort, defaults.wsPort, defaults.httpPort], [1883, 8883, 8080, 8081], 'existing ports unchanged')
  for (const l of ['mqtt', 'mqtts', 'ws', 'wss', 'http', 'https'] as const) t.equal(hostOf(c, l), '127.0.0.1', l)
})

t.test('new keys layer like the others', async (t) => {
  const c = resolveConfig({ host: '0.0.0.0', httpsPort: 8443, wssPort: '8084' as never, httpHost: '127.0.0.1' }, { mqttsHost: '::', httpsPort: 'auto' })
  t.equal(c.httpsPort, 'auto')
  t.equal(c.wssPort, 8084)
  t.equal(hostOf(c, 'http'), '127.0.0.1')
  t.equal(hostOf(c, 'mqtts'), '::')
  t.equal(hostOf(c, 'mqtt'), '0.0.0.0', 'unset: host')
  t.equal(hostOf(resolveConfig({ httpsHost: 'gateway.ward.local' }), 'https'), 'gateway.ward.local', 'a host name')
})

t.test('bad values are refused with the key named', async (t) => {
  const bad: Array<[object, RegExp]> = [
    [{ httpsPort: 'x' }, /httpsPort: expected a port 0-65535 or 'auto', got "x"/],
    [{ wssPort: -1 }, /wssPort: expected a port/],
    [{ httpHost: 'not a host' }, /httpHost: expected an IP address or host name/],
    [{ mqttsHost: 8883 }, /mqttsHost: expected an IP address or host name/],
    [{ host: '' }, /host: expected an IP address or host name/],
    [{ httpHosts: '127.0.0.1' }, /unknown config key 'httpHosts'/],
  ]
  for (const [input, msg] of bad) t.throws(() => resolveConfig(input as never), msg as never, JSON.stringify(input))
})

t.test('CLI flags: bad values are usage errors (exit 2) with the flag named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mh-httpscfg-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const port = await runCli(['gateway', '--data', join(dir, 'd'), '--https-port', 'eighty'])
  t.equal(port.code, 2, port.stderr)
  t.match(port.stderr, /--https-port: expected a port/)
  const host = await runCli(['gateway', '--data', join(dir, 'd'), '--http-host', 'local host'])
  t.equal(host.code, 2, host.stderr)
  t.match(host.stderr, /httpHost: expected an IP address or host name to bind/)
  const help = await runCli(['gateway', '--help'])
  t.match(help.stdout, /--https-port N[\s\S]*--wss-port|--wss-port N[\s\S]*--https-port/)
  t.match(help.stdout, /--http-host ADDR/)
})
