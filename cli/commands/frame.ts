import { readFileSync, writeFileSync } from 'node:fs'
import { group, print, type Command, type CliIO } from '../command.ts'
import { parseCli, requireOpt, choiceOpt, intOpt } from '../args.ts'
import { CliError, UsageError } from '../errors.ts'
import { deviceKeyArg } from '../key-arg.ts'
import { toHex } from '../../protocol/portable/bytes.ts'

function readFrameFile(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path === '-' ? 0 : path))
  } catch (err) {
    throw new CliError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

/** JSON view of a decoded frame: samples as arrays, bytes as hex. */
function frameJson(f: import('../../protocol/node/decode.ts').DecodedFrame, size: number) {
  const p = f.payload
  return {
    kind: f.kind === 'sign1' ? 'COSE_Sign1' : 'COSE_Mac0',
    alg: f.kind === 'sign1' ? 'ES256' : 'HMAC 256/256',
    kid: f.kid,
    bytes: size,
    payload: { ...p, ecg: p.ecg && Array.from(p.ecg), red: p.red && Array.from(p.red), ir: p.ir && Array.from(p.ir) },
    [f.kind === 'sign1' ? 'signature' : 'tag']: toHex(f.tag),
  }
}

async function frameErrorToCli<T>(fn: () => T): Promise<T> {
  const { FrameError } = await import('../../protocol/node/errors.ts')
  try {
    return fn()
  } catch (err) {
    if (err instanceof FrameError) throw new CliError(`invalid frame (${err.code}): ${err.message}`)
    throw err
  }
}

const decode: Command = {
  name: 'decode',
  summary: 'print a frame as JSON (strict decode, no signature check)',
  usage: `Usage: mhealth frame decode FILE [--annotate]

Strictly decodes a COSE frame (FILE, or - for standard input) and prints it as
JSON; with --annotate, as annotated hex (one line per CBOR head). Exit 1 naming the problem when the frame is malformed. The signature is
not checked: use 'mhealth frame verify'.`,
  async run(argv, io: CliIO) {
    const p = parseCli(argv, { annotate: { type: 'boolean' } }, { min: 1, max: 1, names: ['FILE'] })
    const bytes = readFrameFile(p.positionals[0])
    const { decodeFrame } = await import('../../protocol/node/decode.ts')
    const f = await frameErrorToCli(() => decodeFrame(bytes))
    if (p.values.annotate) {
      const { annotateFrame } = await import('../../protocol/node/annotate.ts')
      print(io, annotateFrame(bytes, f.protectedBytes, f.payloadBytes))
    } else print(io, JSON.stringify(frameJson(f, bytes.length), null, 2))
    return 0
  },
}

const verify: Command = {
  name: 'verify',
  summary: "check a frame's signature or MAC with a device key",
  usage: `Usage: mhealth frame verify FILE --key KEYFILE_OR_HEX [--impl node|noble]

Strictly decodes FILE (or - for standard input) and checks its ES256 signature
or HMAC tag. --key is a key file from 'mhealth keygen', a P-256 public key
(65 bytes hex, 04…) or a bare-profile secret (32 bytes hex).
Exit 0 when valid; exit 1 with the reason when not (a key of another device
is named as such rather than reported as a bad signature).`,
  async run(argv, io) {
    const p = parseCli(argv, { key: { type: 'string' }, impl: { type: 'string' } }, { min: 1, max: 1, names: ['FILE'] })
    const { key, id } = await deviceKeyArg(requireOpt(p, 'key'))
    const impl = choiceOpt(p, 'impl', ['node', 'noble'] as const, 'node')
    const bytes = readFrameFile(p.positionals[0])
    const { verifyFrame } = await import('../../protocol/node/verify.ts')
    const { decodeFrame } = await import('../../protocol/node/decode.ts')
    // "bad signature" would send the user hunting for tampering when they only picked up the wrong key file.
    const { kid } = await frameErrorToCli(() => decodeFrame(bytes))
    if (id !== null && kid !== id) throw new CliError(`wrong key: the frame is from device ${kid}, but this key belongs to another device (${id})`)
    const f = await frameErrorToCli(() => verifyFrame(bytes, key, { impl }))
    print(io, `valid: ${f.kind === 'sign1' ? 'ES256' : 'HMAC'} frame from ${f.kid}, seq ${f.payload.seq}, ${bytes.length} bytes`)
    return 0
  },
}

const make: Command = {
  name: 'make',
  summary: 'build and sign a frame of synthetic samples (for testing tools)',
  usage: `Usage: mhealth frame make --key KEYFILE --out FILE [--seconds N] [--seq N] [--seed S]

Builds a frame with the same portable encoder the firmware runs: N seconds
(1-5, default 1) of synthetic ECG at 250 Hz and PPG at 100 Hz, signed with a
p256 key (COSE_Sign1) or MACed with an hmac key (COSE_Mac0) from
'mhealth keygen'.`,
  async run(argv, io) {
    const p = parseCli(argv, { key: { type: 'string' }, out: { type: 'string' }, seconds: { type: 'string' }, seq: { type: 'string' }, seed: { type: 'string' } })
    const keyPath = requireOpt(p, 'key')
    const out = requireOpt(p, 'out')
    const seconds = intOpt(p, 'seconds', 1, 1, 5)
    const seq = intOpt(p, 'seq', 0, 0)
    const seed = intOpt(p, 'seed', 1, 0, 2 ** 32 - 1)
    const { readKeyFile, KeyFileError } = await import('../../protocol/node/keyfile.ts')
    let key
    try {
      key = readKeyFile(keyPath)
    } catch (err) {
      if (err instanceof KeyFileError) throw new CliError(err.message)
      throw err
    }
    if (key.type === 'ed25519') throw new UsageError('--key must be a device key (p256 or hmac), not ed25519')
    const { syntheticPayload } = await import('../../protocol/node/synthetic.ts')
    const { signFrame } = await import('../../protocol/node/sign.ts')
    const bytes = signFrame(key, syntheticPayload(key.id, { seconds, seq, seed, t0: Date.now() }))
    writeFileSync(out, bytes)
    print(io, `wrote ${out}: ${key.type === 'p256' ? 'COSE_Sign1 ES256' : 'COSE_Mac0 HMAC'} frame, ${seconds} s, seq ${seq}, ${bytes.length} bytes`)
    return 0
  },
}

export const command: Command = group('frame', 'decode, verify and make signed CBOR frames', [decode, verify, make])
