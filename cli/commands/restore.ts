import { existsSync, readdirSync, renameSync } from 'node:fs'
import { resolve } from 'node:path'
import { print, type Command } from '../command.ts'
import { parseCli, requireOpt } from '../args.ts'
import { CliError } from '../errors.ts'

export const command: Command = {
  name: 'restore',
  summary: "Restore a gateway's data directory from a 'mhealth backup' archive",
  usage: `Usage: mhealth restore --from FILE --data DIR [--force]

Checks the archive FILE whole (gzip and tar checksums, every file's SHA-256 against its
manifest, the ledger verifying) and restores it into DIR (directories 0700, files 0600).
DIR must be missing or empty; with --force a non-empty DIR is moved aside to
DIR.replaced-<time> first (refused while a gateway runs on it). Start the gateway on DIR:
it rebuilds the ledger index and continues the same chain with the same key.`,
  async run(argv, io) {
    const p = parseCli(argv, { from: { type: 'string' }, data: { type: 'string' }, force: { type: 'boolean' } })
    const from = requireOpt(p, 'from')
    const dest = resolve(requireOpt(p, 'data'))
    if (!existsSync(from)) throw new CliError(`cannot read ${from}: ENOENT`)
    const { openBackup, restoreBackup, BackupError } = await import('../../gateway/backup.ts')
    try {
      // Check the archive before anything in DIR is moved.
      await openBackup(from, from)
      if (existsSync(dest) && readdirSync(dest).length > 0) {
        if (!p.values.force) throw new CliError(`${dest} is not empty; restore into a new directory, or give --force to move it aside first`)
        const { acquireDirLock, describeHolder, DirLockBusy } = await import('../../ledger/dir-lock.ts')
        try {
          acquireDirLock(dest).release()
        } catch (e) {
          if (e instanceof DirLockBusy) throw new CliError(`data directory ${dest} is in use by ${describeHolder(e.holder)}; stop it before restoring over it`)
          throw e
        }
        const aside = `${dest}.replaced-${new Date().toISOString().replace(/[:.]/g, '-')}`
        renameSync(dest, aside)
        print(io, `moved the existing ${dest} to ${aside}`)
      }
      const r = await restoreBackup(from, from, dest)
      const v = r.verify
      print(io, `restored ${r.files} files into ${dest} (backup of ${r.manifest.createdAt}${r.manifest.gatewayId ? `, gateway ${r.manifest.gatewayId}` : ''})`)
      print(io, `ledger verifies: ${v.blocks} blocks, ${v.leaves} leaves (${v.frames} frames)${v.head ? `, head block ${v.head.height} ${v.head.hash}` : ''}`)
      return 0
    } catch (e) {
      if (e instanceof BackupError) throw new CliError(e.message)
      throw e
    }
  },
}
