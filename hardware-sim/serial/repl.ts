/**
 * The Espruino REPL as a byte-stream state machine, enough for EspruinoTools
 * and for people: echo, `>` prompt, Enter executes once the statement is
 * complete (else a `:` continuation), ESC+LF (what the tools send as
 * "Alt-Enter") adds a newline without executing, a line starting with 0x10
 * runs with echo off, Ctrl-C clears the line, results echo as `=value`.
 */
import { parse } from 'acorn'
import type { VirtualBoard } from '../board/board.ts'
import { formatValue } from '../board/format.ts'

export const BANNER = [
  ' _____                 _',
  '|   __|___ ___ ___ _ _|_|___ ___',
  '|   __|_ -| . |  _| | | |   | . |   (virtual)',
  '|_____|___|  _|_| |___|_|_|_|___|',
  '          |_| espruino.com',
  ' 2v25 virtual ESP32 - mhealth hardware-sim',
  '',
]

/** True when `code` cannot be complete yet (an unterminated block, string or comment): acorn fails at the very end. */
export function isIncomplete(code: string): boolean {
  if (code.trim() === '') return false
  try {
    parse(code, { ecmaVersion: 'latest', sourceType: 'script', allowReturnOutsideFunction: true })
    return false
  } catch (e) {
    const pos = (e as { pos?: number }).pos ?? -1
    const msg = (e as Error).message
    return pos >= code.trimEnd().length || /Unterminated (string|template|comment)/.test(msg)
  }
}

export class ReplSession {
  private buf = ''
  private echoLine = true
  private echoOn = true
  private esc = false
  private csi = false
  private lastCr = false
  private atPrompt = false
  private readonly onLine: (line: string) => void

  /** `out` receives bytes for the terminal (a latin1 string). */
  constructor(private readonly board: VirtualBoard, private readonly out: (s: string) => void) {
    this.onLine = (line: string) => this.print(line)
    this.onReset = () => {
      this.out('\r\n' + BANNER.join('\r\n') + '\r\n')
    }
    board.console.on('line', this.onLine)
    board.events.on('reset', this.onReset)
  }

  private readonly onReset: () => void

  detach(): void {
    this.board.console.off('line', this.onLine)
    this.board.events.off('reset', this.onReset)
  }

  /** Prints the banner and the first prompt, like a board that just reset. */
  banner(): void {
    this.out('\r\n' + BANNER.join('\r\n') + '\r\n>')
    this.atPrompt = true
  }

  /** Console output from the board: clear the prompt, print, put prompt and input back. */
  private print(line: string): void {
    const text = line.replace(/\n/g, '\r\n')
    if (this.atPrompt) this.out(`\r${text}\r\n>${this.echoOn && this.echoLine ? this.buf.replace(/\n/g, '\r\n:') : ''}`)
    else this.out(`${text}\r\n`)
  }

  /** Feeds bytes typed or sent by a tool. */
  input(data: string): void {
    for (const ch of data) this.char(ch)
  }

  private char(ch: string): void {
    const code = ch.charCodeAt(0)
    if (this.csi) {
      // CSI sequence (arrow keys, or the tools' ESC[<line>d line-number hint): ends at a letter.
      if (code >= 0x40 && code <= 0x7e) this.csi = false
      return
    }
    if (this.esc) {
      this.esc = false
      if (ch === '\n') this.add('\n')
      else if (ch === '[' || ch === 'O') this.csi = true
      return
    }
    if (code === 0x1b) {
      this.esc = true
      return
    }
    if (code === 0x03) {
      // Ctrl-C: drop the line.
      this.buf = ''
      this.echoLine = true
      if (this.echoOn) this.out('\r\n>')
      this.atPrompt = true
      return
    }
    if (code === 0x10 && this.buf === '') {
      this.echoLine = false
      return
    }
    if (ch === '\n' && this.lastCr) {
      this.lastCr = false
      return
    }
    this.lastCr = ch === '\r'
    if (ch === '\r' || ch === '\n') {
      this.enter()
      return
    }
    if (code === 0x08 || code === 0x7f) {
      if (this.buf.length) {
        this.buf = this.buf.slice(0, -1)
        if (this.echoOn && this.echoLine) this.out('\b \b')
      }
      return
    }
    if (code < 0x20 && ch !== '\t') return
    this.add(ch)
  }

  private add(ch: string): void {
    this.buf += ch
    if (this.echoOn && this.echoLine) this.out(ch === '\n' ? '\r\n:' : ch)
  }

  private enter(): void {
    const code = this.buf
    const echo = this.echoOn && this.echoLine
    if (isIncomplete(code)) {
      this.buf += '\n'
      if (echo) this.out('\r\n:')
      return
    }
    this.buf = ''
    this.echoLine = true
    if (echo) this.out('\r\n')
    this.atPrompt = false
    if (code.trim() !== '') {
      const echoCall = /^\s*echo\s*\(\s*([01]|true|false)\s*\)\s*;?\s*$/.exec(code)
      if (echoCall) {
        this.echoOn = echoCall[1] === '1' || echoCall[1] === 'true'
      } else {
        const r = this.board.repl(code)
        if (r.ok && echo) this.out(`=${formatResult(r.value)}\r\n`)
      }
    }
    // A 0x10 line prints no prompt (the tools rely on it to see when an upload is done).
    if (echo) this.out('>')
    this.atPrompt = echo
  }
}

function formatResult(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v)
  return formatValue(v, 1)
}
