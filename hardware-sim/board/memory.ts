/**
 * What a program's state costs in Espruino JsVars (14-byte blocks on the ESP32, 16,383 of
 * them), following how Espruino 2v2x stores it (src/jsvar.h, src/jsparse.c):
 *
 * - Block layout of the ESP32 build (JSVAR_CACHE_SIZE 16383 -> JSVARREF_BITS 14): a name
 *   (property key, variable, parameter) keeps 4 characters in its first block
 *   (JSVAR_DATA_STRING_NAME_LEN), a string value 9 (JSVAR_DATA_STRING_LEN), every extension
 *   block 10 (JSVAR_DATA_STRING_MAX_LEN). Strings over 19 characters that Espruino allocates
 *   in one go (typed-array data, function code copied from RAM) are flat: one header block
 *   plus the bytes at 14 per block (JSV_FLAT_STRING_BREAK_EVEN = 9 + 10).
 * - An object is one block plus one name block per property. The value sits inside the name
 *   block when it is an integer in JsVarRef range (-8192..8191) and the name has 4 characters
 *   or fewer (JSV_NAME_STRING_INT); array elements keep integers and booleans inline
 *   (JSV_NAME_INT_INT/BOOL). Anything else is a block (or more) of its own. An instance made
 *   with `new` also holds a `__proto__` name (JSPARSE_INHERITS_VAR).
 * - A function (jspeFunctionDefinition) is one block, a name block per parameter ("\xFF" +
 *   name), a "\xFFcod" name and its code, a "\xFFsco" name when it was defined inside another
 *   function, plus a copy of the scope list (an array, one block per scope) when it was
 *   defined two or more functions deep; arrow functions also keep "\xFFths". Code read from
 *   a Storage file stays in memory-mapped flash (one native-string block); code sent to RAM
 *   is copied into a flat string for every function object created.
 * - A function call's scope is one block plus a name per parameter and local; it lives as
 *   long as any function created inside it (scope tokens, load-rewrite.ts).
 *
 * Calibrated against the real interpreter on this project's firmware bundle: see
 * docs/hardware-sim-board.md, "Memory budget".
 */
import { functionInfo, type FunctionInfo } from './load-rewrite.ts'

export { ESP32_JSVARS, JSVAR_BYTES, BASE_VARS, stringVars, nameVars, flatVars } from './jsvar-blocks.ts'
import { stringVars, flatVars, nameVars, NAME_CHARS, INLINE_MIN, INLINE_MAX } from './jsvar-blocks.ts'

/** A typed array with its own buffer: the view, the ArrayBuffer and the data string. */
export function typedArrayVars(bytes: number): number {
  return 2 + flatVars(bytes)
}

/** Vars for code text held in RAM (an upload's text while it runs). */
export function ramCodeVars(len: number): number {
  return stringVars(len)
}

function isInlineInt(v: number): boolean {
  return Number.isInteger(v) && v >= INLINE_MIN && v <= INLINE_MAX
}

/** Cost of a value held by a name whose key has `keyLen` characters (the name block itself not counted). */
function slotValue(c: VarCounter, v: unknown, keyLen: number, element: boolean): number {
  if (v === undefined) return 0
  if (typeof v === 'number') return isInlineInt(v) && (element || keyLen <= NAME_CHARS) ? 0 : 1
  if (typeof v === 'boolean') return element ? 0 : 1
  return c.value(v)
}

const typedArrayTag = (v: object): boolean => ArrayBuffer.isView(v)
const arrayBufferTag = (v: object): boolean => Object.prototype.toString.call(v) === '[object ArrayBuffer]'
const fnToString = Function.prototype.toString

/** A function object's own cost (without its properties) and the part that is code: computed once per object. */
interface FunctionCost {
  vars: number
  code: number
}
const functionCosts = new WeakMap<object, FunctionCost>()

/** How functions are priced: their code came from RAM (copied per function object) or flash. */
export interface CodeOrigin {
  /** True when the code of this function lives in RAM. */
  inRam(info: FunctionInfo | undefined): boolean
}

const ALL_FLASH: CodeOrigin = { inRam: () => false }

export interface VarCounterOptions {
  /** Objects priced elsewhere (tracked allocations). */
  skip?: (o: object) => boolean
  /** Where function code lives (default: flash). */
  origin?: CodeOrigin
  /** Prototypes that belong to the interpreter: instances of them carry no `__proto__` name. */
  builtinProto?: (p: object | null) => boolean
}

/**
 * Walks object graphs, counting each object once. `stop` holds built-in objects that belong
 * to the interpreter (never charged, never entered). `code` accumulates the vars of function
 * code met on the way (for the report).
 */
export class VarCounter {
  private seen = new Set<object>()
  code = 0
  private readonly skip: (o: object) => boolean
  private readonly origin: CodeOrigin
  private readonly builtinProto: (p: object | null) => boolean

