/**
 * The bundle gate: refuses, before anything runs, the JavaScript that
 * Espruino 2v2x cannot parse or run (see ../shared/docs/espruino-facts.md).
 * V8 would happily run all of it, so without this gate the virtual board
 * would hide exactly the failures the real board shows.
 *
 * Syntax is found on the acorn AST; missing built-ins are found as
 * references to free global names (a bundle that declares its own `Map`
 * is fine) and as member accesses such as `Array.from` or `Math.imul`.
 *
 * Node only, never bundled. It lives with the firmware build (bundle.ts runs every bundle
 * through it); the virtual board (hardware-sim/board) imports it from here to refuse code
 * sent to its REPL.
 */
import { parse, type Node } from 'acorn'

export interface Violation {
  /** What Espruino lacks, e.g. "destructuring", "Map", "Array.from". */
  feature: string
  /** 1-based line. */
  line: number
  /** 1-based column. */
  column: number
}

export class EspruinoCompatError extends Error {
  readonly violations: Violation[]
  constructor(violations: Violation[]) {
    super(`Espruino cannot run this bundle: ${violations.map((v) => `${v.feature} at ${v.line}:${v.column}`).join(', ')}`)
    this.name = 'EspruinoCompatError'
    this.violations = violations
  }
}

/** Global names Espruino does not have at all. */
const MISSING_GLOBALS = new Set([
  'Map', 'Set', 'WeakMap', 'WeakSet', 'WeakRef', 'Symbol', 'BigInt', 'Proxy', 'Reflect',
  'TextEncoder', 'TextDecoder', 'BigInt64Array', 'BigUint64Array', '__extends',
])

const TYPED_ARRAYS = ['Uint8Array', 'Int8Array', 'Uint8ClampedArray', 'Uint16Array', 'Int16Array',
  'Uint32Array', 'Int32Array', 'Float32Array', 'Float64Array']

/** Static members Espruino's built-in objects lack: object name -> member names. */
const MISSING_MEMBERS: Record<string, Set<string>> = {
  Array: new Set(['from', 'of']),
  Number: new Set(['isInteger', 'isSafeInteger', 'EPSILON', 'MAX_SAFE_INTEGER', 'MIN_SAFE_INTEGER']),
  Math: new Set(['imul', 'clz32', 'trunc', 'fround']),
  Object: new Set(['freeze']),
}
for (const t of TYPED_ARRAYS) MISSING_MEMBERS[t] = new Set(['from', 'of'])

type AnyNode = Node & Record<string, any>

/** Names the program itself declares anywhere (var/let/const/function/class/params). */
function declaredNames(root: AnyNode): Set<string> {
  const names = new Set<string>()
  const addPattern = (p: AnyNode | null | undefined): void => {
    if (!p) return
    if (p.type === 'Identifier') names.add(p.name)
    else if (p.type === 'ObjectPattern') for (const prop of p.properties) addPattern(prop.type === 'RestElement' ? prop.argument : prop.value)
    else if (p.type === 'ArrayPattern') for (const e of p.elements) addPattern(e)
    else if (p.type === 'AssignmentPattern') addPattern(p.left)
    else if (p.type === 'RestElement') addPattern(p.argument)
  }
  visit(root, null, null, (n) => {
    if (n.type === 'VariableDeclarator') addPattern(n.id)
    else if ((n.type === 'FunctionDeclaration' || n.type === 'ClassDeclaration') && n.id) names.add(n.id.name)
    if (n.type === 'FunctionDeclaration' || n.type === 'FunctionExpression' || n.type === 'ArrowFunctionExpression') for (const p of n.params) addPattern(p)
    if (n.type === 'CatchClause') addPattern(n.param)
  })
  return names
}

/** Generic pre-order walk over every ESTree child, passing the parent and the key it sits under. */
function visit(n: AnyNode, parent: AnyNode | null, key: string | null, fn: (n: AnyNode, parent: AnyNode | null, key: string | null) => void): void {
  fn(n, parent, key)
  for (const k of Object.keys(n)) {
    if (k === 'loc' || k === 'start' || k === 'end' || k === 'type') continue
    const v = n[k]
    if (Array.isArray(v)) {
      for (const c of v) if (c && typeof c.type === 'string') visit(c, n, k, fn)
    } else if (v && typeof v === 'object' && typeof v.type === 'string') visit(v, n, k, fn)
  }
}

