/**
 * The docs and the CLI's own help say only what the CLI does (issue 13, item 13).
 *
 * Every command and subcommand is found from the CLI itself (cli/commands/*.ts, groups'
 * "Commands:" lists, usage forms like `mhealth sim record`), so a new command is covered
 * without touching this file; no command is required to be documented. What is written
 * must run: every `mhealth ...` in README.md and docs/*.md, in a help text's usage lines,
 * option lists and prose names a real command path, and each `--flag` it uses is accepted
 * by that command's parser; every `npm ...` names a script of package.json; every relative
 * link and every path into the checkout exists.
 */
import t, { type Test } from 'tap'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { repoRoot } from '../helpers/cli.ts'
import { defaults } from '../../gateway/config.ts'
import { allNodes, acceptsFlag, commandTree, runInProcess, usageForms, type CommandNode } from './cli-tree.ts'
import { codeTexts, invocations, npmRefs, relativeLinks, repoPaths, type Invocation, type Where } from './doc-refs.ts'

/** Commands documented ahead of the branch that adds them: checked in full once they exist. */
const PENDING: Record<string, string> = {}

const docFiles = ['README.md', ...readdirSync(join(repoRoot, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)]
const docs = docFiles.map((file) => ({ file, text: readFileSync(join(repoRoot, file), 'utf8') }))
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }

const at = (w: Where): string => `${w.file}:${w.line}`

/** `--flag` names used in synopsis words (`[--data`, `(--key`, `--out=F`, `--json]`). */
function flagsOf(words: string[]): string[] {
  const out: string[] = []
  for (const w of words) for (const m of w.matchAll(/(?:^|[[(|])--([a-z0-9][a-z0-9-]*)/g)) out.push(m[1]!)
  return [...new Set(out)]
}

/**
 * The problems of one invocation: its command path must exist (a word `a|b|c` at a command
 * position stands for each), and each of its flags must be accepted by the command it reaches.
 */
async function problems(root: CommandNode, words: string[]): Promise<string[]> {
  if (words[0] === '--help' || words[0] === '-h' || words[0] === '--version' || words[0]?.startsWith('<')) return []
  const out: string[] = []
  const walk = async (node: CommandNode, rest: string[]): Promise<void> => {
    const word = rest[0]
    const alternatives = word?.split('|') ?? []
    const isCommandWord = word !== undefined && alternatives.every((a) => /^[a-z][a-z0-9-]*$/.test(a))
    const found = alternatives.filter((a) => node.children.has(a))
    if (isCommandWord && found.length === alternatives.length) {
      for (const a of found) await walk(node.children.get(a)!, rest.slice(1))
      return
    }
    const name = `mhealth ${node.path.join(' ')}`.trim()
    if (node.path.length === 0 || (node.isGroup && isCommandWord)) {
      const missing = alternatives.filter((a) => !node.children.has(a))
      out.push(`no command '${name} ${missing.join('|')}' (${name} has: ${[...node.children.keys()].join(', ')})`)
      return
    }
    for (const flag of flagsOf(rest)) {
      if (node.isGroup ? flag !== 'help' : !(await acceptsFlag(node.path, flag))) out.push(`'${name}' does not accept --${flag}`)
    }
  }
  await walk(root, words)
  return out
}

const root = await commandTree()
const nodes = [...allNodes(root)]

function pending(words: string[]): string | undefined {
  return root.children.has(words[0]!) ? undefined : PENDING[words[0]!]
}

async function checkInvocation(t: Test, inv: Invocation): Promise<void> {
  const why = pending(inv.words)
  if (why) return void t.pass(`${at(inv)}: \`${inv.text}\``, { skip: why })
  const found = await problems(root, inv.words)
  t.same(found, [], `${at(inv)}: \`${inv.text}\``)
}

t.test('every command and subcommand answers --help with a usage line naming it', async (t) => {
  t.ok(nodes.length > 40, `found ${nodes.length} command paths`)
  for (const n of nodes) {
    const name = ['mhealth', ...n.path].join(' ')
    t.equal(n.help.code, 0, `${name} --help exits 0`)
    t.equal(n.help.stderr, '', `${name} --help writes nothing on stderr`)
    const first = n.help.stdout.split('\n')[0]!
    t.ok(first.startsWith(`Usage: ${name} `) || first === `Usage: ${name}`, `${name} --help starts with 'Usage: ${name}': ${first}`)
  }
})

t.test("every usage form, option line and `mhealth ...` in a command's help is runnable", async (t) => {
  for (const n of nodes) {
    const name = ['mhealth', ...n.path].join(' ')
    const help = n.help.stdout
    for (const form of usageForms(help)) {
      const words = form.split(/\s+/).slice(1)
      if (words[0] === '<command>') continue
      t.same(await problems(root, words), [], `${name} --help usage: ${form}`)
    }
    // Options listed in the help (`  --data DIR   ...`) are this command's own.
    if (!n.isGroup) {
      for (const m of help.matchAll(/^\s{2,}--([a-z0-9][a-z0-9-]*)/gm)) {
        t.ok(await acceptsFlag(n.path, m[1]!), `${name} --help lists --${m[1]}, which ${name} accepts`)
      }
    }
    // Commands quoted in the prose (`mhealth gateway --peer-port N`, 'mhealth consent post') or
    // given on a line of their own below the usage.
    const prose = help.split('\n').slice(help.split('\n').findIndex((l) => l.trim() === '')).join('\n')
    const quoted = prose.replace(/'(mhealth [^']*)'/g, '`$1`').replace(/^\s+(mhealth \S.*)$/gm, '`$1`')
    const texts = codeTexts(quoted, `${name} --help`)
    for (const inv of invocations('', '', texts)) await checkInvocation(t, inv)
  }
})

t.test('the help of commands that talk to a gateway gives its HTTP API port as the example', async (t) => {
  for (const n of nodes) {
    for (const m of n.help.stdout.matchAll(/^\s*--(gateway|url) URL\b.*$/gm)) {
      for (const port of m[0].matchAll(/https?:\/\/[^\s:/)]+:(\d+)/g)) {
        t.equal(Number(port[1]), defaults.httpPort, `mhealth ${n.path.join(' ')} --help: ${m[0].trim()}`)
      }
    }
  }
  const gw = root.children.get('gateway')!.help.stdout
  const ports: Record<string, number> = { 'mqtt-port': defaults.mqttPort as number, 'mqtts-port': defaults.mqttsPort as number, 'ws-port': defaults.wsPort as number, 'http-port': defaults.httpPort as number }
  for (const [flag, port] of Object.entries(ports)) {
    const line = new RegExp(`^\\s*--${flag} N\\b.*\\(default (\\d+)`, 'm').exec(gw)
    t.equal(Number(line?.[1]), port, `mhealth gateway --help gives --${flag}'s default as gateway/config.ts does`)
  }
})

