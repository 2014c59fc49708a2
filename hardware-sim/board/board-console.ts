import { EventEmitter } from 'node:events'

/** Console output of the board, line by line, as the Espruino REPL would print it. */
export class BoardConsole extends EventEmitter {
  /** The most recent lines (capped so a long run stays bounded). */
  readonly lines: string[] = []
  private cap = 2000

  write(line: string): void {
    this.lines.push(line)
    if (this.lines.length > this.cap) this.lines.splice(0, this.lines.length - this.cap)
    this.emit('line', line)
  }

  text(): string {
    return this.lines.join('\n')
  }

  clear(): void {
    this.lines.length = 0
  }
}
