import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
/** `../shared/data` beside the checkout; from a git worktree deeper down, the nearest ancestor that has one. */
export const sharedData = findSharedData(repoRoot)

function findSharedData(from: string): string {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    const candidate = join(dir, 'shared', 'data')
    if (existsSync(candidate)) return candidate
    if (dirname(dir) === dir) return join(from, '..', 'shared', 'data')
  }
}

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs the real `mhealth` binary in a child process, as a user would. */
export function runCli(args: string[], opts: { cwd?: string; input?: string | Uint8Array; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'mhealth.js'), ...args], {
      cwd: opts.cwd ?? repoRoot,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000)
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code: code ?? -1, stdout, stderr })
    })
    child.stdin.end(opts.input ?? '')
  })
}
