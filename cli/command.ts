import type { Writable } from 'node:stream'
import { UsageError } from './errors.ts'

export interface CliIO {
  stdout: Writable
  stderr: Writable
}

/**
 * One `mhealth` command. Files in cli/commands/ export `command: Command`;
 * the dispatcher discovers them, so adding a command touches no shared registry.
 * Heavy dependencies belong inside `run` (dynamic import) to keep `--help` fast.
 */
export interface Command {
  name: string
  summary: string
  /** Full help text printed by `--help`. */
  usage: string
  run(argv: string[], io: CliIO): Promise<number>
  /** A group's subcommands (`group()`): a nested group answers its own subcommands' --help. */
  subcommands?: Command[]
}

export const wantsHelp = (argv: string[]): boolean => argv.includes('--help') || argv.includes('-h')

export function print(io: CliIO, text: string): void {
  io.stdout.write(text.endsWith('\n') ? text : text + '\n')
}

/**
 * A command made of subcommands (`mhealth frame decode`, `mhealth ledger verify`, ...). A group
 * inside a group (`mhealth ppg calibration install`) names its parent in `parent`.
 */
export function group(name: string, summary: string, subs: Command[], parent?: string): Command {
  const width = Math.max(...subs.map((s) => s.name.length))
  const path = parent ? `${parent} ${name}` : name
  const usage = [
    `Usage: mhealth ${path} <command> [options]`,
    '',
    summary,
    '',
    'Commands:',
    ...subs.map((s) => `  ${s.name.padEnd(width)}  ${s.summary}`),
    '',
    `Run 'mhealth ${path} <command> --help' for a command's options.`,
  ].join('\n')
  return {
    name,
    summary,
    usage,
    subcommands: subs,
    async run(argv, io) {
      const [sub, ...rest] = argv
      if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
        print(io, usage)
        return sub === undefined ? 2 : 0
      }
      const found = subs.find((s) => s.name === sub)
      if (!found) throw new UsageError(`unknown command '${path} ${sub}'; expected one of: ${subs.map((s) => s.name).join(', ')}`)
      if (found.subcommands && rest.length > 0 && !rest[0].startsWith('-')) return found.run(rest, io)
      if (wantsHelp(rest)) {
        print(io, found.usage)
        return 0
      }
      return found.run(rest, io)
    },
  }
}

/** Resolves at the first SIGINT (Ctrl-C) or SIGTERM, for long-running commands that then shut down cleanly. */
export function untilStopSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      resolve()
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
}
