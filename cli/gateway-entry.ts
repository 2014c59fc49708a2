/**
 * `mhealth gateway` on its own: the entry bin/mhealth.js bundles (bin/bundle-cache.mjs) and
 * runs with plain Node, without the TypeScript loader the rest of the CLI uses. The loader
 * costs a second thread and transforms on every import; the bundle is what a clinic runs
 * for months (measured in docs/gateway-scale.md).
 */
import { command } from './commands/gateway.ts'
import { runCommand } from './run-command.ts'

export function main(argv: string[]): Promise<number> {
  return runCommand(command, argv)
}
