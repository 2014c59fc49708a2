/**
 * Cost instrumentation: rewrites a script (the firmware bundle) so that running it adds up,
 * in a global counter object, the work Espruino would do to run it.
 *
 * Espruino is a token-walking interpreter: it lexes and executes the source as it goes, with
 * no AST cache and no JIT (src/jsparse.c), so its time follows the tokens it goes through.
 * One cost unit is one token lexed and executed. Rules, each from how jsparse.c walks code:
 *
 * - A statement charges its own tokens each time it runs, not those of the statements nested
 *   in it (if/loop bodies, blocks), which charge themselves. The charge is one
 *   `COUNTER.u += K;` inserted before the statement: one property increment for V8.
 * - Loops: the for-header is lexed once on entry (the update expression only skimmed); then
 *   every iteration re-lexes `test ;`, `) body`, `; update` (jspeStatementFor seeks back to
 *   each), so an iteration charges test + update + 3 at the top of the body. `while` re-lexes
 *   `( test` and `)`: test + 2. `for..in/of` skims the body once to find its end, then
 *   re-lexes `) body` per element.
 * - A function call charges `callUnits` at entry: Espruino builds a scope object, binds the
 *   parameters and starts a new lexer on the function text (jspeFunctionCall). An arrow
 *   function with an expression body also re-parses that expression on every call.
 * - Tokens Espruino lexes without executing cost `skipWeight` units each: the body of every
 *   function expression or declaration when it is evaluated (jspeFunctionDefinitionInternal
 *   lexes to the closing brace to find its end), the branch of an `if` not taken
 *   (jspeSkipBlock), and the rest of the block/function after `return`, `break`, `continue`
 *   or `throw` (jspeBlockNoBrackets skims to the closing brace).
 * - Approximations: both sides of `&&`, `||`, `??` and `?:` are charged in full with their
 *   statement (Espruino parses the side it does not evaluate, without executing it); a loop
 *   that runs zero times is not charged for the one skim of its body; a `catch` block that
 *   does not run and the statements after an exception inside `try` are not charged; the case
 *   bodies a `switch` passes over are not charged.
 *
 * Transform: bodies that are single statements get braces so their charge has a place;
 * `if` without `else` gets an `else` that charges the skimmed branch; arrow expression
 * bodies become `(COUNTER.u += K, expr)`; a label keeps its loop (the charge goes before the
 * label); directive prologues stay first. Nothing else in the source moves.
 */
import { parse, tokenizer, type Node, type Options } from 'acorn'
import { CALIBRATION } from './model.ts'

type AnyNode = Node & Record<string, any>

export interface InstrumentOptions {
  /** Name of the global counter object; the code does `NAME.u += K`. Default `__cost`. */
  counter?: string
  /** Units charged at the entry of every call of an instrumented function. */
  callUnits?: number
  /** Units per token lexed without being executed. */
  skipWeight?: number
  /** Also count executions per site in `NAME.h[id]` (an array the host creates): for profiling, slower. */
  profile?: boolean
  /** Parse as a script (default, like Espruino) or a module. */
  sourceType?: 'script' | 'module'
}

export type SiteKind = 'statement' | 'entry' | 'iteration' | 'branch' | 'skip'

/** One inserted charge. */
export interface CostSite {
  id: number
  /** Offset in the original source of the code the charge stands for. */
  pos: number
  /** 1-based line and 0-based column of `pos`. */
  line: number
  column: number
  /** What the charge is for: a statement, a function entry (plus its first statement), a loop iteration, a branch, a skimmed branch. */
  kind: SiteKind
  units: number
  /** The enclosing function (`Class.method`, `name`, or `` at top level), for reports. */
  fn: string
}

export interface Instrumented {
  code: string
  sites: CostSite[]
}

/** Lexical tokens in `source` (or in `source.slice(start, end)`), comments and whitespace excluded. */
export function countTokens(source: string, start = 0, end = source.length): number {
  const idx = new TokenIndex(source, 'script')
  return idx.between(start, end)
}

