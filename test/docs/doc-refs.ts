/**
 * What a Markdown page (or a command's help text) tells a reader to run: `mhealth ...`
 * invocations, `npm ...` commands, relative links and repository paths. Pure text in,
 * located references out; test/docs/cli-docs.test.ts checks them against the real CLI.
 */

export interface Where {
  file: string
  line: number
}

/** One `mhealth` invocation: the words after `mhealth`, as written (synopsis brackets and all). */
export interface Invocation extends Where {
  text: string
  words: string[]
}

export interface NpmRef extends Where {
  text: string
  /** `test`, `start` or the name after `npm run`. */
  script: string
  /** The words after `--`. */
  args: string[]
}

export interface PathRef extends Where {
  path: string
}

/** A piece of text that is code: a fenced block's logical line or an inline code span. */
interface CodeText extends Where {
  text: string
}

const FENCE = /^\s*(```|~~~)/

/** Fenced-block lines (with `\` continuations joined, comments cut) and inline code spans, each with its line. */
export function codeTexts(markdown: string, file: string): CodeText[] {
  const out: CodeText[] = []
  const lines = markdown.split('\n')
  let prose: { text: string; line: number }[] = []
  let inFence = false
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (FENCE.test(line)) {
      inFence = !inFence
      continue
    }
    if (!inFence) {
      prose.push({ text: line, line: i + 1 })
      continue
    }
    let text = line
    const first = i + 1
    // A `\` continuation, or an indented synopsis line (`    [--port N] ...`) under a command.
    const continues = (next: string | undefined): boolean => next !== undefined && !FENCE.test(next) && (/\\\s*$/.test(text) || /^\s+(\[|\(|--|\|)/.test(next))
    while (continues(lines[i + 1])) text = cutComment(text).replace(/\\\s*$/, '') + ' ' + lines[++i]!
    out.push({ file, line: first, text: cutComment(text).replace(/^\s*\$\s+/, '') })
  }
  out.push(...inlineSpans(prose, file))
  return out
}

/** A shell comment starts at a `#` that begins a word. */
function cutComment(text: string): string {
  const m = /(^|\s)#/.exec(text)
  return m ? text.slice(0, m.index) : text
}

/** Inline code spans (which may wrap across lines) of the prose lines; `\|` in tables is a plain `|`. */
function inlineSpans(prose: { text: string; line: number }[], file: string): CodeText[] {
  const out: CodeText[] = []
  const joined = prose.map((p) => p.text).join('\n')
  const lineAt = (offset: number): number => prose[joined.slice(0, offset).split('\n').length - 1]?.line ?? 0
  for (const m of joined.matchAll(/(`+)([\s\S]+?)\1/g)) {
    if (m[2]!.includes('\n\n')) continue // an unpaired backtick, not a span across paragraphs
    out.push({ file, line: lineAt(m.index!), text: m[2]!.replace(/\s*\n\s*/g, ' ').replace(/\\\|/g, '|').trim() })
  }
  return out
}

/**
 * Shell words, quotes removed; `&&`, `||`, `;`, `&`, `$(`, `)` and a pipe end a command. A `|`
 * inside synopsis brackets (`[--data DIR | --url URL]`, `(--key F | --profile se)`) is not a pipe.
 */
function commands(text: string): string[][] {
  const out: string[][] = []
  let cur: string[] = []
  let word = ''
  let depth = 0
  const endWord = (): void => {
    if (word) cur.push(word)
    word = ''
  }
  const endCommand = (): void => {
    endWord()
    if (cur.length) out.push(cur)
    cur = []
  }
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!
    const two = text.slice(i, i + 2)
    if (ch === "'" || ch === '"') {
      const close = text.indexOf(ch, i + 1)
      if (close > i) {
        word += text.slice(i + 1, close)
        i = close
        continue
      }
    }
    if (two === '$(') {
      endCommand()
      i++
    } else if (depth === 0 && (two === '&&' || two === '||')) {
      endCommand()
      i++
    } else if (depth === 0 && (ch === ';' || (ch === '&' && text[i - 1] !== '>') || ch === ')')) endCommand()
    else if (depth === 0 && ch === '|' && /\s/.test(text[i - 1] ?? ' ') && /\s/.test(text[i + 1] ?? ' ')) endCommand()
    else if (/\s/.test(ch)) endWord()
    else {
      if (ch === '[' || ch === '(') depth++
      if ((ch === ']' || ch === ')') && depth > 0) depth--
      word += ch
    }
  }
  endCommand()
  return out
}

/** Words that may come before the program in a shell command. */
const isPrefix = (w: string): boolean => /^[A-Z_][A-Z0-9_]*=/.test(w) || ['sudo', 'exec', 'time', 'npx', 'node', '$'].includes(w)
const isMhealth = (w: string): boolean => w === 'mhealth' || /(^|\/)bin\/mhealth\.js$/.test(w)

/** Every `mhealth ...` invocation in the code of a Markdown page (a bare `mhealth` names no command and is left out). */
export function invocations(markdown: string, file: string, texts = codeTexts(markdown, file)): Invocation[] {
  const out: Invocation[] = []
  for (const c of texts) {
    for (const words of commands(c.text)) {
      let i = 0
      while (i < words.length && isPrefix(words[i]!) && !isMhealth(words[i]!)) i++
      if (i >= words.length || !isMhealth(words[i]!) || i + 1 >= words.length) continue
      out.push({ file: c.file, line: c.line, text: words.slice(i).join(' '), words: words.slice(i + 1) })
    }
  }
  return out
}

/** Every `npm test|start|run X [-- ARGS]` in the code of a Markdown page. */
export function npmRefs(markdown: string, file: string, texts = codeTexts(markdown, file)): NpmRef[] {
  const out: NpmRef[] = []
  for (const c of texts) {
    for (const words of commands(c.text)) {
      const i = words.indexOf('npm')
      if (i < 0) continue
      const verb = words[i + 1]
      let script: string | undefined
      let rest: string[]
      if (verb === 'test' || verb === 'start' || verb === 't') (script = verb === 't' ? 'test' : verb), (rest = words.slice(i + 2))
      else if (verb === 'run' || verb === 'run-script') (script = words[i + 2]), (rest = words.slice(i + 3))
      else continue
      if (!script) continue
      const dd = rest.indexOf('--')
      out.push({ file: c.file, line: c.line, text: words.slice(i).join(' '), script, args: dd < 0 ? [] : rest.slice(dd + 1) })
    }
  }
  return out
}

/** Relative targets of Markdown links and images (outside code), without their #anchor. */
export function relativeLinks(markdown: string, file: string): PathRef[] {
  const out: PathRef[] = []
  let inFence = false
  markdown.split('\n').forEach((line, i) => {
    if (FENCE.test(line)) inFence = !inFence
    if (inFence) return
    const bare = line.replace(/`[^`]*`/g, '')
    for (const m of bare.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      const target = m[1]!
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue
      out.push({ file, line: i + 1, path: decodeURI(target.replace(/#.*$/, '')) })
    }
  })
  return out
}

/** The repository's top folders: code naming `gateway/x.ts` or `test/hardware-sim/cost/` points into the checkout. */
const TOP = ['protocol', 'http', 'signal', 'ledger', 'datasets', 'firmware', 'gateway', 'hardware-sim', 'dashboard', 'demo', 'cli', 'bin', 'testing', 'bench', 'scripts', 'test', 'docs']

/** Inline code or code words that are paths into the checkout (placeholders such as `bench/<name>.ts` are left out). */
export function repoPaths(markdown: string, file: string, texts = codeTexts(markdown, file)): PathRef[] {
  const out: PathRef[] = []
  const re = new RegExp(`^(?:\\./)?((?:${TOP.join('|')})/[\\w./-]*)$`)
  for (const c of texts) {
    for (const raw of c.text.split(/[\s,;()]+/)) {
      const w = raw.replace(/:\d+(-\d+)?$/, '').replace(/[.:]$/, '')
      const m = re.exec(w)
      if (!m || /[<>*{}]|\.\.\./.test(w) || /(^|\/)[A-Z_]+(\.|\/|$)/.test(w)) continue
      out.push({ file: c.file, line: c.line, path: m[1]! })
    }
  }
  return out
}
