import t from 'tap'
import http from 'node:http'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.ts'
import { VirtualBoard } from '../../hardware-sim/board/board.ts'
import { startSerialServer } from '../../hardware-sim/serial/server.ts'
import { Atecc608 as SeModel } from '../../hardware-sim/devices/atecc608.ts'
import { buildBundle } from '../../cli/commands/firmware.ts'
import { nodeHash } from '../../protocol/node/hash-node.ts'
import { deviceIdFromPublicKey, isValidDeviceId } from '../../protocol/portable/device-id.ts'

/** A virtual ESP32 with an ATECC608 (wake = write to address 0) on its REPL over TCP, running in real time. */
async function setup(t: any) {
  const dir = mkdtempSync(join(tmpdir(), 'mh-flash-'))
  const se = new SeModel({ seed: 11 })
  const wake = { address: 0, write: (_d: Uint8Array, now: number) => { se.wake(now); return false }, read: () => null }
  const board = new VirtualBoard({ id: 'flashme', storagePath: join(dir, 'flash.bin'), i2c: { I2C1: [se, wake] } })
  const lines: string[] = []
  board.console.on('line', (l: string) => lines.push(l))
  const serial = await startSerialServer(board)
  const running = board.run({ speed: 1 })
  t.teardown(async () => {
    board.stop()
    await running
    await serial.close()
    board.close()
  })
  const { code } = await buildBundle()
  const bundle = join(dir, 'fw.js')
  writeFileSync(bundle, code, 'latin1')
  return { dir, board, serial, lines, bundle, code, se }
}

t.test('flash over the virtual serial port: written to .bootcde, verified, runs at boot', async (t) => {
  const s = await setup(t)
  const r = await runCli(['flash', '--port', s.serial.url, '--bundle', s.bundle], { timeoutMs: 120_000 })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /wrote \d+ bytes to Storage '\.bootcde', verified/)
  t.match(r.stderr, /uploading \.bootcde: \d+\/\d+ bytes \(100%\)/, 'progress shown')
  const onBoard = s.board.repl('require("Storage").read(".bootcde")').value
  t.equal(onBoard, s.code, 'the board holds exactly the bundle')
  // Power-cycle: the firmware starts from flash by itself.
  s.lines.length = 0
  s.board.boot()
  t.ok(s.lines.some((l) => /not provisioned/.test(l)), 'firmware ran at boot')
})

t.test('provision over the virtual serial port: SE key read, registered, configuration written', async (t) => {
  const s = await setup(t)
  t.equal((await runCli(['flash', '--port', s.serial.url, '--bundle', s.bundle], { timeoutMs: 120_000 })).code, 0)
  const registrations: any[] = []
  const gw = http.createServer((req, res) => {
    if (req.url === '/api/devices' && req.method === 'POST' && req.headers.authorization === 'Bearer T0K') {
      let body = ''
      req.on('data', (d) => (body += d))
      req.on('end', () => {
        const j = JSON.parse(body)
        registrations.push(j)
        const id = deviceIdFromPublicKey(nodeHash, new Uint8Array(Buffer.from(j.publicKey, 'hex')))
        res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id, profile: j.profile }))
      })
      return
    }
    res.writeHead(401).end('{"error":"admin token required"}')
  })
  await new Promise<void>((r) => gw.listen(0, '127.0.0.1', () => r()))
  t.teardown(() => new Promise<void>((r) => gw.close(() => r())))
  const url = `http://127.0.0.1:${(gw.address() as any).port}`
  const dataDir = mkdtempSync(join(tmpdir(), 'mh-gwdata-'))
  writeFileSync(join(dataDir, 'admin.token'), 'T0K\n')
  const r = await runCli(['provision', '--port', s.serial.url, '--gateway', url, '--wifi', 'clinic:password1', '--data', dataDir, '--patient', 'p-1', '--mqtt-port', '18830'], { timeoutMs: 60_000 })
  t.equal(r.code, 0, r.stderr)
  const id = r.stdout.trim()
  t.ok(isValidDeviceId(nodeHash, id), `prints a valid device ID (${id})`)
  t.equal(registrations.length, 1)
  t.equal(registrations[0].profile, 'se')
  t.equal(registrations[0].patient, 'p-1')
  t.equal(deviceIdFromPublicKey(nodeHash, new Uint8Array(Buffer.from(registrations[0].publicKey, 'hex'))), id, 'ID derived from the SE key')
  const cfg = s.board.repl('require("Storage").readJSON("mh.cfg")').value as any
  t.equal(cfg.id, id)
  t.same(cfg.wifi, { ssid: 'clinic', pass: 'password1' })
  t.same([cfg.gw.host, cfg.gw.mqttPort, cfg.gw.httpPort], ['127.0.0.1', 18830, Number(url.split(':')[2])])
  // A wrong token is a clear failure, not a stack trace.
  writeFileSync(join(dataDir, 'admin.token'), 'nope\n')
  const bad = await runCli(['provision', '--port', s.serial.url, '--gateway', url, '--wifi', 'clinic', '--data', dataDir], { timeoutMs: 60_000 })
  t.equal(bad.code, 1)
  t.match(bad.stderr, /the gateway refused the registration \(HTTP 401\)/)
})
