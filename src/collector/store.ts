/**
 * The collector's storage: one append-only file of JSON lines, `flows.ndjson` in the data directory,
 * each line {"g": generator, "s": sequence, "t": received (epoch ms), "r": FlowDataIpv4}. A batch is
 * written with one write() and made durable with fdatasync() before the collector acknowledges it, so
 * an acknowledged record survives a kill -9 (or a power cut, as far as the disk keeps its promise). A
 * line cut short by a crash is cut off when the store is opened again.
 *
 * Why a log and not SQLite: the records are only ever appended and then scanned by queries; a log needs
 * no package with install scripts (npm here runs none), and its durability is one fdatasync per batch.
 * @module
 */
import * as fs from 'fs';
import * as path from 'path';
import type { FlowRecord } from '../agent/flow-export';
import { UserError } from '../errors';

export const LOG_FILE = 'flows.ndjson';

/** One stored line. */
export interface Stored {
  g: string;
  s: number;
  t: number;
  r: FlowRecord;
}

export class FlowStore {
  private readonly fd: number;
  /** The highest sequence number stored per generator (to drop a batch sent again). */
  readonly lastSeq = new Map<string, number>();
  records = 0;
  readonly file: string;

  /** Open (or create) the store in `dir`; a torn last line is cut off. */
  constructor(dir: string) {
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new UserError(`${dir}: cannot create the collector's data directory (${(e as NodeJS.ErrnoException).code ?? String(e)}); give another with --data DIR`);
    }
    this.file = path.join(dir, LOG_FILE);
    try {
      this.fd = fs.openSync(this.file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_APPEND, 0o644);
    } catch (e) {
      throw new UserError(`${this.file}: cannot open the flow log (${(e as NodeJS.ErrnoException).code ?? String(e)}); give another directory with --data DIR`);
    }
    let good = 0;
    for (const { line, end } of readLines(this.file)) {
      let st: Stored;
      try {
        st = JSON.parse(line) as Stored;
      } catch {
        break; // a line written in part: everything after it goes
      }
      good = end;
      this.records++;
      if ((this.lastSeq.get(st.g) ?? 0) < st.s) this.lastSeq.set(st.g, st.s);
    }
    if (fs.fstatSync(this.fd).size > good) fs.ftruncateSync(this.fd, good);
  }

  /** Append the records of new batches, durably. */
  append(batches: { generator: string; seq: number; records: FlowRecord[] }[], now: number): void {
    const lines: string[] = [];
    for (const b of batches) {
      for (const r of b.records) lines.push(JSON.stringify({ g: b.generator, s: b.seq, t: now, r }));
      this.lastSeq.set(b.generator, b.seq);
    }
    if (lines.length === 0) return;
    const buf = Buffer.from(lines.join('\n') + '\n');
    let off = 0;
    while (off < buf.length) off += fs.writeSync(this.fd, buf, off);
    fs.fdatasyncSync(this.fd);
    this.records += lines.length;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** The complete lines of a log file, each with the offset just past its newline. */
export function* readLines(file: string): Generator<{ line: string; end: number }> {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  try {
    const buf = Buffer.alloc(1 << 20);
    let carry = Buffer.alloc(0);
    let pos = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      const chunk = carry.length > 0 ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
      const base = pos - carry.length;
      let start = 0;
      for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
        yield { line: chunk.toString('utf8', start, nl), end: base + nl + 1 };
        start = nl + 1;
      }
      carry = Buffer.from(chunk.subarray(start));
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}