t.test('every `mhealth ...` in README.md and docs/*.md names a real command and real flags', async (t) => {
  let count = 0
  for (const d of docs) {
    for (const inv of invocations(d.text, d.file)) {
      count++
      await checkInvocation(t, inv)
    }
  }
  t.ok(count > 50, `${count} documented invocations checked`)
})

t.test('package.json scripts that run the CLI name real commands', async (t) => {
  for (const [name, script] of Object.entries(pkg.scripts)) {
    const m = /^node bin\/mhealth\.js(?:\s+(.*))?$/.exec(script)
    if (!m) continue
    const words = (m[1] ?? '').split(/\s+/).filter(Boolean)
    t.same(await problems(root, words), [], `npm run ${name}: ${script}`)
  }
})

t.test('every `npm ...` in README.md and docs/*.md names a script of package.json, with real arguments', async (t) => {
  for (const d of docs) {
    for (const ref of npmRefs(d.text, d.file)) {
      const script = pkg.scripts[ref.script]
      if (!t.ok(script, `${at(ref)}: \`${ref.text}\`: package.json has a script '${ref.script}'`)) continue
      const cli = /^node bin\/mhealth\.js(?:\s+(.*))?$/.exec(script!)
      if (cli) {
        const words = [...(cli[1] ?? '').split(/\s+/).filter(Boolean), ...ref.args]
        t.same(await problems(root, words), [], `${at(ref)}: \`${ref.text}\` runs mhealth ${words.join(' ')}`)
      }
      for (const a of ref.args.filter((a) => a.includes('/') && !/[<>A-Z]/.test(a))) t.ok(existsSync(join(repoRoot, a)), `${at(ref)}: \`${ref.text}\`: ${a} exists`)
    }
  }
})

t.test('every relative link and every path into the checkout in README.md and docs/*.md exists', async (t) => {
  for (const d of docs) {
    for (const link of relativeLinks(d.text, d.file)) {
      const target = resolve(repoRoot, dirname(d.file), link.path)
      t.ok(existsSync(target), `${at(link)}: link to ${link.path} (${relative(repoRoot, target)}) exists`)
    }
    for (const p of repoPaths(d.text, d.file)) t.ok(existsSync(join(repoRoot, p.path)), `${at(p)}: ${p.path} exists`)
  }
})

t.test('every page of docs/ is named by README.md or another page, so a reader can find it', async (t) => {
  for (const d of docs.filter((d) => d.file.startsWith('docs/'))) {
    const name = d.file.slice('docs/'.length)
    const from = docs.filter((o) => o.file !== d.file && (o.text.includes(d.file) || (o.file.startsWith('docs/') && new RegExp(`\\]\\(\\.?/?${name.replace('.', '\\.')}[)#]`).test(o.text))))
    t.ok(from.length > 0, `${d.file} is linked or named from ${from.map((o) => o.file).join(', ') || 'nowhere'}`)
  }
})

t.test('the systemd unit has every setting the docs say it has', async (t) => {
  const r = await runInProcess(['service', 'unit'])
  t.equal(r.code, 0, `mhealth service unit: ${r.stderr}`)
  const unit = new Set(r.stdout.split('\n').map((l) => l.trim()))
  const gateway = docs.find((d) => d.file === 'docs/gateway.md')!.text
  const section = gateway.slice(gateway.indexOf('## Running as a service'), gateway.indexOf('\n## ', gateway.indexOf('## Running as a service') + 1))
  const settings = [...section.matchAll(/`([A-Z][A-Za-z]+=[^`]+)`/g)].map((m) => m[1]!)
  t.ok(settings.length >= 5, `docs/gateway.md "Running as a service" names ${settings.length} settings`)
  // gateway-scale.md's memory setting for a Pi, which it says the unit sets.
  const scale = docs.find((d) => d.file === 'docs/gateway-scale.md')!.text
  const memory = /`(NODE_OPTIONS=[^`]+)`[^`]*the systemd unit/.exec(scale)
  if (memory) settings.push(`Environment=${memory[1]}`)
  for (const s of settings) t.ok(unit.has(s), `the unit of \`mhealth service unit\` has ${s}`)
})
