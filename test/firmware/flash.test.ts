/**
 * `mhealth flash` and `mhealth provision` as a user runs them, against a virtual board's
 * REPL served on tcp:// (hardware-sim/serial) and, for provisioning, the real gateway.
 */
import t, { type Test as TapTest } from 'tap'
import net from 'node:net'
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli, repoRoot } from '../helpers/cli.ts'
import { stampBundle } from '../../firmware/build/bundle.ts'
import { startSerialServer, startPty } from '../../hardware-sim/serial/server.ts'
import { createBoardRig, firmwareBundle } from '../../hardware-sim/rig.ts'
import { nodeHash } from '../../protocol/node/hash-node.ts'
import { deviceIdFromPublicKey, isValidDeviceId } from '../../protocol/portable/device-id.ts'
import { verifyFrame } from '../../protocol/node/verify.ts'
import { startRealGateway } from '../../testing/real-gateway.ts'
import { waitFor } from '../helpers/wait.ts'

// Nine boards, most flashed twice or three times in real time.
t.setTimeout(300_000)

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

/** The same firmware under another FW_VERSION (same length): a "new" release to flash over the old. */
function nextRelease(code: string, dir: string): { code: string; path: string } {
  const body = code.slice(code.indexOf('\n') + 1)
  const next = stampBundle(body.replace(/mh-fw\/0\.2\.0/g, 'mh-fw/0.2.1'))
  const path = join(dir, 'fw-next.js')
  writeFileSync(path, next, 'latin1')
  return { code: next, path }
}

/**
 * A TCP hop between the CLI and the board's console that sees what the CLI sends line by line
 * and may rewrite it (bytes garbled in transit), hold it (a slow link) or act instead of
 * forwarding it (`null`: the line is dropped).
 */