/** True when an Identifier node is a reference to a variable (not a property name or label). */
function isReference(parent: AnyNode | null, key: string | null): boolean {
  if (!parent) return true
  switch (parent.type) {
    case 'MemberExpression': return key !== 'property' || parent.computed
    case 'Property': return key !== 'key' || parent.computed
    case 'MethodDefinition':
    case 'PropertyDefinition': return key !== 'key' || parent.computed
    case 'LabeledStatement':
    case 'BreakStatement':
    case 'ContinueStatement': return false
    case 'MetaProperty': return false
    default: return true
  }
}

/** Every construct in `code` that Espruino 2v2x cannot run, in source order. */
export function checkEspruinoCompat(code: string): Violation[] {
  if (typeof code !== 'string') throw new TypeError(`expected bundle source as a string, got ${typeof code}`)
  let ast: AnyNode
  try {
    ast = parse(code, { ecmaVersion: 'latest', sourceType: 'script', locations: true, allowHashBang: true }) as AnyNode
  } catch (e) {
    const err = e as SyntaxError & { loc?: { line: number; column: number } }
    return [{ feature: `syntax error (${err.message})`, line: err.loc?.line ?? 0, column: (err.loc?.column ?? -1) + 1 }]
  }
  const declared = declaredNames(ast)
  const out: Violation[] = []
  const report = (feature: string, n: AnyNode): void => {
    out.push({ feature, line: n.loc!.start.line, column: n.loc!.start.column + 1 })
  }
  visit(ast, null, null, (n, parent, key) => {
    switch (n.type) {
      case 'ObjectPattern':
      case 'ArrayPattern':
        // Nested patterns are one destructuring: report the outermost only.
        if (!parent || (parent.type !== 'ObjectPattern' && parent.type !== 'ArrayPattern' && parent.type !== 'Property' && parent.type !== 'AssignmentPattern' && parent.type !== 'RestElement')) report('destructuring', n)
        break
      case 'SpreadElement': report('spread', n); break
      case 'RestElement': report('rest parameters', n); break
      case 'AssignmentPattern':
        if (parent && (parent.type === 'FunctionDeclaration' || parent.type === 'FunctionExpression' || parent.type === 'ArrowFunctionExpression') && key === 'params') report('default parameters', n)
        break
      case 'BinaryExpression': if (n.operator === '**') report('exponent operator **', n); break
      case 'AssignmentExpression': if (n.operator === '**=') report('exponent assignment **=', n); break
      case 'ChainExpression': report('optional chaining ?.', n); break
      case 'Property':
        if (n.computed && parent?.type === 'ObjectExpression') report('computed keys', n)
        break
      case 'MethodDefinition':
      case 'PropertyDefinition':
        if (n.computed) report('computed keys', n)
        break
      case 'FunctionDeclaration':
      case 'FunctionExpression':
      case 'ArrowFunctionExpression':
        if (n.async) report('async functions', n)
        if (n.generator) report('generators', n)
        break
      case 'AwaitExpression': report('await', n); break
      case 'YieldExpression': report('yield', n); break
      case 'ForOfStatement': if (n.await) report('for await', n); break
      case 'LabeledStatement': report('labelled statements', n); break
      case 'TaggedTemplateExpression': report('tagged templates', n); break
      case 'ClassDeclaration':
      case 'ClassExpression':
        if (n.superClass && n.superClass.type === 'Identifier' && /Error$/.test(n.superClass.name)) report(`class extends ${n.superClass.name}`, n)
        break
      case 'Literal':
        if (typeof n.bigint === 'string') report('BigInt literal', n)
        break
      case 'Identifier':
        if (MISSING_GLOBALS.has(n.name) && isReference(parent, key)) {
          if (n.name === '__extends') {
            // TypeScript's ES5 class helper: its `extendStatics` path throws on Espruino.
            if (parent?.type === 'VariableDeclarator' && key === 'id') report('TypeScript __extends helper', n)
            else if (!declared.has(n.name)) report('TypeScript __extends helper', n)
          } else if (!declared.has(n.name)) report(n.name, n)
        }
        break
      case 'MemberExpression': {
        const obj = n.object
        if (obj.type === 'Identifier' && !declared.has(obj.name) && !n.computed && n.property.type === 'Identifier') {
          const missing = MISSING_MEMBERS[obj.name]
          if (missing?.has(n.property.name)) report(`${obj.name}.${n.property.name}`, n)
        }
        break
      }
    }
  })
  return out
}

/** Throws EspruinoCompatError listing every violation, or returns when the bundle is acceptable. */
export function assertEspruinoCompat(code: string): void {
  const v = checkEspruinoCompat(code)
  if (v.length > 0) throw new EspruinoCompatError(v)
}
