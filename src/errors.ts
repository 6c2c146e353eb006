/**
 * Errors a user can fix (a bad parameter file, a bad capture, a missing instance): the CLI prints the
 * message as one line and exits with status 2, without a stack trace. Internal faults stay ordinary
 * Errors. Across worker threads, check `name`, not `instanceof` (structured clone drops prototypes).
 * @module
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** Whether `e` is a UserError, also after crossing a worker boundary. */
export function isUserError(e: unknown): e is UserError {
  return e instanceof Error && e.name === 'UserError';
}
