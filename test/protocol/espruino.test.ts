/**
 * The portable protocol code, bundled the way the firmware is and run on the
 * virtual board (Espruino's built-ins only, native SHA-256), produces the same
 * bytes as on Node, and those frames verify with the Node verifier.
 */
import t from 'tap'
import { join } from 'node:path'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createHash } from 'node:crypto'
import * as esbuild from 'esbuild'
import { VirtualBoard } from '../../hardware-sim/board/board.ts'
import { CborWriter } from '../../protocol/portable/cbor.ts'
import { encodePayload } from '../../protocol/portable/frame.ts'
import { mac0ToBeMaced, buildMac0, sign1ToBeSigned } from '../../protocol/portable/cose.ts'
import { hmacSha256 } from '../../protocol/portable/hash.ts'
import { toHex, fromHex } from '../../protocol/portable/bytes.ts'
import { deviceIdFromBytes } from '../../protocol/portable/device-id.ts'
import { nodeHash } from '../../protocol/node/hash-node.ts'
import { verifyFrame } from '../../protocol/node/verify.ts'
import { randomPayload, createRng } from '../helpers/frames.ts'
import { repoRoot } from '../helpers/cli.ts'

const SECRET_HEX = '8f0c4a1b2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5a6b7c8d9eafb0c1d2'

async function bundle(defines: Record<string, string>): Promise<string> {
  const out = await esbuild.build({
    entryPoints: [join(repoRoot, 'test/protocol/fixtures/board-encoder.ts')],
    bundle: true, write: false, format: 'iife', target: 'es2015', minify: true, platform: 'neutral',
    // esbuild's own require shim uses Proxy, which Espruino lacks: hand it the board's require.
    define: { require: 'ESPRUINO_REQUIRE', ...defines },
    banner: { js: 'var ESPRUINO_REQUIRE=require;' },
  })
  return out.outputFiles[0].text
}

t.test('board-built frames equal Node-built frames byte for byte and verify', async (t) => {
  const rng = createRng(20261124)
  const deviceId = deviceIdFromBytes(nodeHash, fromHex('0a1b2c3d4e5f60718293'))
  // One-second windows: what the firmware builds, and small enough for the board's memory.
  const payloads = Array.from({ length: 6 }, (_, i) => randomPayload(rng, deviceId, { seconds: 1, seq: 1000 + i }))
  const code = await bundle({ PAYLOADS: JSON.stringify(payloads), SECRET_HEX: JSON.stringify(SECRET_HEX) })
  t.ok(code.length < 48 * 1024, `bundle ${code.length} bytes fits the firmware budget`)

  const dir = mkdtempSync(join(tmpdir(), 'mh-proto-board-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const board = new VirtualBoard({ id: 'proto', storagePath: join(dir, 'flash.bin') })
  t.teardown(() => board.close())
  board.load(code)
  const lines = board.console.lines.filter((l: string) => l.startsWith('FRAME '))
  t.equal(lines.length, payloads.length, 'one line per frame')
  t.ok(board.memory().usage < 16383 * 0.6, `board memory ${board.memory().usage} JsVars`)

  const secret = fromHex(SECRET_HEX)
  for (let i = 0; i < payloads.length; i++) {
    const [, idx, frameHex, digestHex] = lines[i].split(' ')
    t.equal(Number(idx), i)
    const body = new Uint8Array(encodePayload(new CborWriter(4096), payloads[i]))
    const expected = buildMac0(deviceId, body, hmacSha256(nodeHash, secret, mac0ToBeMaced(deviceId, body)))
    t.equal(frameHex, toHex(expected), `frame ${i} identical`)
    t.equal(digestHex, createHash('sha256').update(sign1ToBeSigned(deviceId, body)).digest('hex'), `ES256 digest ${i} identical`)
    const decoded = verifyFrame(fromHex(frameHex), { profile: 'bare', secret })
    t.equal(decoded.payload.seq, payloads[i].seq)
  }
})

t.test('the bundle uses nothing the board refuses', async (t) => {
  const code = await bundle({ PAYLOADS: '[]', SECRET_HEX: JSON.stringify(SECRET_HEX) })
  const dir = mkdtempSync(join(tmpdir(), 'mh-proto-board-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const board = new VirtualBoard({ id: 'proto', storagePath: join(dir, 'flash.bin') })
  t.teardown(() => board.close())
  t.doesNotThrow(() => board.load(code))
  // The same bundle without the require define falls back to esbuild's Proxy shim: refused.
  const naive = await esbuild.build({
    entryPoints: [join(repoRoot, 'test/protocol/fixtures/board-encoder.ts')],
    bundle: true, write: false, format: 'iife', target: 'es2015', minify: true, platform: 'neutral',
    external: ['crypto'], define: { PAYLOADS: '[]', SECRET_HEX: JSON.stringify(SECRET_HEX) },
  })
  const board2 = new VirtualBoard({ id: 'proto2', storagePath: join(dir, 'flash2.bin') })
  t.teardown(() => board2.close())
  t.throws(() => board2.load(naive.outputFiles[0].text), /Proxy/)
})
