/**
 * An estimate of what a program's state costs in Espruino JsVars (14-byte
 * blocks on the ESP32, 16,383 of them). Espruino stores everything in
 * JsVars: an object is one var plus one "name" var per property (ints,
 * booleans and short values sit inside the name var), strings take one var
 * per ~12 characters, typed arrays keep their bytes in a flat string, and
 * function code is kept as text unless it runs from memory-mapped flash.
 *
 * Model (calibrated on the facts file: tweetnacl minified, 15.9 KB of code
 * and tables, costs about 1,630 JsVars once loaded => ~10 bytes per var):
 * - object, array or function header: 1 var (functions +1 for the scope link)
 * - each property / array element: 1 name var, +1 per 12 characters of a
 *   name longer than 4 characters
 * - value inline in the name var: integers in int32 range, booleans,
 *   null/undefined; a non-integer number: +1; a string: 1 + 1 per 12 chars
 *   after the first 10
 * - typed array: 2 vars (view + ArrayBuffer) + ceil(bytes / 12)
 * - code: bundle text sent to RAM costs ceil(length / 10); code run from a
 *   Storage file stays in flash and costs 2 vars per function.
 * Shared objects are counted once.
 */
import { parse } from 'acorn'

export const ESP32_JSVARS = 16_383
export const JSVAR_BYTES = 14
/** Vars the interpreter itself holds at an empty prompt (root, pins, built-in objects created on use). */
export const BASE_VARS = 220

export function stringVars(len: number): number {
  return 1 + Math.ceil(Math.max(0, len - 10) / 12)
}

function nameVars(name: string): number {
  return 1 + (name.length > 4 ? Math.ceil((name.length - 4) / 12) : 0)
}

export function typedArrayVars(bytes: number): number {
  return 2 + Math.ceil(bytes / 12)
}

/** Vars for code text held in RAM. */
export function ramCodeVars(len: number): number {
  return Math.ceil(len / 10)
}

function isInlineNumber(v: number): boolean {
  return Number.isInteger(v) && v >= -2147483648 && v <= 2147483647
}

const typedArrayTag = (v: object): boolean => ArrayBuffer.isView(v)
const arrayBufferTag = (v: object): boolean => Object.prototype.toString.call(v) === '[object ArrayBuffer]'

/**
 * Walks object graphs, counting each object once. `stop` holds built-in
 * objects that belong to the interpreter (never charged, never entered).
 */
export class VarCounter {
  private seen = new Set<object>()
  /** `skip`: objects priced elsewhere (tracked allocations). */
  constructor(private readonly stop: ReadonlySet<unknown>, private readonly skip: (o: object) => boolean = () => false) {}

  /** Cost of a value held in a property slot, not counting the name var. */
  value(v: unknown): number {
    switch (typeof v) {
      case 'number': return isInlineNumber(v) ? 0 : 1
      case 'string': return stringVars(v.length)
      case 'object':
      case 'function':
        return v === null ? 0 : this.object(v as object)
      default: return 0
    }
  }

  object(o: object): number {
    if (this.stop.has(o) || this.seen.has(o) || this.skip(o)) return 0
    this.seen.add(o)
    if (typedArrayTag(o)) {
      const view = o as ArrayBufferView
      if (this.seen.has(view.buffer)) return 1
      this.seen.add(view.buffer)
      return typedArrayVars(view.buffer.byteLength)
    }
    if (arrayBufferTag(o)) return typedArrayVars((o as ArrayBuffer).byteLength) - 1
    let n = typeof o === 'function' ? 2 : 1
    if (Array.isArray(o)) {
      for (let i = 0; i < o.length; i++) n += 1 + this.value(o[i])
      return n
    }
    let keys: string[]
    try {
      keys = Object.getOwnPropertyNames(o)
    } catch {
      return n
    }
    for (const k of keys) {
      if (typeof o === 'function' && (k === 'length' || k === 'name' || k === 'arguments' || k === 'caller')) continue
      const d = Object.getOwnPropertyDescriptor(o, k)
      if (!d || !('value' in d)) continue
      // A function's default prototype object with only `constructor` costs nothing until used.
      if (k === 'prototype' && typeof o === 'function') {
        const p = d.value as object
        if (p && Object.getOwnPropertyNames(p).length <= 1) continue
      }
      n += nameVars(k) + this.value(d.value)
    }
    return n
  }
}

/**
 * JsVars the code of `code` keeps after it ran. Espruino discards top-level
 * statements once executed and keeps the text of each function it creates;
 * an immediately-invoked function is discarded after its call, so the
 * functions it creates count instead (that is a bundle's IIFE wrapper).
 * From flash, function text stays in flash: 2 vars per function object.
 */
export function codeVars(code: string, fromFlash: boolean): number {
  let ast: AnyNode
  try {
    ast = parse(code, { ecmaVersion: 'latest' }) as AnyNode
  } catch {
    return fromFlash ? 0 : ramCodeVars(code.length)
  }
  let chars = 0
  let fns = 0
  const visit = (n: AnyNode, iife: boolean): void => {
    const isFn = n.type === 'FunctionExpression' || n.type === 'FunctionDeclaration' || n.type === 'ArrowFunctionExpression'
    if (isFn && !iife) {
      chars += n.end - n.start
      fns++
      if (!fromFlash) return
    }
    for (const k of Object.keys(n)) {
      const v = n[k]
      if (Array.isArray(v)) {
        for (const c of v) if (c && typeof c.type === 'string') visit(c, false)
      } else if (v && typeof v === 'object' && typeof v.type === 'string') {
        visit(v, (n.type === 'CallExpression' || n.type === 'NewExpression') && k === 'callee' && (v.type === 'FunctionExpression' || v.type === 'ArrowFunctionExpression'))
      }
    }
  }
  visit(ast, false)
  return fromFlash ? 2 * fns : ramCodeVars(chars)
}

type AnyNode = { type: string; start: number; end: number } & Record<string, any>
