/**
 * Text conversions shared by the board APIs: Espruino treats strings as
 * byte strings (one char per byte), and prints values its own way.
 */

/** Bytes from anything Espruino accepts as data: numbers, strings, arrays, typed arrays, ArrayBuffers, {data,count}. */
export function toBytes(v: unknown, out: number[] = []): number[] {
  if (v === undefined || v === null) return out
  if (typeof v === 'number' || typeof v === 'boolean') {
    out.push(Number(v) & 0xff)
  } else if (typeof v === 'string') {
    for (let i = 0; i < v.length; i++) out.push(v.charCodeAt(i) & 0xff)
  } else if (ArrayBuffer.isView(v)) {
    const u = new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
    if (v instanceof Object.getPrototypeOf(Uint8Array) || isTypedArray(v)) {
      const arr = v as unknown as ArrayLike<number>
      for (let i = 0; i < arr.length; i++) out.push(Number(arr[i]) & 0xff)
    } else for (let i = 0; i < u.length; i++) out.push(u[i])
  } else if (Object.prototype.toString.call(v) === '[object ArrayBuffer]') {
    const u = new Uint8Array(v as ArrayBuffer)
    for (let i = 0; i < u.length; i++) out.push(u[i])
  } else if (Array.isArray(v)) {
    for (const x of v) toBytes(x, out)
  } else if (typeof v === 'object' && 'data' in (v as object)) {
    const o = v as { data: unknown; count?: number }
    const n = typeof o.count === 'number' ? o.count : 1
    for (let i = 0; i < n; i++) toBytes(o.data, out)
  } else {
    throw new TypeError(`expected number, string, array or typed array, got ${Object.prototype.toString.call(v)}`)
  }
  return out
}

function isTypedArray(v: ArrayBufferView): boolean {
  return !/DataView/.test(Object.prototype.toString.call(v))
}

export function bytesToBinaryString(b: ArrayLike<number>): string {
  let s = ''
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode.apply(null, Array.prototype.slice.call(b, i, i + 8192) as number[])
  return s
}

/** Espruino-ish rendering for console.log/print of non-strings. */
export function formatValue(v: unknown, depth = 0): string {
  if (typeof v === 'string') return depth === 0 ? v : JSON.stringify(v)
  if (v === undefined) return 'undefined'
  if (v === null || typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (typeof v === 'function') return `function ${(v as { name?: string }).name ?? ''}() {...}`
  if (ArrayBuffer.isView(v)) {
    const name = Object.prototype.toString.call(v).slice(8, -1)
    if (name === 'DataView') return 'DataView'
    return `new ${name}([${Array.prototype.join.call(v, ', ')}])`
  }
  if (Object.prototype.toString.call(v) === '[object ArrayBuffer]') return `new ArrayBuffer([${new Uint8Array(v as ArrayBuffer).join(', ')}])`
  if (depth > 4) return '...'
  if (Array.isArray(v)) return `[ ${v.map((x) => formatValue(x, depth + 1)).join(', ')} ]`
  if (Object.prototype.toString.call(v) === '[object Error]') {
    const e = v as Error
    return `${e.name}: ${e.message}`
  }
  try {
    const keys = Object.keys(v as object)
    if (keys.length === 0) {
      const s = (v as { toString?: () => string }).toString?.()
      if (typeof s === 'string' && s !== '[object Object]') return s
      return '{ }'
    }
    return `{ ${keys.map((k) => `${JSON.stringify(k).slice(1, -1) === k && /^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}: ${formatValue((v as Record<string, unknown>)[k], depth + 1)}`).join(', ')} }`
  } catch {
    return String(v)
  }
}