/** Token start offsets of a source, for counting the tokens of any range in O(log n). */
class TokenIndex {
  private starts: number[] = []

  constructor(source: string, sourceType: 'script' | 'module') {
    for (const t of tokenizer(source, { ecmaVersion: 'latest', sourceType, allowHashBang: true })) this.starts.push(t.start)
  }

  /** Tokens starting in [a, b). */
  between(a: number, b: number): number {
    if (b <= a) return 0
    return this.lowerBound(b) - this.lowerBound(a)
  }

  private lowerBound(pos: number): number {
    const s = this.starts
    let lo = 0
    let hi = s.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (s[mid]! < pos) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

interface Edit {
  pos: number
  text: string
}

/** Where control goes after return/break/continue/throw, and which skimmed ranges were already charged. */
interface FnFrame {
  name: string
  /** Offset of the closing brace of the body (or the end of the program / arrow expression). */
  end: number
  /** Innermost loops and switches: targets of break/continue. */
  jumps: Array<{ node: AnyNode; end: number; labels: string[]; loop: boolean }>
  /** Innermost try blocks: where a throw lands. */
  tries: number[]
  /** Alternates of the ifs whose consequent we are in: charged as skimmed already. */
  charged: Array<[number, number]>
  /**
   * The counter is reachable as the local `NAME$c` (declared at the entry of the outermost
   * function): a global lookup in a vm context goes through the context's interceptors and
   * costs ~50x a closure variable, once per charge.
   */
  alias: boolean
}

const FUNCTION_TYPES = new Set(['FunctionExpression', 'FunctionDeclaration', 'ArrowFunctionExpression'])

/**
 * Rewrites `source` so that running it accumulates cost units in `globalThis[counter].u`.
 * The host must create the counter object (`{ u: 0 }`, plus `h: []` when profiling) first.
 */
export function instrument(source: string, opts: InstrumentOptions = {}): Instrumented {
  if (typeof source !== 'string') throw new TypeError(`expected source code as a string, got ${typeof source}`)
  const counter = opts.counter ?? '__cost'
  if (!/^[A-Za-z_$][\w$]*$/.test(counter)) throw new TypeError(`expected the counter to be an identifier, got ${JSON.stringify(counter)}`)
  const callUnits = opts.callUnits ?? CALIBRATION.callUnits
  const skipWeight = opts.skipWeight ?? CALIBRATION.skipWeight
  if (!(callUnits >= 0) || !(skipWeight >= 0)) throw new RangeError(`expected callUnits and skipWeight >= 0, got ${callUnits} and ${skipWeight}`)
  const sourceType = opts.sourceType ?? 'script'
  const popts: Options = { ecmaVersion: 'latest', sourceType, locations: true, allowHashBang: true }
  const ast = parse(source, popts) as AnyNode
  const t = new Transformer(source, new TokenIndex(source, sourceType), { counter, callUnits, skipWeight, profile: !!opts.profile })
  t.program(ast)
  return { code: t.apply(), sites: t.sites }
}

interface Settings {
  counter: string
  callUnits: number
  skipWeight: number
  profile: boolean
}

/** The scope-token variable load-rewrite.ts puts at the top of functions that create functions. */
const BOARD_SCOPE_TOKEN = '__sT'

class Transformer {
  readonly sites: CostSite[] = []
  private edits: Edit[] = []
  private frames: FnFrame[] = []
  private lineStarts: number[] = [0]

  constructor(
    private src: string,
    private tokens: TokenIndex,
    private s: Settings,
  ) {
    for (let i = 0; i < src.length; i++) if (src.charCodeAt(i) === 10) this.lineStarts.push(i + 1)
  }

  apply(): string {
    // Stable by position: at one offset, edits keep the order they were made in (outer
    // openings before inner ones, inner closings before outer ones).
    const order = this.edits.map((e, i) => ({ e, i })).sort((a, b) => a.e.pos - b.e.pos || a.i - b.i)
    let out = ''
    let at = 0
    for (const { e } of order) {
      out += this.src.slice(at, e.pos) + e.text
      at = e.pos
    }
    return out + this.src.slice(at)
  }

  program(ast: AnyNode): void {
    this.frames.push({ name: '', end: ast.end, jumps: [], tries: [], charged: [], alias: false })
    this.list(ast.body, ast.start, 0, 'statement')
    this.frames.pop()
  }

  // ---------------------------------------------------------------- charges

  private tok(a: number, b: number): number {
    return this.tokens.between(a, b)
  }

  private tokOf(n: AnyNode | null | undefined): number {
    return n ? this.tok(n.start, n.end) : 0
  }

  private site(pos: number, units: number, kind: SiteKind): number {
    let lo = 0
    let hi = this.lineStarts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.lineStarts[mid]! <= pos) lo = mid
      else hi = mid - 1
    }
    const id = this.sites.length
    this.sites.push({ id, pos, line: lo + 1, column: pos - this.lineStarts[lo]!, kind, units, fn: this.frame().name })
    return id
  }

