/**
 * Helpers for the parsers of outside input (configuration files, JSON objects): a bounded file read,
 * and short one-line renderings of untrusted values for error lines.
 * @module
 */
import * as fs from 'fs';
import { UserError } from '../errors';

/** The largest configuration text read (topology, Contrail objects, agent.conf, module parameters). */
export const MAX_INPUT_FILE = 16 << 20;

/** Longest rendering of a user's value inside an error line. */
const SHOW_MAX = 60;

/**
 * `s` on one line and at most `max` characters: control characters (newlines…) escaped as \xNN or
 * \uNNNN, the rest cut off with "…". For text that goes into an error line.
 */
export function oneLine(s: string, max = SHOW_MAX): string {
  const cut = s.length > max ? s.slice(0, max) : s;
  // eslint-disable-next-line no-control-regex
  const esc = cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return s.length > max ? `${esc}…` : esc;
}

/**
 * A value of untrusted JSON for an error line: JSON for scalars, a short description for arrays and
 * objects (JSON.stringify would recurse without bound on deep nesting and may be megabytes long).
 */
export function show(v: unknown): string {
  if (typeof v === 'string') return oneLine(JSON.stringify(v));
  if (v === undefined) return 'undefined';
  if (v === null || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `a list (${v.length} items)`;
  if (typeof v === 'object') return 'an object';
  return typeof v;
}

/** A JSON.parse error's message on one short line (V8 ≥ 11 quotes the input, newlines and all). */
export function jsonErrorLine(e: unknown): string {
  return oneLine(e instanceof Error ? e.message : String(e), 120);
}

/**
 * Read a text file of at most `max` bytes (a larger one, or a device such as /dev/zero, is refused
 * before it is read whole: `fs.readFileSync` would allocate without bound).
 * @param message makes the error line from the problem: "no such file", "cannot read it (EISDIR)",
 *   "larger than 16 MiB" (`enoent` tells the first apart).
 * @throws UserError for a missing, unreadable or too large file.
 */
export function readInputFile(file: string, message: (problem: string, enoent: boolean) => string, max = MAX_INPUT_FILE): string {
  const fail = (e: unknown): never => {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(message(code === 'ENOENT' ? 'no such file' : `cannot read it (${code ?? String(e)})`, code === 'ENOENT'));
  };
  let fd = -1;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    fail(e);
  }
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    for (;;) {
      const b = Buffer.allocUnsafe(Math.min(1 << 20, max + 1 - size));
      let n = 0;
      try {
        n = fs.readSync(fd, b, 0, b.length, null);
      } catch (e) {
        fail(e);
      }
      if (n === 0) break;
      chunks.push(b.subarray(0, n));
      size += n;
      if (size > max) throw new UserError(message(`larger than ${Math.round(max / 1048576)} MiB; is it the right file?`, false));
    }
    return Buffer.concat(chunks, size).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}
