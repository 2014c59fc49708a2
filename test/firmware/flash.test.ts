/**
 * `mhealth flash` and `mhealth provision` as a user runs them, against a virtual board's
 * REPL served on tcp:// (hardware-sim/serial) and, for provisioning, the real gateway.
 */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.ts'
import { startSerialServer, startPty } from '../../hardware-sim/serial/server.ts'
import { createBoardRig, firmwareBundle } from '../../hardware-sim/rig.ts'
import { nodeHash } from '../../protocol/node/hash-node.ts'
import { deviceIdFromPublicKey, isValidDeviceId } from '../../protocol/portable/device-id.ts'
import { verifyFrame } from '../../protocol/node/verify.ts'
import { startRealGateway } from './helpers/real-gateway.ts'
import { waitFor } from '../helpers/wait.ts'

t.setTimeout(120_000)

/** A factory-fresh virtual board (SE, MAX30102, AD8232, battery; nothing in flash) on tcp://, in real time. */
async function setup(t: { teardown(fn: () => unknown): void }, seed: number) {
  const rig = await createBoardRig({ id: 'flashme', seed, install: false, boot: false })
  const serial = await startSerialServer(rig.board)
  rig.board.boot()
  const running = rig.board.run({ speed: 1 })
  t.teardown(async () => {
    rig.board.stop()
    await running
    await serial.close()
    rig.close()
  })
  const code = await firmwareBundle()
  const bundle = join(rig.dir, 'fw.js')
  writeFileSync(bundle, code, 'latin1')
  return { rig, board: rig.board, serial, lines: rig.lines, bundle, code }
}

t.test('flash over the virtual serial port: written to .bootcde, verified, runs after reset', async (t) => {
  const s = await setup(t, 11)
  const r = await runCli(['flash', '--port', s.serial.url, '--bundle', s.bundle], { timeoutMs: 120_000 })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /wrote \d+ bytes to Storage '\.bootcde', verified/)
  t.match(r.stderr, /uploading \.bootcde: \d+\/\d+ bytes \(100%\)/, 'progress shown')
  const onBoard = s.board.repl('require("Storage").read(".bootcde")').value
  t.equal(onBoard, s.code, 'the board holds exactly the bundle')
  await waitFor(() => s.lines.some((l) => /not provisioned/.test(l)), 'the firmware started by flash', 5000)
  // Power-cycle: the firmware starts from flash by itself.
  s.lines.length = 0
  s.board.boot()
  t.ok(s.lines.some((l) => /not provisioned/.test(l)), 'firmware ran at boot')
  t.equal(s.board.repl('typeof selfTest').value, 'function', 'its REPL helpers exist')
})

t.test('flash: a failed write (flash full) is a clear error, and nothing half-written runs', async (t) => {
  const s = await setup(t, 12)
  s.board.flashFull(true)
  const r = await runCli(['flash', '--port', s.serial.url, '--bundle', s.bundle], { timeoutMs: 60_000 })
  t.equal(r.code, 1)
  t.match(r.stderr, /write to \.bootcde failed at byte 0 of \d+: Unable to find or create file \(Storage free: \d+ bytes\)/)
  t.notMatch(r.stderr, /\bat .*\.ts:\d+/, 'no stack trace')
  t.equal(s.board.repl('require("Storage").read(".bootcde")').value, undefined, 'no partial firmware left in .bootcde')
})

t.test('flash: a serial port another program holds is reported busy', async (t) => {
  const s = await setup(t, 13)
  const pty = await startPty(s.serial)
  t.teardown(() => pty.close())
  const { SerialPort } = await import('serialport')
  const holder = new SerialPort({ path: pty.path, baudRate: 115200, autoOpen: false, lock: true })
  await new Promise<void>((res, rej) => holder.open((e) => (e ? rej(e) : res())))
  t.teardown(() => new Promise<void>((res) => holder.close(() => res())))
  const r = await runCli(['flash', '--port', pty.path, '--bundle', s.bundle], { timeoutMs: 30_000 })
  t.equal(r.code, 1)
  t.match(r.stderr, /serial port .* is busy/)
  t.notMatch(r.stderr, /\bat .*\.ts:\d+/, 'no stack trace')
})

t.test('provision in one step against the real gateway: SE key read, registered, configuration written, frames flow', async (t) => {
  const s = await setup(t, 14)
  t.equal((await runCli(['flash', '--port', s.serial.url, '--bundle', s.bundle], { timeoutMs: 120_000 })).code, 0)
  const gw = await startRealGateway()
  t.teardown(() => gw.close())
  const r = await runCli(['provision', '--port', s.serial.url, '--gateway', gw.httpUrl, '--wifi', 'clinic:password1', '--data', gw.dir, '--patient', 'p-1', '--mqtt-port', String(gw.mqttPort)], { timeoutMs: 60_000 })
  t.equal(r.code, 0, r.stderr)
  const id = r.stdout.trim()
  t.ok(isValidDeviceId(nodeHash, id), `prints a valid device ID (${id})`)
  const dev = gw.gw.registry.getDevice(id)
  t.ok(dev, 'the gateway registered the device')
  const cfg = s.board.repl('require("Storage").readJSON("mh.cfg")').value as { id: string; wifi: unknown; gw: { host: string; mqttPort: number; httpPort: number }; t: number }
  t.equal(cfg.id, id)
  t.same(cfg.wifi, { ssid: 'clinic', pass: 'password1' })
  t.same([cfg.gw.host, cfg.gw.mqttPort, cfg.gw.httpPort], ['127.0.0.1', gw.mqttPort, gw.httpPort])
  t.ok(cfg.t > 1.7e12, 'provisioning time recorded as a lower bound for the clock')
  // The board restarted with its configuration: signed frames reach the gateway's store.
  await waitFor(() => gw.store.frames.length >= 2, 'frames from the provisioned board', 30_000)
  const f = gw.store.frames[0]!
  t.equal(f.meta.deviceId, id)
  const key = { profile: 'se' as const, publicKey: new Uint8Array(Buffer.from((dev as { publicKey: Uint8Array }).publicKey)) }
  t.equal(deviceIdFromPublicKey(nodeHash, key.publicKey), id, 'ID derived from the SE key')
  t.equal(verifyFrame(f.bytes, key).payload.deviceId, id, 'the stored frame verifies with the registered key')
  // A wrong admin token is a clear failure, not a stack trace.
  const bad = await runCli(['provision', '--port', s.serial.url, '--gateway', gw.httpUrl, '--wifi', 'clinic', '--token', 'nope'], { timeoutMs: 60_000 })
  t.equal(bad.code, 1)
  t.match(bad.stderr, /the gateway refused the registration \(HTTP 401\)/)
  t.notMatch(bad.stderr, /\bat .*\.ts:\d+/, 'no stack trace')
})