  /**
   * `NAME.u+=K;` in a function, `NAME.u+=K,` inside an expression. Outside functions the
   * charge is `var NAME$=NAME.u+=K;`: a var statement has no completion value, so a script's
   * result (what load() and the REPL print) stays what it was.
   */
  private chargeText(units: number, id: number, expr: boolean): string {
    const c = this.frame().alias ? this.s.counter + '$c' : this.s.counter
    const k = Number.isInteger(units) ? String(units) : String(Math.round(units * 1e6) / 1e6)
    const prof = this.s.profile ? `,${c}.h[${id}]=(${c}.h[${id}]|0)+1` : ''
    if (expr) return `${c}.u+=${k}${prof},`
    if (this.frames.length <= 1) return `var ${c}$=(${c}.u+=${k}${prof});`
    return `${c}.u+=${k}${prof};`
  }

  private insert(pos: number, text: string): void {
    this.edits.push({ pos, text })
  }

  private charge(pos: number, units: number, kind: SiteKind, at = pos): void {
    const id = this.site(pos, units, kind)
    this.insert(at, this.chargeText(units, id, false))
  }

  private frame(): FnFrame {
    return this.frames[this.frames.length - 1]!
  }

  // ---------------------------------------------------------------- statement lists

  /**
   * Charges and visits a statement list. `pending` units (block braces, a loop iteration,
   * a function entry, a skimmed branch) merge into the first charge; directives stay first.
   */
  private list(body: AnyNode[], innerStart: number, pending: number, kind: SiteKind): void {
    let i = 0
    let insertAt = innerStart
    while (i < body.length && typeof body[i].directive === 'string') {
      pending += this.tokOf(body[i])
      insertAt = body[i].end
      i++
    }
    if (i === body.length) {
      if (pending !== 0) this.charge(insertAt, pending, kind)
      return
    }
    for (; i < body.length; i++) {
      this.statement(body[i], pending, kind)
      pending = 0
    }
  }

  /** Charges one statement of a list (before it, or before its labels) and visits inside it. */
  private statement(st: AnyNode, pending: number, kind: SiteKind): void {
    // The board's own plumbing (hardware-sim/board/load-rewrite.ts, applied before this
    // transform) is not firmware: the scope token costs nothing and is not entered (the memory
    // walk calls its reader from the host), and the interrupt check charges no tokens of its own.
    if (st.type === 'VariableDeclaration' && st.declarations.length === 1 && st.declarations[0].id?.name === BOARD_SCOPE_TOKEN) {
      if (pending !== 0) this.charge(st.start, pending, kind)
      return
    }
    if (st.type === 'IfStatement' && /^!?__intr\.on$/.test(this.src.slice(st.test.start, st.test.end))) {
      if (pending !== 0) this.charge(st.start, pending, kind)
      this.inside(st, [])
      return
    }
    let inner = st
    let labels = 0
    const names: string[] = []
    while (inner.type === 'LabeledStatement') {
      labels += this.tok(inner.start, inner.body.start)
      names.push(inner.label.name)
      inner = inner.body
    }
    const units = pending + labels + this.own(inner) + this.exitUnits(inner)
    this.charge(st.start, units, pending !== 0 ? kind : 'statement')
    this.inside(inner, names)
  }

