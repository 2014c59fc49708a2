/**
 * What the board does to program text after the syntax gate and before V8 runs it, so that
 * V8 behaves like the Espruino interpreter in two places where it would not by itself:
 *
 * 1. Out of memory is an interrupt, not an exception (src/jsparse.c: jspSetInterrupted).
 *    Espruino stops executing the callback; nothing in it runs any more, `catch` and
 *    `finally` blocks included. The board throws a host-realm sentinel (interrupt.ts), and
 *    every `catch (e) {` becomes `catch (e) {if(__intr.on)throw e;` and every
 *    `finally {...}` becomes `finally {if(!__intr.on){...}}`, so firmware code cannot catch
 *    or outlive it.
 * 2. A function call's scope lives as long as any function created inside it, with all of
 *    its variables (Espruino keeps the scope object; V8 keeps only what closures use, and a
 *    walk from the globals cannot see into closures at all). Every function that creates
 *    functions gets, as its first statement, `var __sT=__sc(K,function(__i){...},"a,b")`: a
 *    scope token priced at K JsVars (the scope block and the names of its variables), whose
 *    reader returns variable __i's current value so the memory walk prices what the scope
 *    holds. The reader refers to every variable and to the token, so V8 keeps them exactly
 *    as long as Espruino would: until the last function created in the call is gone.
 *
 * It also records, for every function in the text, what Espruino stores with it (parameter
 * names, how many scopes deep it was defined, its code length), keyed by the text V8 gives
 * back for the function object (Function.prototype.toString), for memory.ts to price it.
 *
 * Results are cached by code string: a fleet of boards running one bundle parses it once.
 */
import { createHash } from 'node:crypto'
import { parse } from 'acorn'
import { nameVars } from './jsvar-blocks.ts'

/** What Espruino keeps with one function (see memory.ts). */
export interface FunctionInfo {
  /** The program text it came from (see Rewritten.id). */
  script: string
  /** Parameter names (each a "\xFF"+name block). */
  params: string[]
  /** Function scopes around its definition (0 at the top level of a program). */
  scopes: number
  /** Characters of code Espruino copies for it when the code is in RAM. */
  bodyLen: number
  /** Arrow functions also keep `this`. */
  arrow: boolean
  /** A named function expression keeps its name. */
  name: string | null
}

export interface Rewritten {
  code: string
  /** Identifies the program text (FunctionInfo.script): a digest of it, the same whenever it is rewritten again. */
  id: string
}

/** Name of the context global that scope tokens are made with (defined by the sandbox). */
export const SCOPE_HOOK = '__sc'
/** Name of the context global holding the interrupt flag (interrupt.ts). */
export const INTERRUPT_FLAG = '__intr'
const TOKEN_VAR = '__sT'
const READER_ARG = '__i'

type AnyNode = { type: string; start: number; end: number } & Record<string, any>

const CACHE_MAX = 64
const INDEX_MAX = 50_000
const cache = new Map<string, Rewritten>()
const index = new Map<string, FunctionInfo>()

/** The rewritten text of `code` (the input unchanged when it does not parse: V8 then reports the error). */
export function rewriteForBoard(code: string): Rewritten {
  const hit = cache.get(code)
  if (hit) {
    cache.delete(code)
    cache.set(code, hit)
    return hit
  }
  const r = rewrite(code)
  cache.set(code, r)
  if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value as string)
  return r
}

/** What Espruino keeps with the function whose V8 source text is `text`, if a rewrite saw it. */
export function functionInfo(text: string): FunctionInfo | undefined {
  return index.get(text)
}

interface Insertion {
  pos: number
  text: string
}

interface FnRecord {
  node: AnyNode
  /** Where V8's toString text starts (methods start at their key). */
  textStart: number
  info: Omit<FunctionInfo, 'script'>
}

function isFunction(n: AnyNode): boolean {
  return n.type === 'FunctionDeclaration' || n.type === 'FunctionExpression' || n.type === 'ArrowFunctionExpression'
}

function rewrite(code: string): Rewritten {
  const id = createHash('sha1').update(code).digest('base64')
  let ast: AnyNode
  try {
    ast = parse(code, { ecmaVersion: 'latest', sourceType: 'script', allowReturnOutsideFunction: true }) as unknown as AnyNode
  } catch {
    return { code, id }
  }
  const ins: Insertion[] = []
  const fns: FnRecord[] = []
  // Depth-first, with the parent chain so methods and classes find their V8 text start.
  const walk = (n: AnyNode, parent: AnyNode | null, depth: number): boolean => {
    let hasFn = false
    if (isFunction(n)) {
      fns.push(recordFunction(code, n, parent, depth))
      let inner = false
      for (const p of n.params as AnyNode[]) inner = walk(p, n, depth + 1) || inner
      inner = walk(n.body, n, depth + 1) || inner
      if (inner && n.body.type === 'BlockStatement') ins.push(scopeToken(n))
      return true
    }
    if (n.type === 'ClassDeclaration' || n.type === 'ClassExpression') {
      const ctor = (n.body.body as AnyNode[]).find((m) => m.type === 'MethodDefinition' && m.kind === 'constructor')
      fns.push({
        node: n, textStart: n.start,
        info: {
          params: ctor ? paramNames(ctor.value) : [], scopes: depth, bodyLen: ctor ? bodyLength(ctor.value) : 0, arrow: false, name: null,
        },
      })
    }
    if (n.type === 'CatchClause') {
      let param = n.param?.type === 'Identifier' ? (n.param.name as string) : null
      if (!n.param) {
        param = '__e'
        ins.push({ pos: n.start + 'catch'.length, text: `(${param})` })
      }
      if (param) ins.push({ pos: n.body.start + 1, text: `if(${INTERRUPT_FLAG}.on)throw ${param};` })
    }
    if (n.type === 'TryStatement' && n.finalizer) {
      ins.push({ pos: n.finalizer.start + 1, text: `if(!${INTERRUPT_FLAG}.on){` })
      ins.push({ pos: n.finalizer.end - 1, text: '}' })
    }
    for (const k of Object.keys(n)) {
      if (k === 'type' || k === 'start' || k === 'end') continue
      const v = n[k]
      if (Array.isArray(v)) {
        for (const c of v) if (c && typeof c.type === 'string') hasFn = walk(c, n, depth) || hasFn
      } else if (v && typeof v === 'object' && typeof v.type === 'string') hasFn = walk(v, n, depth) || hasFn
    }
    return hasFn
  }
  walk(ast, null, 0)

  ins.sort((a, b) => a.pos - b.pos)
  const parts: string[] = []
  let at = 0
  for (const i of ins) {
    parts.push(code.slice(at, i.pos), i.text)
    at = i.pos
  }
  parts.push(code.slice(at))
  const out = parts.join('')

  // Output position of an input position: everything inserted before it shifts it.
  const shifts: number[] = []
  let sum = 0
  for (const i of ins) {
    sum += i.text.length
    shifts.push(sum)
  }
  const map = (p: number): number => {
    let lo = 0
    let hi = ins.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (ins[mid]!.pos < p) lo = mid + 1
      else hi = mid
    }
    return p + (lo > 0 ? shifts[lo - 1]! : 0)
  }
  if (index.size > INDEX_MAX) index.clear()
  for (const f of fns) index.set(out.slice(map(f.textStart), map(f.node.end)), { script: id, ...f.info })
  return { code: out, id }
}

