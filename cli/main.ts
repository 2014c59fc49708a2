import { readdir } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { dirname, join } from 'node:path'
import { print, type CliIO, type Command } from './command.ts'
import { UsageError } from './errors.ts'
import { reportError, runCommand } from './run-command.ts'

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
  if (!cmd) return reportError(new UsageError(`unknown command '${name}'; expected one of: ${cmds.map((c) => c.name).join(', ')}`), undefined, io)
  return runCommand(cmd, rest, io)
}