  /** A statement in a body slot (if branch, loop body): braces added when it is not a block. */
  private body(st: AnyNode, pending: number, kind: SiteKind): void {
    if (st.type === 'BlockStatement') {
      this.list(st.body, st.start + 1, pending + this.own(st), kind)
      return
    }
    this.insert(st.start, '{')
    this.statement(st, pending, kind)
    this.insert(st.end, '}')
  }

  // ---------------------------------------------------------------- own tokens

  /**
   * Units a statement charges each time it runs: its tokens minus those of nested statement
   * bodies (they charge themselves), with function bodies defined in it at the skim weight.
   */
  private own(st: AnyNode): number {
    const w = this.s.skipWeight
    const children = this.childBodies(st)
    let n = this.tokOf(st)
    for (const c of children) n -= this.tokOf(c)
    for (const f of this.functionsIn(st, children)) {
      const b = this.tokOf(f.body)
      n += (w - 1) * b
    }
    switch (st.type) {
      case 'ForStatement':
        // The update is only skimmed on entry; every iteration pays test + update + 3 at the top of the body.
        return n - (1 - w) * this.tokOf(st.update)
      case 'ForInStatement':
      case 'ForOfStatement':
        // The body is skimmed once to find where it ends.
        return n + w * this.tokOf(st.body)
      case 'DoWhileStatement':
        // `while ( test )` is paid per iteration at the top of the body.
        return n - (this.tokOf(st.test) + 3)
      default:
        return n
    }
  }

  /** Nested statements that are charged on their own (not part of this statement's charge). */
  private childBodies(st: AnyNode): AnyNode[] {
    switch (st.type) {
      case 'BlockStatement':
      case 'StaticBlock':
        return st.body
      case 'IfStatement':
        return st.alternate ? [st.consequent, st.alternate] : [st.consequent]
      case 'ForStatement':
      case 'ForInStatement':
      case 'ForOfStatement':
      case 'WhileStatement':
      case 'DoWhileStatement':
      case 'LabeledStatement':
        return [st.body]
      case 'TryStatement':
        return [st.block, st.handler?.body, st.finalizer].filter(Boolean)
      case 'SwitchStatement':
        return st.cases.flatMap((c: AnyNode) => c.consequent)
      default:
        return []
    }
  }

  /** Functions (and class methods) defined in a statement's own tokens, not inside child bodies or other functions. */
  private functionsIn(st: AnyNode, children: AnyNode[]): AnyNode[] {
    const out: AnyNode[] = []
    const skip = new Set(children)
    const walk = (n: AnyNode): void => {
      if (skip.has(n)) return
      if (FUNCTION_TYPES.has(n.type)) {
        out.push(n)
        return
      }
      forEachChild(n, walk)
    }
    if (FUNCTION_TYPES.has(st.type)) out.push(st)
    else forEachChild(st, walk)
    return out
  }

  // ---------------------------------------------------------------- inside statements