  constructor(private readonly stop: ReadonlySet<unknown>, opts: VarCounterOptions | ((o: object) => boolean) = {}) {
    const o = typeof opts === 'function' ? { skip: opts } : opts
    this.skip = o.skip ?? (() => false)
    this.origin = o.origin ?? ALL_FLASH
    this.builtinProto = o.builtinProto ?? ((p) => p === null || this.stop.has(p))
  }

  /** Cost of a value held in a property slot with a long name (the name block not counted). */
  value(v: unknown): number {
    switch (typeof v) {
      case 'number': return isInlineInt(v) ? 0 : 1
      case 'boolean': return 1
      case 'string': return stringVars(v.length)
      case 'object':
      case 'function':
        return v === null ? 1 : this.object(v as object)
      default: return 0
    }
  }

  /** A named slot (scope variable, property): the name block(s) and the value. */
  slot(name: string, v: unknown): number {
    return nameVars(name.length) + slotValue(this, v, name.length, false)
  }

  /** Already counted (or priced elsewhere)? Marks it counted. */
  private visit(o: object): boolean {
    if (this.stop.has(o) || this.seen.has(o) || this.skip(o)) return false
    this.seen.add(o)
    return true
  }

  object(o: object): number {
    if (!this.visit(o)) return 0
    if (typedArrayTag(o)) {
      const view = o as ArrayBufferView
      if (this.seen.has(view.buffer) || this.skip(view.buffer)) return 1
      this.seen.add(view.buffer)
      return typedArrayVars(view.buffer.byteLength)
    }
    if (arrayBufferTag(o)) return 1 + flatVars((o as ArrayBuffer).byteLength)
    if (Array.isArray(o)) {
      let n = 1
      for (let i = 0; i < o.length; i++) n += 1 + slotValue(this, o[i], 0, true)
      return n
    }
    let n = typeof o === 'function' ? this.functionCost(o as (...a: unknown[]) => unknown) : 1
    let props: Record<string, PropertyDescriptor>
    try {
      if (typeof o === 'function') {
        // Not getOwnPropertyDescriptors: a sloppy function's `arguments`/`caller` getters walk the stack.
        props = {}
        for (const k of Object.getOwnPropertyNames(o)) {
          if (k === 'length' || k === 'name' || k === 'arguments' || k === 'caller') continue
          props[k] = Object.getOwnPropertyDescriptor(o, k)!
        }
      } else {
        props = Object.getOwnPropertyDescriptors(o)
        if (!this.builtinProto(Object.getPrototypeOf(o))) n += nameVars(9) // __proto__
      }
    } catch {
      return n
    }
    for (const k in props) {
      const d = props[k]!
      if (!('value' in d)) {
        // A getter/setter pair: the name, a getter-setter block, a name and a function for each half.
        n += nameVars(k.length) + 1 + (d.get ? 1 + this.value(d.get) : 0) + (d.set ? 1 + this.value(d.set) : 0)
        continue
      }
      // A function's default prototype object with only `constructor` costs nothing until used.
      if (k === 'prototype' && typeof o === 'function') {
        const p = d.value as object
        if (p && Object.getOwnPropertyNames(p).length <= 1) continue
      }
      n += nameVars(k.length) + slotValue(this, d.value, k.length, false)
    }
    return n
  }

  /** A function object without its own properties: see the file comment. */
  private functionCost(f: (...a: unknown[]) => unknown): number {
    let c = functionCosts.get(f)
    if (!c) {
      c = this.priceFunction(f)
      functionCosts.set(f, c)
    }
    this.code += c.code
    return c.vars
  }

  private priceFunction(f: (...a: unknown[]) => unknown): FunctionCost {
    // A host (native) function is one block.
    if (Object.getPrototypeOf(f) === Function.prototype) return { vars: 1, code: 0 }
    let text: string
    try {
      text = fnToString.call(f)
    } catch {
      return { vars: 1, code: 0 }
    }
    const info = functionInfo(text)
    let n = 1
    let bodyLen = text.length
    if (info) {
      for (const p of info.params) n += nameVars(p.length + 1)
      if (info.scopes >= 1) n += 1 + (info.scopes >= 2 ? 1 + info.scopes : 0)
      if (info.arrow) n += 1
      if (info.name) n += 1 + stringVars(info.name.length)
      bodyLen = info.bodyLen
    } else {
      // Code the rewrite never saw (a code string run by a timer, Modules.addCached): its parameters, a scope.
      n += f.length + 1
    }
    const code = bodyLen > 0 ? (this.origin.inRam(info) ? flatVars(bodyLen) : 1) : 0
    return { vars: n + (bodyLen > 0 ? 1 : 0) + code, code }
  }
}

/**
 * JsVars an upload needs just to be read and run: sent to RAM, Espruino holds the whole
 * text as one string while it executes it; from a Storage file the text is memory-mapped.
 * (What the code keeps afterwards, its functions and scopes, is priced as it exists.)
 */
export function codeVars(code: string, fromFlash: boolean): number {
  return fromFlash ? 0 : ramCodeVars(code.length)
}
