/** `mhealth gateway` as a real child process: spawn, wait for its ready line, stop or SIGKILL it. */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { repoRoot } from '../../helpers/cli.ts'

export interface GatewayProcess {
  child: ChildProcess
  ready: { ports: { mqtt: number | null; mqtts: number | null; ws: number | null; http: number | null }; id: string; publicKey: string; tlsSha256: string | null }
  stderr: () => string
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>
  /** SIGKILL (power cut) and wait for exit. */
  kill9(): Promise<void>
}

export function spawnGateway(dataDir: string, args: string[] = [], env: Record<string, string> = {}): Promise<GatewayProcess> {
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'bin', 'mhealth.js'), 'gateway', '--data', dataDir, '--mqtt-port', 'auto', '--mqtts-port', '0', '--ws-port', '0', '--http-port', 'auto', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  )
  let out = ''
  let err = ''
  child.stderr!.on('data', (d) => (err += d))
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`gateway did not start in 30 s; stderr:\n${err}`))
    }, 30_000)
    const early = (code: number | null) => {
      clearTimeout(timer)
      reject(new Error(`gateway exited with ${code} before ready; stderr:\n${err}`))
    }
    child.once('exit', early)
    child.stdout!.on('data', (d) => {
      out += d
      const line = out.split('\n').find((l) => l.startsWith('{"ready"'))
      if (!line) return
      clearTimeout(timer)
      child.off('exit', early)
      resolve({
        child,
        ready: JSON.parse(line),
        stderr: () => err,
        async stop() {
          child.kill('SIGTERM')
          return exited
        },
        async kill9() {
          child.kill('SIGKILL')
          await exited
        },
      })
    })
  })
}
