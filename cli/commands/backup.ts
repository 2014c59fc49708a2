import { existsSync } from 'node:fs'
import { print, type Command } from '../command.ts'
import { parseCli, requireOpt, stringOpt } from '../args.ts'
import { CliError } from '../errors.ts'

export const command: Command = {
  name: 'backup',
  summary: "Back up a gateway's data directory into one archive, while it runs",
  usage: `Usage: mhealth backup --data DIR --out FILE [--config CONFIG]

Writes one archive FILE (.tar.gz, mode 0600) of the gateway data directory DIR, safe while
the gateway runs: an online SQLite backup of registry.sqlite (devices, users), the ledger
up to its last complete block (a half-written tail is never copied), gateway.key (the
ledger producer key), admin.token and tls/, and CONFIG (your --config file) if given.
The ledger index is left out: the restored gateway rebuilds it. The ledger snapshot is
verified before the archive is written; MANIFEST.json inside lists every file's SHA-256.
The archive holds secrets (keys, password hashes, patient data): store it like DIR.

Restore with 'mhealth restore --from FILE --data NEWDIR'.`,
  async run(argv, io) {
    const p = parseCli(argv, { data: { type: 'string' }, out: { type: 'string' }, config: { type: 'string' } })
    const data = requireOpt(p, 'data')
    const out = requireOpt(p, 'out')
    if (!existsSync(data)) throw new CliError(`no gateway data directory at ${data}`)
    const { makeBackup, BackupError } = await import('../../gateway/backup.ts')
    let r
    try {
      r = await makeBackup(data, out, { configFile: stringOpt(p, 'config') })
    } catch (e) {
      if (e instanceof BackupError) throw new CliError(e.message)
      throw e
    }
    const l = r.manifest.ledger
    print(io, `wrote ${out}: ${Object.keys(r.manifest.files).length} files, ${r.bytes} bytes`)
    print(io, `ledger: ${l.blocks} blocks, ${l.leaves} leaves (${r.verify.frames} frames)${l.head ? `, head block ${l.blocks - 1} ${l.head}` : ''}`)
    return 0
  },
}
