import { print, type CliIO, type Command } from './command.ts'
import { CliError, UsageError } from './errors.ts'

/**
 * Runs one command with the CLI's conventions: `--help` prints its usage, usage errors exit 2
 * with a pointer to `--help`, CLI and file/socket errors exit 1 with one line and no stack.
 * Shared by the full CLI and the gateway's bundled entry (cli/gateway-entry.ts).
 */
export async function runCommand(cmd: Command, argv: string[], io: CliIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  try {
    if (argv[0] === '--help' || argv[0] === '-h') {
      print(io, cmd.usage)
      return 0
    }
    return await cmd.run(argv, io)
  } catch (err) {
    return reportError(err, cmd, io)
  }
}

/** The exit code for an error, after saying it on stderr the way the CLI does. */
export function reportError(err: unknown, cmd: Command | undefined, io: CliIO): number {
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
