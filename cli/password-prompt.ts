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
  const [first, again] = await askHidden(['Password: ', 'Repeat password: '])
  if (first === '') throw new UsageError('no password given')
  if (again !== first) throw new CliError('the two passwords differ; nothing was changed')
  return first!
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

/**
 * One line per prompt from the terminal with nothing echoed; Ctrl-C or Ctrl-D cancels.
 * Each prompt is written only once the terminal is in raw mode (readline sets it when the
 * interface is made), so keys typed as soon as it shows are not echoed by the terminal itself.
 */
async function askHidden(prompts: string[]): Promise<string[]> {
  const muted = new Writable({ write: (_chunk, _enc, done) => done() })
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true })
  let closed = false
  let asking = false
  rl.on('SIGINT', () => rl.close())
  const cancelled = new Promise<never>((_, reject) =>
    rl.once('close', () => {
      closed = true
      if (asking) process.stderr.write('\n')
      reject(new CliError('cancelled; nothing was changed'))
    }),
  )
  cancelled.catch(() => {}) // only a pending question turns it into an error
  const answers: string[] = []
  try {
    for (const prompt of prompts) {
      process.stderr.write(prompt)
      asking = true
      answers.push(await Promise.race([new Promise<string>((r) => rl.question('', r)), cancelled]))
      asking = false
      process.stderr.write('\n')
    }
  } finally {
    if (!closed) rl.close()
  }
  return answers
}
