import t from 'tap'
import net from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.ts'
import { parseTargets } from '../../cli/commands/provision.ts'
import { choosePrevious, type BoardFiles } from '../../cli/commands/flash.ts'
import { buildBundle, stampBundle } from '../../firmware/build/bundle.ts'
import { tempDir } from '../helpers/tmp.ts'

const noStack = (t: { notMatch: (a: string, b: RegExp, m: string) => void }, s: string) => t.notMatch(s, /\bat .*\.ts:\d+/, 'no stack trace')

t.test('flash and provision have --help and refuse bad arguments with exit 2', async (t) => {
  for (const cmd of ['flash', 'provision']) {
    const h = await runCli([cmd, '--help'])
    t.equal(h.code, 0)
    t.match(h.stdout, new RegExp(`Usage: mhealth ${cmd}`))
  }
  const fh = (await runCli(['flash', '--help'])).stdout
  t.match(fh, /mhealth-firmware VERSION SHA256/, 'flash --help names the marker it requires')
  t.match(fh, /goes to FILE\.new in checked chunks and is verified there/, 'and the staged upload')
  t.match(fh, /--file NAME\s+Storage file to write, up to 24 characters/)
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

/** A TCP port that counts who connects: "the board" that must not be touched. */
async function countingPort(t: { teardown(fn: () => unknown): void }) {
  const seen = { connections: 0 }
  const srv = net.createServer((c) => {
    seen.connections++
    c.destroy()
  })
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()))
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())))
  return { url: `tcp://127.0.0.1:${(srv.address() as net.AddressInfo).port}`, seen }
}

t.test('flash refuses, before touching the board, a file that is not our firmware bundle', async (t) => {
  const dir = tempDir('mh-flash-')
  const board = await countingPort(t)
  const { code } = await buildBundle()
  const body = code.slice(code.indexOf('\n') + 1)
  const cases: [string, string, RegExp][] = [
    ['garbage.txt', 'these are not the bytes you are looking for\n\x00\xff', /refusing to flash .*garbage\.txt: it is not JavaScript: /],
    ['empty.js', '', /refusing to flash .*empty\.js: the file is empty/],
    ['other.js', 'var x = 1; print("hello from someone else\'s script")\n', /refusing to flash .*other\.js: it is not an mhealth firmware bundle \(no '\/\* mhealth-firmware VERSION SHA256 \*\/' first line/],
    ['unmarked.js', body, /it is not an mhealth firmware bundle/],
    ['edited.js', code.replace('not provisioned', 'NOT provisioned'), /it was changed after it was built: its body has SHA-256 [0-9a-f]{64}, its marker says [0-9a-f]{64}/],
    ['bad-marker.js', '/* mhealth-firmware mh-fw/1 abc */\n' + body, /a malformed marker line/],
    ['marker-only.js', stampBundle('var v="mh-fw/0.0.1"\n').split('\n')[0]!.replace(/[0-9a-f]{64}/, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'), /no code after its marker line/],
    ['uses-map.js', stampBundle('var v="mh-fw/0.0.1";var m=new Map();\n'), /it uses what Espruino 2v2x lacks: Map at 2:\d+/],
  ]
  for (const [name, content, why] of cases) {
    const path = join(dir, name)
    writeFileSync(path, content, 'latin1')
    const r = await runCli(['flash', '--port', board.url, '--bundle', path])
    t.equal(r.code, 1, `${name}: exit 1`)
    t.match(r.stderr, why, name)
    t.match(r.stderr, /Nothing was sent to the board/, `${name}: says the board was not touched`)
    noStack(t, r.stderr)
  }
  t.equal(board.seen.connections, 0, 'no connection to the board was ever opened')
  const long = await runCli(['flash', '--port', board.url, '--file', 'a-storage-name-of-25-chars'])
  t.equal(long.code, 2)
  t.match(long.stderr, /--file: expected a Storage name of 1\.\.24 printable characters/)
})

t.test('choosePrevious: which firmware a failed flash leaves in place', async (t) => {
  const fw = (intact: boolean, sha = 'a') => ({ size: 10, sha256: sha, firmware: { version: 'mh-fw/1', intact } })
  const foreign = (sha = 'f') => ({ size: 10, sha256: sha })
  const files = (target: BoardFiles['target'], backup: BoardFiles['backup'] = null): BoardFiles => ({ target, backup, staged: null })
  const from = (f: BoardFiles) => choosePrevious('.bootcde', f).previous?.from ?? null
  t.equal(from(files(null)), null, 'nothing on the board: nothing to keep')
  t.equal(from(files(fw(true))), '.bootcde', 'an intact bundle in place')
  t.equal(from(files(foreign())), '.bootcde', 'code that is not ours is kept as it is')
  t.equal(from(files(fw(true), fw(true, 'b'))), '.bootcde', 'an intact target wins over a stale backup')
  t.equal(from(files(fw(false), fw(true, 'b'))), '.bootcde.old', 'a torn target gives way to the verified backup')
  t.equal(from(files(null, fw(true, 'b'))), '.bootcde.old', 'so does a missing one')
  t.equal(from(files(null, foreign())), '.bootcde.old', 'a backup of foreign code, target missing')
  t.equal(from(files(fw(false))), null, 'a torn bundle with no backup is not worth keeping')
  t.equal(from(files(fw(false), fw(false, 'b'))), null, 'nor with a torn backup')
  t.match(choosePrevious('.bootcde', files(fw(false))).notes.join('\n'), /damaged bundle.*\n.*'\.bootcde' is erased/)
})

t.test('flash: clear errors for a missing bundle, a closed TCP port, a missing serial device, a silent board', async (t) => {
  const dir = tempDir('mh-flash-')
  const bundle = join(dir, 'fw.js')
  writeFileSync(bundle, (await buildBundle()).code, 'latin1')
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
