import { print, type Command } from '../command.ts'
import { parseCli, stringOpt, intOpt } from '../args.ts'

const usage = `Usage: mhealth demo [--data DIR] [--frames N]

Runs the system on its embedded defaults with no board. Today it exercises the
protocol end to end: it provisions one SE-profile and one bare-profile device
(keys under DIR, default ./data/demo), builds N frames each with the same
portable encoder the firmware runs, signs them, then strictly decodes and
verifies every one with both verifiers (node:crypto and @noble).

  --data DIR    where the demo keeps its keys (default ./data/demo)
  --frames N    frames per device (default 5)`

export const command: Command = {
  name: 'demo',
  summary: 'run the system on embedded defaults, no board needed (npm start)',
  usage,
  async run(argv, io) {
    const p = parseCli(argv, { data: { type: 'string' }, frames: { type: 'string' } })
    const dir = stringOpt(p, 'data') ?? 'data/demo'
    const n = intOpt(p, 'frames', 5, 1, 1000)
    const { existsSync, readdirSync } = await import('node:fs')
    const { join } = await import('node:path')
    const { generateKey } = await import('../../protocol/node/keys.ts')
    const { writeKeyFile, readKeyFile } = await import('../../protocol/node/keyfile.ts')
    const { signFrame } = await import('../../protocol/node/sign.ts')
    const { verifyFrame } = await import('../../protocol/node/verify.ts')
    const { syntheticPayload } = await import('../../protocol/node/synthetic.ts')

    const keyOf = (type: 'p256' | 'hmac') => {
      const existing = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.key.json')).map((f) => readKeyFile(join(dir, f))).find((k) => k.type === type) : undefined
      if (existing) return existing
      const k = generateKey(type)
      writeKeyFile(dir, k)
      return k
    }
    for (const type of ['p256', 'hmac'] as const) {
      const key = keyOf(type)
      if (key.type === 'ed25519') continue
      const dk = key.type === 'p256' ? ({ profile: 'se', publicKey: key.publicKey } as const) : ({ profile: 'bare', secret: key.secret } as const)
      let bytes = 0
      for (let seq = 0; seq < n; seq++) {
        const frame = signFrame(key, syntheticPayload(key.id, { seconds: 1, seq, seed: 1, t0: Date.now() }))
        for (const impl of ['node', 'noble'] as const) verifyFrame(frame, dk, { impl })
        bytes += frame.length
      }
      print(io, `${type === 'p256' ? 'SE  ' : 'bare'} device ${key.id}: ${n} frames signed (${type === 'p256' ? 'COSE_Sign1 ES256' : 'COSE_Mac0 HMAC'}), strictly decoded and verified by node:crypto and @noble; ${Math.round(bytes / n)} bytes per 1 s frame`)
    }
    print(io, `keys in ${dir}`)
    return 0
  },
}