async function lineProxy(t: { teardown(fn: () => unknown): void }, targetUrl: string, onLine: (line: string, cut: () => void) => string | null | Promise<string | null>) {
  const targetPort = Number(/:(\d+)$/.exec(targetUrl)![1])
  const socks = new Set<net.Socket>()
  const server = net.createServer((c) => {
    const u = net.connect({ host: '127.0.0.1', port: targetPort })
    socks.add(c)
    socks.add(u)
    const cut = (): void => {
      c.destroy()
      u.destroy()
    }
    let pending = ''
    let chain = Promise.resolve()
    c.on('data', (d: Buffer) => {
      pending += d.toString('latin1')
      const nl = pending.lastIndexOf('\n')
      // Bytes with no line end yet (Ctrl-C) pass at once; lines go through onLine in order.
      if (nl < 0) {
        if (!pending.includes('(')) {
          u.write(Buffer.from(pending, 'latin1'))
          pending = ''
        }
        return
      }
      const lines = pending.slice(0, nl + 1).split(/(?<=\n)/)
      pending = pending.slice(nl + 1)
      for (const line of lines) {
        chain = chain.then(async () => {
          const out = await onLine(line, cut)
          if (out !== null && !u.destroyed) u.write(Buffer.from(out, 'latin1'))
        })
      }
    })
    u.on('data', (d) => { if (!c.destroyed) c.write(d) })
    for (const s of [c, u]) {
      s.on('error', cut)
      s.on('close', cut)
    }
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  t.teardown(() => new Promise<void>((r) => {
    for (const s of socks) s.destroy()
    server.close(() => r())
  }))
  return `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`
}

/** Garbles the payload of the `n`th Storage.write line (letters A and B swapped: still valid base64, so the write succeeds). */
function garbleWrite(n: number) {
  let seen = 0
  return (line: string): string => {
    if (!/Storage"\)\.write\(/.test(line) || !line.includes('atob("')) return line
    if (++seen !== n) return line
    return line.replace(/atob\("([^"]*)"\)/, (_m, b64: string) => `atob("${b64.replace(/[AB]/g, (ch) => (ch === 'A' ? 'B' : 'A'))}")`)
  }
}

const storageList = (s: { board: { repl(c: string): { value?: unknown } } }): string[] => s.board.repl('require("Storage").list()').value as string[]
const bootErrors = (lines: string[]): string[] => lines.filter((l) => /syntax error|SyntaxError|cannot run|Uncaught/i.test(l))

/** Flashes the bundle directly and waits until it runs. */
async function flashOk(t: TapTest, s: Awaited<ReturnType<typeof setup>>, port = s.serial.url, bundle = s.bundle) {
  s.lines.length = 0
  const r = await runCli(['flash', '--port', port, '--bundle', bundle], { timeoutMs: 120_000 })
  t.equal(r.code, 0, r.stderr)
  await waitFor(() => s.lines.some((l) => /not provisioned/.test(l)), 'the flashed firmware running', 10_000)
  return r
}

t.test('flash over the virtual serial port: written to .bootcde, verified, runs after reset', async (t) => {
  const s = await setup(t, 11)
  const r = await runCli(['flash', '--port', s.serial.url, '--bundle', s.bundle], { timeoutMs: 120_000 })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /wrote \d+ bytes \(mh-fw\/0\.2\.0\) to Storage '\.bootcde', verified/)
  t.match(r.stderr, /uploading \.bootcde: \d+\/\d+ bytes \(100%\)/, 'progress shown')
  const onBoard = s.board.repl('require("Storage").read(".bootcde")').value
  t.equal(onBoard, s.code, 'the board holds exactly the bundle')
  t.notOk(storageList(s).some((n) => /^\.bootcde\./.test(n)), 'no staging file left behind')
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
  t.match(r.stderr, /write to '\.bootcde\.new' failed at byte 0 of \d+: Unable to find or create file \(Storage free: \d+ bytes\)\. Nothing was changed: the board has no firmware in '\.bootcde'/)
  t.notMatch(r.stderr, /\bat .*\.ts:\d+/, 'no stack trace')
  t.equal(s.board.repl('require("Storage").read(".bootcde")').value, undefined, 'no partial firmware left in .bootcde')
  t.same(storageList(s), [], 'nor a staging file')
})

t.test('flash: bytes garbled in transit leave the previous firmware in place, booting and answering', async (t) => {
  const s = await setup(t, 15)
  await flashOk(t, s)
  const next = nextRelease(s.code, s.rig.dir)
  // The real run that found this: 588 bytes changed on the way, every write said true.
  const port = await lineProxy(t, s.serial.url, garbleWrite(3))
  s.lines.length = 0
  const r = await runCli(['flash', '--port', port, '--bundle', next.path], { timeoutMs: 120_000 })
  t.equal(r.code, 1, 'the flash fails')
  t.match(r.stderr, /verification failed: '\.bootcde\.new' on the board has SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64}/)
  t.match(r.stderr, /Nothing was changed: '\.bootcde' holds the previous firmware \(mh-fw\/0\.2\.0\); the board was restarted with it/)
  t.notMatch(r.stderr, /\bat .*\.ts:\d+/, 'no stack trace')
  t.equal(s.board.repl('require("Storage").read(".bootcde")').value, s.code, '.bootcde is still the previous bundle, byte for byte')
  t.notOk(storageList(s).some((n) => /^\.bootcde\./.test(n)), 'the garbled copy is gone')
  await waitFor(() => s.lines.some((l) => /not provisioned/.test(l)), 'the previous firmware restarted', 10_000)
  t.equal(JSON.parse(s.board.repl('mhStatus()').value as string).fw, 'mh-fw/0.2.0', 'mhStatus() answers from the previous firmware')
  s.lines.length = 0
  s.board.boot()
  t.ok(s.lines.some((l) => /not provisioned/.test(l)), 'and it is what boots')
  t.same(bootErrors(s.lines), [], 'no SyntaxError at boot')
})

t.test('flash: a first flash that fails leaves no .bootcde (the board boots nothing rather than half a bundle)', async (t) => {
  const s = await setup(t, 16)
  const port = await lineProxy(t, s.serial.url, garbleWrite(2))
  const r = await runCli(['flash', '--port', port, '--bundle', s.bundle], { timeoutMs: 120_000 })
  t.equal(r.code, 1)
  t.match(r.stderr, /verification failed: .*Nothing was changed: the board has no firmware in '\.bootcde'/)
  t.notMatch(r.stderr, /restarted with it/)
  t.same(storageList(s), [], 'no .bootcde, no staging file')
  s.lines.length = 0
  s.board.boot()
  t.same(bootErrors(s.lines), [], 'boots cleanly into an empty REPL')
})

t.test('flash: a brown-out during the upload leaves the previous firmware booting', async (t) => {
  const s = await setup(t, 17)
  await flashOk(t, s)
  const next = nextRelease(s.code, s.rig.dir)
  const boots = s.board.bootCount
  s.board.brownOut(0.5)
  s.lines.length = 0
  const r = await runCli(['flash', '--port', s.serial.url, '--bundle', next.path], { timeoutMs: 60_000 })
  t.equal(r.code, 1)
  t.match(r.stderr, /'\.bootcde' holds the previous firmware \(mh-fw\/0\.2\.0\)/)
  t.ok(s.board.bootCount > boots, 'the board lost power and rebooted')
  t.equal(s.board.repl('require("Storage").read(".bootcde")').value, s.code, '.bootcde untouched')
  await waitFor(() => s.lines.some((l) => /not provisioned/.test(l)), 'the previous firmware running', 10_000)
  t.same(bootErrors(s.lines), [], 'no SyntaxError at boot')
  t.notOk(storageList(s).includes('.bootcde.new'), 'the torn staging copy is removed')
})

t.test('flash: power lost while the board swaps the new bundle in; the next flash repairs from .bootcde.old', async (t) => {
  const s = await setup(t, 18)
  await flashOk(t, s)
  const next = nextRelease(s.code, s.rig.dir)
  // Cut power in the middle of the on-board copy into .bootcde: the window staging cannot close.
  const port = await lineProxy(t, s.serial.url, (line, cut) => {
    if (!line.includes('r:"ok"')) return line
    const st = s.board.storage
    st.erase('.bootcde')
    st.write('.bootcde', Buffer.from(next.code.slice(0, 2048), 'latin1'), 0, next.code.length)
    cut()
    s.lines.length = 0
    s.board.boot()
    return null
  })
  const cutRun = await runCli(['flash', '--port', port, '--bundle', next.path], { timeoutMs: 120_000 })
  t.equal(cutRun.code, 1)
  t.match(cutRun.stderr, /the link to the board closed during swap into \.bootcde.*Unless that copy completed, the previous firmware is in '\.bootcde\.old'; run 'mhealth flash' again/)
  t.ok(bootErrors(s.lines).length > 0, 'the torn .bootcde does not run (the residual window)')
  t.equal(s.board.repl('require("Storage").read(".bootcde.old")').value, s.code, 'the verified copy of the previous firmware survived')
  // The next flash fails too (garbled): it must leave the previous firmware, repaired, not the torn file.
  const garbled = await lineProxy(t, s.serial.url, garbleWrite(2))
  s.lines.length = 0
  const r = await runCli(['flash', '--port', garbled, '--bundle', next.path], { timeoutMs: 120_000 })
  t.equal(r.code, 1)
  t.match(r.stderr, /note: '\.bootcde' on the board is a damaged bundle \(mh-fw\/0\.2\.1/)
  t.match(r.stderr, /note: put the previous firmware \(mh-fw\/0\.2\.0\) back into '\.bootcde' from '\.bootcde\.old'/)
  t.match(r.stderr, /Nothing was changed: '\.bootcde' holds the previous firmware \(mh-fw\/0\.2\.0\); the board was restarted with it/)
  t.equal(s.board.repl('require("Storage").read(".bootcde")').value, s.code, 'the previous firmware is back in .bootcde')
  t.notOk(storageList(s).some((n) => /^\.bootcde\./.test(n)), 'no staging files left')
  await waitFor(() => s.lines.some((l) => /not provisioned/.test(l)), 'the previous firmware running', 10_000)
  t.equal(JSON.parse(s.board.repl('mhStatus()').value as string).fw, 'mh-fw/0.2.0')
  // And a clean link gets the new release in.
  await flashOk(t, s, s.serial.url, next.path)
  t.equal(JSON.parse(s.board.repl('mhStatus()').value as string).fw, 'mh-fw/0.2.1', 'the new release runs')
})

t.test('flash: a copy into .bootcde that reads back wrong on the board is undone (previous put back, or none)', async (t) => {
  const s = await setup(t, 20)
  // A flash that programs one wrong bit during the on-board copy into .bootcde (never during the upload).
  const st = s.board.storage
  const write = st.write.bind(st)
  let corrupt = false
  st.write = (name, data, offset = 0, size = 0, flags = 0) => {
    if (corrupt && name === '.bootcde' && offset === 1024) {
      corrupt = false
      data = Uint8Array.from(data)
      data[100]! ^= 0x04
    }
    return write(name, data, offset, size, flags)
  }
  corrupt = true
  const first = await runCli(['flash', '--port', s.serial.url, '--bundle', s.bundle], { timeoutMs: 120_000 })
  t.equal(first.code, 1)
  t.match(first.stderr, /copying the verified upload into '\.bootcde' went wrong on the board \(it reads back with SHA-256 [0-9a-f]{64}\)\. '\.bootcde' was erased: the board had no firmware there before and has none now/)
  t.same(storageList(s), [], 'a first flash that fails leaves no .bootcde')
  await flashOk(t, s)
  const next = nextRelease(s.code, s.rig.dir)
  corrupt = true
  s.lines.length = 0
  const r = await runCli(['flash', '--port', s.serial.url, '--bundle', next.path], { timeoutMs: 120_000 })
  t.equal(r.code, 1)
  t.match(r.stderr, /went wrong on the board \(it reads back with SHA-256 [0-9a-f]{64}\)\. The previous firmware \(mh-fw\/0\.2\.0\) was put back in '\.bootcde' and verified; the board was restarted with it/)
  t.equal(s.board.repl('require("Storage").read(".bootcde")').value, s.code, 'the previous bundle, byte for byte')
  t.notOk(storageList(s).some((n) => /^\.bootcde\./.test(n)), 'no staging files left')
  await waitFor(() => s.lines.some((l) => /not provisioned/.test(l)), 'the previous firmware running', 10_000)
  t.equal(JSON.parse(s.board.repl('mhStatus()').value as string).fw, 'mh-fw/0.2.0')
})

t.test('flash: Ctrl-C during the upload stops cleanly, the previous firmware untouched', async (t) => {
  const s = await setup(t, 19)
  await flashOk(t, s)
  const next = nextRelease(s.code, s.rig.dir)
  // A slow link, so there is an upload to interrupt.
  const port = await lineProxy(t, s.serial.url, async (line) => {
    if (line.includes('atob("')) await new Promise((r) => setTimeout(r, 40))
    return line
  })
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'mhealth.js'), 'flash', '--port', port, '--bundle', next.path], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => {
    stderr += d
    // Progress is printed as chunks land (about every 11 % of this bundle): interrupt at the
    // first report between 10 % and 89 %, whichever it is, so there is an upload under way.
    if (/uploading \.bootcde: \d+\/\d+ bytes \([1-8]\d%\)/.test(stderr) && !child.killed) child.kill('SIGINT')
  })
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)))
  t.equal(code, 130, stderr)
  t.match(stderr, /interrupted at byte \d+ of \d+\. Nothing was changed: '\.bootcde' holds the previous firmware \(mh-fw\/0\.2\.0\)/)
  t.equal(s.board.repl('require("Storage").read(".bootcde")').value, s.code)
  t.notOk(storageList(s).includes('.bootcde.new'), 'the partial staging copy is removed')
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
  t.match(bad.stderr, /the gateway at .* refused the admin token \(HTTP 401\)/)
  t.notMatch(bad.stderr, /\bat .*\.ts:\d+/, 'no stack trace')
})
