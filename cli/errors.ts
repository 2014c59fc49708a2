/** A mistake in how the command was called: exit code 2, usage hint, no stack trace. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** A user-facing failure (bad file, unreachable port, invalid frame): exit code `code`, no stack trace. */
export class CliError extends Error {
  override name = 'CliError'
  constructor(message: string, readonly code = 1) {
    super(message)
  }
}

/**
 * Runs a check whose own error class (`invalid`) means the input is bad, not the tool:
 * that becomes exit 1 with "INVALID: why"; other errors pass through.
 */
export async function invalidOn<T>(invalid: abstract new (...args: never[]) => Error, check: () => T | Promise<T>): Promise<T> {
  try {
    return await check()
  } catch (e) {
    if (e instanceof invalid) throw new CliError(`INVALID: ${e.message}`)
    throw e
  }
}
