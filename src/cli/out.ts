/**
 * Buffered synchronous output to stdout: long listings (`flow -l` of a 512K table) stream in 64 KiB
 * chunks, and a closed pipe (`| head`) ends the program quietly instead of with an EPIPE trace.
 * @module
 */
import * as fs from 'fs';

export class StdoutWriter {
  private chunks: string[] = [];
  private size = 0;

  /** Queue text; flushes past 64 KiB. */
  readonly write = (s: string): void => {
    this.chunks.push(s);
    this.size += s.length;
    if (this.size >= 65536) this.flush();
  };

  flush(): void {
    if (this.size === 0) return;
    const data = Buffer.from(this.chunks.join(''));
    this.chunks = [];
    this.size = 0;
    let off = 0;
    while (off < data.length) {
      try {
        off += fs.writeSync(1, data, off, data.length - off);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') continue;
        if (code === 'EPIPE') process.exit(0);
        throw e;
      }
    }
  }
}