function paramNames(fn: AnyNode): string[] {
  return (fn.params as AnyNode[]).map((p) => (p.type === 'Identifier' ? (p.name as string) : '_'))
}

/** Characters between the braces (or the whole expression of an arrow). */
function bodyLength(fn: AnyNode): number {
  const b = fn.body as AnyNode
  return b.type === 'BlockStatement' ? Math.max(0, b.end - b.start - 2) : b.end - b.start
}

function recordFunction(code: string, n: AnyNode, parent: AnyNode | null, depth: number): FnRecord {
  let textStart = n.start
  if (parent && parent.value === n && (parent.type === 'MethodDefinition' || (parent.type === 'Property' && (parent.method || parent.kind !== 'init')))) {
    textStart = parent.start
    // V8 starts a static method's text at its name (or get/set), after `static`.
    if (parent.static) {
      const m = /^static\s+/.exec(code.slice(parent.start, parent.start + 40))
      if (m) textStart = parent.start + m[0].length
    }
  }
  return {
    node: n, textStart,
    info: {
      params: paramNames(n), scopes: depth, bodyLen: bodyLength(n), arrow: n.type === 'ArrowFunctionExpression',
      name: n.type === 'FunctionExpression' && n.id ? (n.id.name as string) : null,
    },
  }
}

/** The variables a call of `fn` holds in its scope: parameters, `var`s, and top-level declarations. */
function scopeBindings(fn: AnyNode): { readable: string[]; all: string[] } {
  const readable = new Set<string>(paramNames(fn).filter((p) => p !== '_'))
  const blockOnly = new Set<string>()
  const addPattern = (p: AnyNode | null, to: Set<string>): void => {
    if (p?.type === 'Identifier') to.add(p.name)
  }
  const topLevel = fn.body.body as AnyNode[]
  for (const s of topLevel) {
    if (s.type === 'FunctionDeclaration' || s.type === 'ClassDeclaration') addPattern(s.id, readable)
    if (s.type === 'VariableDeclaration' && s.kind !== 'var') for (const d of s.declarations) addPattern(d.id, readable)
  }
  // `var` anywhere in the body (not in nested functions) belongs to the function scope; block-level
  // let/const/class names cost their names but cannot be read from the top of the function.
  const visit = (n: AnyNode, top: boolean): void => {
    if (isFunction(n)) return
    if (n.type === 'VariableDeclaration') {
      for (const d of n.declarations) addPattern(d.id, n.kind === 'var' ? readable : top ? readable : blockOnly)
    }
    if (!top && (n.type === 'ClassDeclaration' || n.type === 'FunctionDeclaration')) addPattern(n.id, blockOnly)
    for (const k of Object.keys(n)) {
      const v = n[k]
      if (Array.isArray(v)) {
        for (const c of v) if (c && typeof c.type === 'string') visit(c, false)
      } else if (v && typeof v === 'object' && typeof v.type === 'string') visit(v, false)
    }
  }
  for (const s of topLevel) {
    if (isFunction(s)) continue
    visit(s, true)
  }
  for (const r of readable) blockOnly.delete(r)
  return { readable: [...readable], all: [...readable, ...blockOnly] }
}

/** The token statement, inserted after the body's directive prologue. */
function scopeToken(fn: AnyNode): Insertion {
  const { readable, all } = scopeBindings(fn)
  const k = 1 + all.reduce((s, name) => s + nameVars(name.length), 0)
  const cases = readable.map((name, i) => `case ${i}:return ${name};`).join('')
  const body = fn.body as AnyNode
  let pos = body.start + 1
  for (const s of body.body as AnyNode[]) {
    if (s.type === 'ExpressionStatement' && typeof s.directive === 'string') pos = s.end
    else break
  }
  return { pos, text: `var ${TOKEN_VAR}=${SCOPE_HOOK}(${k},function(${READER_ARG}){switch(${READER_ARG}){${cases}}return ${TOKEN_VAR}},${JSON.stringify(readable.join(','))});` }
}
