/** A throwaway redis-server for tests: free port, temp dir, no persistence. */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './net.ts'

export const REDIS_SERVER = '/usr/bin/redis-server'
/** A tap `skip` value: false when redis-server is installed, else why the test is skipped. */
export const redisSkip = (): false | string => (existsSync(REDIS_SERVER) ? false : `${REDIS_SERVER} not installed (apt-get install -y redis-server)`)

export interface TestRedis {
  url: string
  dir: string
  proc: ChildProcess
  stop(): Promise<void>
}

export async function startRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'mh-redis-'))
  const port = await freePort()
  const proc = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000)
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer)
        resolve()
      }
    })
    proc.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)))
  })
  proc.stdout!.resume()
  return {
    url: `redis://127.0.0.1:${port}/0`,
    dir,
    proc,
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM')
        await new Promise((r) => proc.once('exit', r))
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
