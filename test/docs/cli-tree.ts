/**
 * The real CLI as a tree of command paths, read from the CLI itself: each command's
 * `--help` (a group's "Commands:" list, a command's extra usage forms such as
 * `mhealth sim record`), and which options a command's parser accepts, asked without
 * side effects. Everything runs in this process through cli/main.ts: fast, no spawning.
 */
import { Writable } from 'node:stream'
import { main } from '../../cli/main.ts'

export interface Run {
  code: number
  stdout: string
  stderr: string
}

/** Runs `mhealth ARGV` in this process, capturing its output. */
export async function runInProcess(argv: string[]): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const sink = (append: (s: string) => void): Writable =>
    new Writable({
      write(chunk, _enc, cb) {
        append(String(chunk))
        cb()
      },
    })
  const code = await main(argv, { stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)) })
  return { code, stdout, stderr }
}

export interface CommandNode {
  /** The words after `mhealth` (empty for the top level). */
  path: string[]
  help: Run
  /** A group's subcommands, or a command's usage forms (`sim record`, `sim attack`). */
  children: Map<string, CommandNode>
  /** A group (`mhealth ledger <command>`) takes no options of its own. */
  isGroup: boolean
}

/** The usage forms of a help text: `Usage: mhealth ...` and the `mhealth ...` lines right under it, continuation lines joined. */
export function usageForms(help: string): string[] {
  const lines = help.split('\n')
  const start = lines.findIndex((l) => l.startsWith('Usage: '))
  if (start < 0) return []
  const forms: string[] = []
  for (let i = start; i < lines.length && lines[i]!.trim() !== ''; i++) {
    const l = lines[i]!.replace(/^Usage:/, '').trim()
    if (l.startsWith('mhealth ') || l === 'mhealth') forms.push(l)
    else if (forms.length) forms[forms.length - 1] += ' ' + l
  }
  return forms
}

/** The subcommand names of a group's "Commands:" list. */
function listedCommands(help: string): string[] {
  const m = /\nCommands:\n([\s\S]*?)(\n\s*\n|$)/.exec(help)
  return m ? m[1]!.split('\n').map((l) => l.trim().split(/\s+/)[0]!).filter(Boolean) : []
}

/** The whole command tree, every node's `--help` run once. */
export async function commandTree(path: string[] = [], parentHelp?: string): Promise<CommandNode> {
  const help = await runInProcess([...path, '--help'])
  // A subcommand answering with its parent's help (a nested group whose --help its parent
  // intercepts) has no children of its own to find: stop there, its usage line check fails.
  const listed = help.stdout === parentHelp ? [] : listedCommands(help.stdout)
  const node: CommandNode = { path, help, children: new Map(), isGroup: listed.length > 0 }
  const names = node.isGroup
    ? listed
    : usageForms(help.stdout)
        .map((f) => f.split(/\s+/).slice(1))
        .filter((w) => w.slice(0, path.length).join(' ') === path.join(' ') && /^[a-z][a-z0-9-]*$/.test(w[path.length] ?? ''))
        .map((w) => w[path.length]!)
  for (const name of new Set(names)) {
    const child = await commandTree([...path, name], help.stdout)
    node.children.set(name, child)
  }
  return node
}

export function* allNodes(node: CommandNode): Generator<CommandNode> {
  yield node
  for (const c of node.children.values()) yield* allNodes(c)
}

const PROBE = '--zz-docs-probe'
const accepted = new Map<string, boolean>()

/**
 * Whether the command at `path` accepts `--flag`: runs it as `--flag=x --zz-docs-probe`, so the
 * strict parser (cli/args.ts) stops at one of the two unknown-or-misused options before the
 * command does anything. Throws when the answer is neither (the command did not parse first).
 */
export async function acceptsFlag(path: string[], flag: string): Promise<boolean> {
  if (flag === 'help') return true
  const key = [...path, flag].join(' ')
  const known = accepted.get(key)
  if (known !== undefined) return known
  const r = await runInProcess([...path, `--${flag}=x`, PROBE])
  let ok: boolean
  if (r.code === 2 && r.stderr.includes(`Unknown option '--${flag}'`)) ok = false
  else if (r.code === 2 && (r.stderr.includes(`Unknown option '${PROBE}'`) || r.stderr.includes(`Option '--${flag}' does not take an argument`))) ok = true
  else throw new Error(`mhealth ${key}: probing --${flag} gave exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`)
  accepted.set(key, ok)
  return ok
}
