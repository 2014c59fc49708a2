/**
 * Writing answers: JSON, plain text, and in-memory static files, each with its
 * content type and length set. API answers are never cached (`no-store`):
 * they carry patient data or state that changes under the client.
 */
import type { ServerResponse } from 'node:http'
import { createHash } from 'node:crypto'

export type Headers = Record<string, string | number>

export const JSON_TYPE = 'application/json; charset=utf-8'

/** `body` as JSON (one line, newline-terminated so `curl` output ends cleanly). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Headers = {}): void {
  const text = JSON.stringify(body) + '\n'
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers })
  res.end(text)
}

export function sendText(res: ServerResponse, status: number, text: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
  res.end(text)
}

/** A file held in memory, ready to serve. */
export interface StaticFile {
  body: Buffer
  /** Content type, e.g. from `contentTypeOf(name)`. */
  type: string
  /** Strong ETag, quoted. */
  etag: string
}

/** A file to serve from memory: its type from the name's extension, its ETag from its bytes. */
export function staticFile(name: string, body: Buffer): StaticFile {
  return { body, type: contentTypeOf(name), etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` }
}

/**
 * A static file, revalidated on every use (`no-cache`: the browser may keep it but asks
 * first) and never sniffed into another type. HEAD gets the headers only (node drops the body).
 */
export function sendFile(res: ServerResponse, file: StaticFile, headers: Headers = {}): void {
  res.writeHead(200, {
    'content-type': file.type,
    'content-length': file.body.length,
    'cache-control': 'no-cache',
    etag: file.etag,
    'x-content-type-options': 'nosniff',
    ...headers,
  })
  res.end(file.body)
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  json: JSON_TYPE,
  txt: 'text/plain; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  woff2: 'font/woff2',
}

/** The content type for a file name by its extension (application/octet-stream when unknown). */
export function contentTypeOf(name: string): string {
  const dot = name.lastIndexOf('.')
  return (dot >= 0 && TYPES[name.slice(dot + 1).toLowerCase()]) || 'application/octet-stream'
}
