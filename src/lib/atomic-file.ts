/**
 * Replace a file atomically: the text goes to a temporary file beside it, which is renamed over it, so a
 * reader (or a crash) sees the old file or the new one, never half of one.
 * @module
 */
import * as fs from 'fs';
import * as path from 'path';

export interface AtomicWriteOptions {
  /** Create the file's directory first (mode 0700 when `mode` is given). */
  mkdir?: boolean;
  /** Mode of a new file (default 0666 before the umask). */
  mode?: number;
  /** fsync the file before the rename and the directory after it: the new file survives a power loss. */
  durable?: boolean;
}

/** Write `text` to `file` atomically. @throws the system's error (the temporary file removed). */
export function writeFileAtomic(file: string, text: string, opts: AtomicWriteOptions = {}): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}`);
  try {
    if (opts.mkdir) fs.mkdirSync(dir, { recursive: true, mode: opts.mode !== undefined ? 0o700 : undefined });
    const fd = fs.openSync(tmp, 'w', opts.mode ?? 0o666);
    try {
      fs.writeSync(fd, text);
      if (opts.durable) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // no temporary file (its directory is not one)
    }
    throw e;
  }
  if (opts.durable) {
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  }
}
