import { join } from 'node:path'
import { existsSync } from 'node:fs'
import { group, print, type Command } from '../command.ts'
import { parseCli, stringOpt, choiceOpt } from '../args.ts'
import { CliError, UsageError } from '../errors.ts'

async function openRegistry(dir: string, create: boolean) {
  const file = join(dir, 'registry.sqlite')
  if (!create && !existsSync(file)) throw new CliError(`no registry at ${file} (wrong --data?)`)
  const { DeviceRegistry } = await import('../../gateway/registry.ts')
  return new DeviceRegistry(file)
}

function readStdin(): Promise<string> {
  return new Promise((resolve) => {
    let s = ''
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', (d) => (s += d))
    process.stdin.on('end', () => resolve(s))
  })
}

const add: Command = {
  name: 'add',
  summary: 'Add a clinician or admin user (password read from stdin)',
  usage: `Usage: mhealth user add NAME --role clinician|admin [--data DIR] < password

Adds a user to DIR/registry.sqlite (default ./data). The password is the first line of
standard input (at least 8 characters) and is stored as an scrypt hash. Users log in over
MQTT (client ID u:NAME[:suffix], username NAME) and over HTTP (POST /api/login); a
clinician sees a patient's live data only with that patient's consent; an admin user's
session may also use the admin API.`,
  async run(argv, io) {
    const p = parseCli(argv, { role: { type: 'string' }, data: { type: 'string' } }, { min: 1, max: 1, names: ['NAME'] })
    const role = choiceOpt(p, 'role', ['clinician', 'admin'] as const)
    const password = (await readStdin()).split('\n')[0]!.replace(/\r$/, '')
    if (password === '') throw new UsageError('expected the password on standard input')
    const reg = await openRegistry(stringOpt(p, 'data') ?? './data', true)
    try {
      const u = reg.addUser(p.positionals[0]!, role, password)
      print(io, JSON.stringify(u))
    } catch (err) {
      if ((err as Error).name === 'RegistryError') throw new CliError((err as Error).message)
      throw err
    } finally {
      reg.close()
    }
    return 0
  },
}

const list: Command = {
  name: 'list',
  summary: 'List users and roles',
  usage: 'Usage: mhealth user list [--data DIR]',
  async run(argv, io) {
    const p = parseCli(argv, { data: { type: 'string' } })
    const reg = await openRegistry(stringOpt(p, 'data') ?? './data', false)
    try {
      for (const u of reg.listUsers()) print(io, JSON.stringify(u))
    } finally {
      reg.close()
    }
    return 0
  },
}

export const command: Command = group('user', 'Manage clinician and admin users of the gateway', [add, list])
