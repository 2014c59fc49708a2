import { readdir } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { dirname, join } from 'node:path'
import { print, type CliIO, type Command } from './command.ts'
import { CliError, UsageError } from './errors.ts'

const commandsDir = join(dirname(fileURLToPath(import.meta.url)), 'commands')

async function loadCommands(): Promise<Command[]> {
  const files = (await readdir(commandsDir)).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).sort()
  const mods = await Promise.all(files.map((f) => import(pathToFileURL(join(commandsDir, f)).href)))
  return mods.map((m) => m.command as Command).filter(Boolean)
}

function topUsage(cmds: Command[]): string {
  const width = Math.max(...cmds.map((c) => c.name.length))
  return [
    'Usage: mhealth <command> [options]',
    '',
    'Open mHealth IoT toolkit: firmware, gateway, ledger and hardware simulator.',
    '',
    'Commands:',
    ...cmds.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run 'mhealth <command> --help' for a command's options.",
  ].join('\n')
}

/** Runs the CLI; returns the exit code (0 ok, 1 failure, 2 usage error). */
export async function main(argv: string[], io: CliIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const cmds = await loadCommands()
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    print(io, topUsage(cmds))
    return name === undefined ? 2 : 0
  }
  if (name === '--version') {
    print(io, '0.1.0')
    return 0
  }
  const cmd = cmds.find((c) => c.name === name)
  try {
    if (!cmd) throw new UsageError(`unknown command '${name}'; expected one of: ${cmds.map((c) => c.name).join(', ')}`)
    if (rest[0] === '--help' || rest[0] === '-h') {
      print(io, cmd.usage)
      return 0
    }
    return await cmd.run(rest, io)
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`mhealth: ${err.message}\nRun 'mhealth ${cmd ? cmd.name + ' ' : ''}--help' for usage.\n`)
      return 2
    }
    if (err instanceof CliError) {
      io.stderr.write(`mhealth: ${err.message}\n`)
      return err.code
    }
    const e = err as NodeJS.ErrnoException
    if (e && e.code && typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) {
      // File-system and socket errors are user-facing: say what and where, no stack.
      io.stderr.write(`mhealth: ${e.message}\n`)
      return 1
    }
    io.stderr.write(`mhealth: internal error: ${e?.message ?? String(err)}\n`)
    if (process.env.MHEALTH_DEBUG) io.stderr.write(String(e?.stack) + '\n')
    return 1
  }
}