  /** Visits what a charged statement contains: functions in its expressions, nested bodies. */
  private inside(st: AnyNode, labels: string[]): void {
    const children = this.childBodies(st)
    for (const f of this.functionsIn(st, children)) this.fn(f, nameOf(st, f))
    const fr = this.frame()
    const w = this.s.skipWeight
    switch (st.type) {
      case 'BlockStatement':
      case 'StaticBlock':
        this.list(st.body, st.start + 1, 0, 'statement')
        return
      case 'IfStatement': {
        const tc = this.tokOf(st.consequent)
        const ta = this.tokOf(st.alternate)
        if (st.alternate) fr.charged.push([st.alternate.start, st.alternate.end])
        this.body(st.consequent, w * ta, 'branch')
        if (st.alternate) fr.charged.pop()
        if (st.alternate) this.body(st.alternate, w * tc, 'branch')
        else if (w > 0 && tc > 0) {
          const id = this.site(st.consequent.start, w * tc, 'skip')
          this.insert(st.consequent.end, `else{${this.chargeText(w * tc, id, false)}}`)
        }
        return
      }
      case 'ForStatement':
        this.loop(st, labels, this.tokOf(st.test) + this.tokOf(st.update) + 3)
        return
      case 'ForInStatement':
      case 'ForOfStatement':
        this.loop(st, labels, 1)
        return
      case 'WhileStatement':
        this.loop(st, labels, this.tokOf(st.test) + 2)
        return
      case 'DoWhileStatement':
        this.loop(st, labels, this.tokOf(st.test) + 3)
        return
      case 'TryStatement':
        fr.tries.push(st.block.end - 1)
        this.body(st.block, 0, 'branch')
        fr.tries.pop()
        if (st.handler) this.body(st.handler.body, 0, 'branch')
        if (st.finalizer) this.body(st.finalizer, 0, 'branch')
        return
      case 'SwitchStatement':
        fr.jumps.push({ node: st, end: st.end - 1, labels, loop: false })
        for (const c of st.cases) this.list(c.consequent, c.consequent.length ? c.consequent[0].start : c.end, 0, 'branch')
        fr.jumps.pop()
        return
      default:
    }
  }

  private loop(st: AnyNode, labels: string[], perIteration: number): void {
    const fr = this.frame()
    const b = st.body
    fr.jumps.push({ node: st, end: b.type === 'BlockStatement' ? b.end - 1 : b.end, labels, loop: true })
    this.body(b, perIteration, 'iteration')
    fr.jumps.pop()
  }

  private jumpTarget(st: AnyNode): FnFrame['jumps'][number] | undefined {
    const jumps = this.frame().jumps
    for (let i = jumps.length - 1; i >= 0; i--) {
      const j = jumps[i]!
      if (st.label ? j.labels.includes(st.label.name) : j.loop || st.type === 'BreakStatement') return j
    }
    return undefined
  }

  /**
   * return/throw/break/continue: control leaves, and Espruino skims the tokens from the
   * statement to where it lands (the end of the function, try block or loop body).
   * Alternates of enclosing ifs were charged as skimmed when their consequent started;
   * they are not charged twice.
   */
  private exitUnits(st: AnyNode): number {
    const w = this.s.skipWeight
    if (w === 0) return 0
    const fr = this.frame()
    let end: number
    if (st.type === 'ReturnStatement') end = fr.end
    else if (st.type === 'ThrowStatement') end = fr.tries.length ? fr.tries[fr.tries.length - 1]! : fr.end
    else if (st.type === 'BreakStatement' || st.type === 'ContinueStatement') {
      const target = this.jumpTarget(st)
      if (!target) return 0
      end = target.end
    } else return 0
    if (end <= st.end) return 0
    let n = this.tok(st.end, end)
    for (const [a, b] of fr.charged) if (a >= st.end && b <= end) n -= this.tok(a, b)
    return n > 0 ? w * n : 0
  }

  // ---------------------------------------------------------------- functions

