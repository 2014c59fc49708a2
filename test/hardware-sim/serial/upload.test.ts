import t from 'tap'
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeBoard } from '../board/helpers.ts'
import { repoRoot } from '../../helpers/cli.ts'
import { startSerialServer, startPty } from '../../../hardware-sim/serial/server.ts'
import type { VirtualBoard } from '../../../hardware-sim/board/board.ts'
import { waitFor } from '../../helpers/wait.ts'

const espruinoCli = join(repoRoot, 'node_modules', 'espruino', 'bin', 'espruino-cli.js')

/** Longer than 512 bytes: the tools never call back for shorter uploads (facts file). */
const BUNDLE = `// uploaded by the espruino tools
var count = 0;
function blink() {
  count++;
  digitalWrite(D2, count % 2);
  if (count === 3) print('blinked 3 times');
}
setInterval(blink, 500);
var config = {
  name: 'virtual board upload test',
  a: '..............................................................................................................',
  b: '..............................................................................................................',
  c: '..............................................................................................................'
};
print('uploaded ' + config.name);
`

const BOARD_JSON = JSON.stringify({ info: { name: 'ESP32 (virtual)', binary_version: '2v25', builtin_modules: ['Storage', 'Wifi', 'net', 'crypto'] } })

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 40_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code: code ?? -1, out })
    })
  })
}

/** Runs the board in real time while `fn` works, then stops it. */
async function whileRunning<T>(board: VirtualBoard, fn: () => Promise<T>): Promise<T> {
  const running = board.run({ speed: 1 })
  try {
    return await fn()
  } finally {
    board.stop()
    await running
  }
}

function waitForLine(board: VirtualBoard, text: string, ms = 10_000): Promise<boolean> {
  return new Promise((resolve) => {
    if (board.console.lines.includes(text)) return resolve(true)
    const timer = setTimeout(() => { board.console.off('line', on); resolve(false) }, ms)
    function on(l: string): void {
      if (l === text) {
        clearTimeout(timer)
        board.console.off('line', on)
        resolve(true)
      }
    }
    board.console.on('line', on)
  })
}

t.test('the espruino CLI uploads a bundle over tcp:// and the uploaded code runs', async (t) => {
  const pins: boolean[] = []
  const { board, dir } = makeBoard(t, { digitalOut: { 2: { set: (l) => pins.push(l) } } })
  const server = await startSerialServer(board)
  t.teardown(() => server.close())
  writeFileSync(join(dir, 'board.json'), BOARD_JSON)
  writeFileSync(join(dir, 'app.js'), BUNDLE)
  await whileRunning(board, async () => {
    const r = await run(process.execPath, [espruinoCli, '--no-ble', '--board', 'board.json', '-p', server.url, 'app.js'], dir)
    t.equal(r.code, 0, 'the tool exits cleanly')
    if (r.code !== 0) t.comment(r.out.slice(-2000))
    t.match(r.out, 'uploaded virtual board upload test')
    t.ok(await waitForLine(board, 'blinked 3 times'), 'the uploaded interval runs on the board')
  })
  t.same(pins.slice(0, 3), [true, false, true])
})

t.test("the espruino package's API (init + sendCode) uploads and calls back; it reads process.env from the board", async (t) => {
  const { board, dir } = makeBoard(t)
  const server = await startSerialServer(board)
  t.teardown(() => server.close())
  writeFileSync(join(dir, 'app.js'), BUNDLE)
  writeFileSync(join(dir, 'send.cjs'), `
    const esp = require(${JSON.stringify(join(repoRoot, 'node_modules', 'espruino'))});
    esp.init(function () {
      Espruino.Config.BLUETOOTH_LOW_ENERGY = false;
      Espruino.Config.BLUETOOTH_LOW_ENERGY_DBUS = false;
      Espruino.Config.SERIAL_TCPIP = [process.argv[2]];
      var code = require('fs').readFileSync(process.argv[3], 'utf8');
      esp.sendCode(process.argv[2], code, function (resp) { console.log('CALLED BACK ' + JSON.stringify(resp)); process.exit(0); });
    });`)
  await whileRunning(board, async () => {
    const r = await run(process.execPath, [join(dir, 'send.cjs'), server.url, join(dir, 'app.js')], dir)
    t.equal(r.code, 0, 'the tool exits cleanly')
    if (r.code !== 0) t.comment(r.out.slice(-2000))
    t.match(r.out, 'Found ESP32, 2v25')
    t.match(r.out, /CALLED BACK .*uploaded virtual board upload test/)
    t.notMatch(r.out, 'Uncaught', 'everything the tools send runs')
    t.ok(await waitForLine(board, 'blinked 3 times'))
  })
})

t.test('a pseudo-terminal bridge: serialport opens the pty path and talks to the REPL', async (t) => {
  const { board } = makeBoard(t)
  const server = await startSerialServer(board)
  t.teardown(() => server.close())
  const pty = await startPty(server)
  t.teardown(() => pty.close())
  t.match(pty.path, /^\/dev\/pts\/\d+$/)
  const { SerialPort } = await import('serialport')
  const port = new SerialPort({ path: pty.path, baudRate: 115200 })
  t.teardown(() => new Promise<void>((r) => (port.isOpen ? port.close(() => r()) : r())))
  await new Promise<void>((resolve, reject) => port.once('open', () => resolve()).once('error', reject))
  let got = ''
  port.on('data', (d: Buffer) => (got += d.toString('latin1')))
  await whileRunning(board, async () => {
    port.write('6*7\r')
    await waitFor(() => got.includes('=42'), () => `the REPL's answer over the pty (got ${JSON.stringify(got)})`)
  })
  t.match(got, '6*7\r\n=42\r\n>')
})
