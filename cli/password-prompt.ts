/**
 * Reads a new password for `mhealth user add|passwd`. At a terminal: asked twice on stderr
 * with echo off (readline in raw mode writing to a muted stream), so it never shows on screen
 * nor in the scrollback. Otherwise (a pipe, a file): the first line of standard input, as
 * scripts and tests pass it.
 */
import { createInterface } from 'node:readline'
import { Writable } from 'node:stream'
import { CliError, UsageError } from './errors.ts'

export async function readNewPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    const line = (await readAll(process.stdin)).split('\n')[0]!.replace(/\r$/, '')
    if (line === '') throw new UsageError('expected the password on standard input')
    return line
  }
  const first = await askHidden('Password: ')
  if (first === '') throw new UsageError('no password given')
  const again = await askHidden('Repeat password: ')
  if (again !== first) throw new CliError('the two passwords differ; nothing was changed')
  return first
}

function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = ''
    stream.setEncoding('utf8')
    stream.on('data', (d: string) => (s += d))
    stream.on('end', () => resolve(s))
    stream.on('error', reject)
  })
}

/** One line from the terminal with nothing echoed; Ctrl-C or Ctrl-D cancels. */
function askHidden(prompt: string): Promise<string> {
  process.stderr.write(prompt)
  const muted = new Writable({ write: (_chunk, _enc, done) => done() })
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true })
  return new Promise((resolve, reject) => {
    let answered = false
    rl.on('SIGINT', () => rl.close())
    rl.once('close', () => {
      process.stderr.write('\n')
      if (!answered) reject(new CliError('cancelled; nothing was changed'))
    })
    rl.question('', (answer) => {
      answered = true
      resolve(answer)
      rl.close()
    })
  })
}
