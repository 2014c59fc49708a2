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