  private fn(f: AnyNode, name: string): void {
    const parent = this.frame()
    // Named functions by their name; an anonymous callback by where it is defined.
    const label = name || f.id?.name || (parent.name ? `${parent.name}>anonymous` : 'anonymous')
    const body = f.body as AnyNode
    if (body.type === 'BlockStatement') {
      // Espruino keeps a function's text without its braces: a call lexes the inside only.
      this.frames.push({ name: label, end: body.end - 1, jumps: [], tries: [], charged: [], alias: true })
      if (!parent.alias) this.declareAlias(body)
      this.list(body.body, body.start + 1, this.s.callUnits, 'entry')
      this.frames.pop()
      return
    }
    // Expression body: re-parsed and evaluated on every call.
    this.frames.push({ name: label, end: body.end, jumps: [], tries: [], charged: [], alias: parent.alias })
    const units = this.s.callUnits + this.exprUnits(body)
    const id = this.site(body.start, units, 'entry')
    this.insert(body.start, '(' + this.chargeText(units, id, true))
    for (const g of this.functionsIn(body, [])) this.fn(g, nameOf(body, g))
    this.insert(body.end, ')')
    this.frames.pop()
  }

  /** `var NAME$c=NAME;` at the entry of an outermost function, after its directives, before its first charge. */
  private declareAlias(body: AnyNode): void {
    let at = body.start + 1
    for (const st of body.body as AnyNode[]) {
      if (typeof st.directive !== 'string') break
      at = st.end
    }
    this.insert(at, `var ${this.s.counter}$c=${this.s.counter};`)
  }

  /** Tokens of an expression with the bodies of functions defined in it at the skim weight. */
  private exprUnits(e: AnyNode): number {
    let n = this.tokOf(e)
    for (const f of this.functionsIn(e, [])) n += (this.s.skipWeight - 1) * this.tokOf(f.body)
    return n
  }
}

/** Calls `fn` on every AST child of `n`. */
function forEachChild(n: AnyNode, fn: (c: AnyNode) => void): void {
  for (const k of Object.keys(n)) {
    if (k === 'loc' || k === 'range') continue
    const v = n[k]
    if (Array.isArray(v)) {
      for (const c of v) if (c && typeof c.type === 'string') fn(c)
    } else if (v && typeof v === 'object' && typeof v.type === 'string') fn(v)
  }
}

/** A readable name for function `f` found in `ctx`: method key, variable or property it is assigned to. */
function nameOf(ctx: AnyNode, f: AnyNode): string {
  let found = ''
  const keyName = (k: AnyNode): string => (k.type === 'Identifier' ? k.name : k.type === 'Literal' ? String(k.value) : k.type === 'PrivateIdentifier' ? '#' + k.name : '')
  const targetName = (t: AnyNode): string => (t.type === 'Identifier' ? t.name : t.type === 'MemberExpression' && !t.computed ? keyName(t.property) : '')
  const walk = (n: AnyNode, hint: string, cls: string): boolean => {
    if (n === f) {
      found = f.id?.name && !hint ? f.id.name : hint
      return true
    }
    if (FUNCTION_TYPES.has(n.type) && n !== ctx) return false
    let h = hint
    let c = cls
    if (n.type === 'ClassDeclaration' || n.type === 'ClassExpression') c = n.id?.name || hint
    let done = false
    forEachChild(n, (ch) => {
      if (done) return
      let hh = ''
      if ((n.type === 'Property' || n.type === 'MethodDefinition' || n.type === 'PropertyDefinition') && ch === n.value) {
        const k = keyName(n.key)
        const prefix = n.kind === 'get' || n.kind === 'set' ? n.kind + ' ' : ''
        hh = prefix + (c && n.type !== 'Property' ? `${c}.${k}` : k)
      } else if (n.type === 'VariableDeclarator' && ch === n.init) hh = targetName(n.id)
      else if (n.type === 'AssignmentExpression' && ch === n.right) hh = targetName(n.left)
      else if ((n.type === 'ClassDeclaration' || n.type === 'ClassExpression') && ch === n.body) hh = h
      done = walk(ch, hh, c)
    })
    h = ''
    return done
  }
  walk(ctx, '', '')
  return found
}
