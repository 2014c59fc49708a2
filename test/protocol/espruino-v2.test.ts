/**
 * encodePayloadV2 bundled the way the firmware is and run on the virtual board
 * (Espruino's built-ins only) writes the same bytes as on Node, and those
 * frames verify with the Node verifier.
 */
import t from 'tap'
import { join } from 'node:path'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as esbuild from 'esbuild'
import { VirtualBoard } from '../../hardware-sim/board/board.ts'
import { CborWriter } from '../../protocol/portable/cbor.ts'
import { encodePayloadV2, FLAG_RECOVERED } from '../../protocol/portable/frame.ts'
import { mac0ToBeMaced, buildMac0 } from '../../protocol/portable/cose.ts'
import { hmacSha256 } from '../../protocol/portable/hash.ts'
import { toHex, fromHex } from '../../protocol/portable/bytes.ts'
import { deviceIdFromBytes } from '../../protocol/portable/device-id.ts'
import { nodeHash } from '../../protocol/node/hash-node.ts'
import { verifyFrame } from '../../protocol/node/verify.ts'
import { repoRoot } from '../helpers/cli.ts'
import { V2Stream } from './helpers/v2-synth.ts'

const SECRET_HEX = '8f0c4a1b2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5a6b7c8d9eafb0c1d2'

t.test('board-built version-2 frames equal Node-built frames byte for byte and verify', async (t) => {
  const deviceId = deviceIdFromBytes(nodeHash, fromHex('0a1b2c3d4e5f60718293'))
  const payloads = [
    new V2Stream({ deviceId, ecgHz: 128, t0: 1_790_000_000_000 }).next(1),
    new V2Stream({ deviceId, ecgHz: 256, t0: 1_790_000_000_000, ppgHz: 0 }).next(2, { ecgLost: 7, over: { rr: [801, 799], faults: 3, hr: { value: 74.3, quality: 88 }, tempC: -250 } }),
    new V2Stream({ deviceId, ecgHz: 512, t0: 1_790_000_000_000, ppgHz: 200 }).next(3),
  ]
  payloads[1]!.flags |= FLAG_RECOVERED
  const wire = payloads.map(({ ecgRaw, ppgRaw, ...rest }) => ({ ...rest, ecgHex: ecgRaw && toHex(ecgRaw), ppgHex: ppgRaw && toHex(ppgRaw) }))
  const out = await esbuild.build({
    entryPoints: [join(repoRoot, 'test/protocol/fixtures/board-encoder-v2.ts')],
    bundle: true, write: false, format: 'iife', target: 'es2015', minify: true, platform: 'neutral',
    // esbuild's own require shim uses Proxy, which Espruino lacks: hand it the board's require.
    define: { require: 'ESPRUINO_REQUIRE', PAYLOADS: JSON.stringify(wire), SECRET_HEX: JSON.stringify(SECRET_HEX) },
    banner: { js: 'var ESPRUINO_REQUIRE=require;' },
  })
  const dir = mkdtempSync(join(tmpdir(), 'mh-proto-v2-board-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const board = new VirtualBoard({ id: 'proto-v2', storagePath: join(dir, 'flash.bin') })
  t.teardown(() => board.close())
  board.load(out.outputFiles[0]!.text)
  const lines = board.console.lines.filter((l: string) => l.startsWith('FRAME '))
  if (lines.length !== payloads.length) t.comment(board.console.lines.slice(-5).join('\n'))
  t.equal(lines.length, payloads.length, 'one line per frame')
  const secret = fromHex(SECRET_HEX)
  for (let i = 0; i < payloads.length; i++) {
    const [, idx, frameHex] = lines[i]!.split(' ')
    t.equal(Number(idx), i)
    const body = new Uint8Array(encodePayloadV2(new CborWriter(64), payloads[i]!))
    t.equal(frameHex, toHex(buildMac0(deviceId, body, hmacSha256(nodeHash, secret, mac0ToBeMaced(deviceId, body)))), `frame ${i} identical`)
    const p = verifyFrame(fromHex(frameHex!), { profile: 'bare', secret }).payload
    t.equal(p.v, 2)
    t.equal(p.ecg!.length, payloads[i]!.ecgRaw!.length / 3)
  }
})
