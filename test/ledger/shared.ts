import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { sharedData, repoRoot } from '../helpers/cli.ts'

/**
 * The shared data folder: `sharedData` on main; from a git worktree nested one level
 * deeper (wt/<name>), the same folder is found by walking up from the repo root.
 */
function locate(): string {
  if (existsSync(sharedData)) return sharedData
  let dir = repoRoot
  for (let i = 0; i < 4; i++) {
    dir = dirname(dir)
    const cand = join(dir, 'shared', 'data')
    if (existsSync(cand)) return cand
  }
  return sharedData
}
export const dataDir = locate()
