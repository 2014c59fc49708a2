import { join } from 'node:path'
import { existsSync } from 'node:fs'
import { group, print, type Command } from '../command.ts'
import { parseCli, stringOpt } from '../args.ts'
import { CliError } from '../errors.ts'

const rotate: Command = {
  name: 'rotate',
  summary: 'Replace the HTTP admin token with a new random one',
  usage: `Usage: mhealth admin-token rotate [--data DIR]

Writes a new random token to DIR/admin.token (mode 0600, default ./data) and prints it.
The old token stops working at once, also on a gateway already running on DIR (it re-reads
the file when it changes): update every script and tool that used it. An admin can do the
same over HTTP: POST /api/admin-token/rotate answers {"token": ...}.`,
  async run(argv, io) {
    const p = parseCli(argv, { data: { type: 'string' } })
    const file = join(stringOpt(p, 'data') ?? './data', 'admin.token')
    // A token in a directory no gateway uses would be a silent no-op: the gateway makes the first one.
    if (!existsSync(file)) throw new CliError(`no admin token at ${file} (wrong --data? a gateway makes it on its first start)`)
    const { rotateAdminToken } = await import('../../gateway/admin-token.ts')
    print(io, rotateAdminToken(file))
    return 0
  },
}

export const command: Command = group('admin-token', "Manage the gateway's HTTP admin token", [rotate])
