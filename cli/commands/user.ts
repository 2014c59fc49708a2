import { join } from 'node:path'
import { existsSync } from 'node:fs'
import { group, print, type Command } from '../command.ts'
import { parseCli, stringOpt, choiceOpt } from '../args.ts'
import { CliError } from '../errors.ts'
import { readNewPassword } from '../password-prompt.ts'

async function openRegistry(dir: string, create: boolean) {
  const file = join(dir, 'registry.sqlite')
  if (!create && !existsSync(file)) throw new CliError(`no registry at ${file} (wrong --data?)`)
  const { DeviceRegistry } = await import('../../gateway/registry.ts')
  return new DeviceRegistry(file)
}

/** Runs `fn` on the registry, a RegistryError (unknown user, short password...) becoming exit 1. */
async function withRegistry<T>(dir: string, create: boolean, fn: (reg: Awaited<ReturnType<typeof openRegistry>>) => T): Promise<T> {
  const reg = await openRegistry(dir, create)
  try {
    return fn(reg)
  } catch (err) {
    if ((err as Error).name === 'RegistryError') throw new CliError((err as Error).message)
    throw err
  } finally {
    reg.close()
  }
}

const RUNNING = 'A running gateway on the same --data ends their sessions (API tokens, dashboard logins) within a second.'

const add: Command = {
  name: 'add',
  summary: 'Add a clinician or admin user (password prompted at a terminal, else read from stdin)',
  usage: `Usage: mhealth user add NAME --role clinician|admin [--data DIR] [< password]

Adds a user to DIR/registry.sqlite (default ./data). At a terminal the password is asked
twice, not echoed; otherwise it is the first line of standard input. At least 8 characters,
stored as an scrypt hash. Users log in over MQTT (client ID u:NAME[:suffix], username NAME)
and over HTTP (POST /api/login, the dashboard); a clinician sees a patient's live data only
with that patient's consent; an admin user's session may also use the admin API.`,
  async run(argv, io) {
    const p = parseCli(argv, { role: { type: 'string' }, data: { type: 'string' } }, { min: 1, max: 1, names: ['NAME'] })
    const role = choiceOpt(p, 'role', ['clinician', 'admin'] as const)
    const password = await readNewPassword()
    const u = await withRegistry(stringOpt(p, 'data') ?? './data', true, (reg) => reg.addUser(p.positionals[0]!, role, password))
    print(io, JSON.stringify(u))
    return 0
  },
}

const del: Command = {
  name: 'delete',
  summary: 'Delete a user',
  usage: `Usage: mhealth user delete NAME [--data DIR]

Removes the user from DIR/registry.sqlite. ${RUNNING}`,
  async run(argv, io) {
    const p = parseCli(argv, { data: { type: 'string' } }, { min: 1, max: 1, names: ['NAME'] })
    const name = p.positionals[0]!
    await withRegistry(stringOpt(p, 'data') ?? './data', false, (reg) => reg.deleteUser(name))
    print(io, JSON.stringify({ username: name, deleted: true }))
    return 0
  },
}

const passwd: Command = {
  name: 'passwd',
  summary: "Set a user's password (prompted at a terminal, else read from stdin)",
  usage: `Usage: mhealth user passwd NAME [--data DIR] [< password]

Sets a new password: asked twice without echo at a terminal, else the first line of
standard input. ${RUNNING}`,
  async run(argv, io) {
    const p = parseCli(argv, { data: { type: 'string' } }, { min: 1, max: 1, names: ['NAME'] })
    const dir = stringOpt(p, 'data') ?? './data'
    const name = p.positionals[0]!
    // Unknown user or no registry: say so before asking for a password.
    await withRegistry(dir, false, (reg) => {
      if (!reg.listUsers().some((u) => u.username === name)) throw new CliError(`user ${name} does not exist`)
    })
    const password = await readNewPassword()
    await withRegistry(dir, false, (reg) => reg.setPassword(name, password))
    print(io, JSON.stringify({ username: name, passwordSet: true }))
    return 0
  },
}

const role: Command = {
  name: 'role',
  summary: "Change a user's role",
  usage: `Usage: mhealth user role NAME --role clinician|admin [--data DIR]

${RUNNING}`,
  async run(argv, io) {
    const p = parseCli(argv, { role: { type: 'string' }, data: { type: 'string' } }, { min: 1, max: 1, names: ['NAME'] })
    const r = choiceOpt(p, 'role', ['clinician', 'admin'] as const)
    const u = await withRegistry(stringOpt(p, 'data') ?? './data', false, (reg) => reg.setRole(p.positionals[0]!, r))
    print(io, JSON.stringify(u))
    return 0
  },
}

const list: Command = {
  name: 'list',
  summary: 'List users and roles',
  usage: 'Usage: mhealth user list [--data DIR]',
  async run(argv, io) {
    const p = parseCli(argv, { data: { type: 'string' } })
    const users = await withRegistry(stringOpt(p, 'data') ?? './data', false, (reg) => reg.listUsers())
    for (const u of users) print(io, JSON.stringify(u))
    return 0
  },
}

export const command: Command = group('user', 'Manage clinician and admin users of the gateway', [add, list, del, passwd, role])
