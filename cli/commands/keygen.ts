import { print, type Command } from '../command.ts'
import { parseCli, requireOpt, choiceOpt } from '../args.ts'
import { CliError } from '../errors.ts'

const usage = `Usage: mhealth keygen --type ed25519|p256|hmac --out DIR

Creates a key and writes it to DIR/<id>.key.json (mode 0600), then prints
{id, type, publicKey} as JSON.

  --type T    ed25519  gateways (ledger producer), patients, clinicians
              p256     a device key (normally inside the ATECC608; use for tests)
              hmac     a bare-profile device secret (32 bytes) with a fresh device ID
  --out DIR   directory for the key file (created if missing)`

export const command: Command = {
  name: 'keygen',
  summary: 'create an Ed25519, P-256 or HMAC key file',
  usage,
  async run(argv, io) {
    const p = parseCli(argv, { type: { type: 'string' }, out: { type: 'string' } })
    const type = choiceOpt(p, 'type', ['ed25519', 'p256', 'hmac'] as const)
    const out = requireOpt(p, 'out')
    const { generateKey } = await import('../../protocol/node/keys.ts')
    const { writeKeyFile, publicInfo, KeyFileError } = await import('../../protocol/node/keyfile.ts')
    const key = generateKey(type)
    try {
      const file = writeKeyFile(out, key)
      print(io, JSON.stringify({ ...publicInfo(key), file }))
    } catch (err) {
      if (err instanceof KeyFileError) throw new CliError(err.message)
      throw err
    }
    return 0
  },
}
