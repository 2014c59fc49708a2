import t from 'tap'
import net from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.ts'
import { parseTargets } from '../../cli/commands/provision.ts'
import { tempDir } from '../helpers/tmp.ts'

const noStack = (t: { notMatch: (a: string, b: RegExp, m: string) => void }, s: string) => t.notMatch(s, /\bat .*\.ts:\d+/, 'no stack trace')

t.test('flash and provision have --help and refuse bad arguments with exit 2', async (t) => {
  for (const cmd of ['flash', 'provision']) {
    const h = await runCli([cmd, '--help'])
    t.equal(h.code, 0)
    t.match(h.stdout, new RegExp(`Usage: mhealth ${cmd}`))
  }
  const r = await runCli(['flash'])
  t.equal(r.code, 2)
  t.match(r.stderr, /--port is required/)
  const b = await runCli(['flash', '--port', 'tcp://127.0.0.1:1', '--baud', 'fast'])
  t.equal(b.code, 2)
  t.match(b.stderr, /--baud expects an integer, got 'fast'/)
  const p = await runCli(['provision', '--port', 'tcp://x:1', '--gateway', 'not a url', '--wifi', 'net'])
  t.equal(p.code, 2)
  t.match(p.stderr, /--gateway: expected a URL/)
  const q = await runCli(['provision', '--port', 'tcp://x:1', '--gateway', 'http://127.0.0.1:9', '--wifi', 'net:short'])
  t.equal(q.code, 2)
  t.match(q.stderr, /passphrase has 8..63 characters/)
  const tok = await runCli(['provision', '--port', 'tcp://x:1', '--gateway', 'http://127.0.0.1:9', '--wifi', 'net'])
  t.equal(tok.code, 2)
  t.match(tok.stderr, /--token TOKEN or --data/)
})

t.test('flash: clear errors for a missing bundle, a closed TCP port, a missing serial device, a silent board', async (t) => {
  const dir = tempDir('mh-flash-')
  const bundle = join(dir, 'fw.js')
  writeFileSync(bundle, 'print(1)')
  const nb = await runCli(['flash', '--port', 'tcp://127.0.0.1:1', '--bundle', join(dir, 'none.js')])
  t.equal(nb.code, 1)
  t.match(nb.stderr, /no bundle at .*none\.js/)
  // A port nobody listens on: bind then close to get one.
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const port = (s.address() as net.AddressInfo).port
  await new Promise<void>((r) => s.close(() => r()))
  const refused = await runCli(['flash', '--port', `tcp://127.0.0.1:${port}`, '--bundle', bundle])
  t.equal(refused.code, 1)
  t.match(refused.stderr, /cannot open tcp:\/\/127\.0\.0\.1:\d+: nothing is listening there/)
  noStack(t, refused.stderr)
  const missing = await runCli(['flash', '--port', join(dir, 'ttyUSB9'), '--bundle', bundle])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /no serial port at .*ttyUSB9|cannot open serial port/)
  noStack(t, missing.stderr)
  // Something listening that is not an Espruino: accepts and says nothing.
  const mute = net.createServer((c) => c.on('data', () => {}))
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', () => r()))
  t.teardown(() => new Promise<void>((r) => mute.close(() => r())))
  const silent = await runCli(['flash', '--port', `tcp://127.0.0.1:${(mute.address() as net.AddressInfo).port}`, '--bundle', bundle])
  t.equal(silent.code, 1)
  t.match(silent.stderr, /the board did not answer \(hello\)/)
  noStack(t, silent.stderr)
})

t.test('provision targets: gateway URL and WiFi credentials are split and checked', async (t) => {
  t.same(parseTargets('http://10.0.0.2:8080', 'clinic:supersecret', 1883), { gatewayHost: '10.0.0.2', httpPort: 8080, mqttPort: 1883, ssid: 'clinic', pass: 'supersecret' })
  t.same(parseTargets('http://gw', 'open', 1884), { gatewayHost: 'gw', httpPort: 80, mqttPort: 1884, ssid: 'open', pass: undefined })
  t.same(parseTargets('http://gw', 'a:b:c:defgh', 1).pass, 'b:c:defgh', 'a colon may be part of the passphrase')
  t.throws(() => parseTargets('ftp://gw', 'x', 1), /expected http/)
  t.throws(() => parseTargets('http://gw', ':pass12345', 1), /SSID of 1..32/)
})
