import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot, sharedData } from '../helpers/cli.ts'

/**
 * The shared data folder: `../shared/data` from the main checkout, or two
 * levels up from a worktree under `wt/` (where `../shared` does not exist).
 */
export const dataDir: string = [process.env.MHEALTH_SHARED_DATA ?? '', sharedData, join(repoRoot, '..', '..', 'shared', 'data')].find((p) => p !== '' && existsSync(p)) ?? sharedData
