import { isUserError } from '../../src/errors';

/** The message of the UserError `f` throws ('' when it throws none); any other error is rethrown. */
export function userErrorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isUserError(e)) return e.message;
    throw e;
  }
  return '';
}
