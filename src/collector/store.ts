/**
 * The collector's storage: one append-only file of JSON lines, `flows.ndjson` in the data directory,
 * each line {"g": generator, "s": sequence, "i": index in the batch, "n": records in the batch,
 * "t": received (epoch ms), "r": FlowDataIpv4}. The lines of a batch are written with one write() and
 * made durable with fdatasync() before the collector acknowledges the batch (server.ts).
 *
 * What survives what:
 * - An append that fails (write or fdatasync: ENOSPC, EIO) is cut off again (ftruncate to the size
 *   before it) and nothing of it counts as stored, so the batch is not acknowledged and its resend is
 *   stored. If the file cannot be cut back the store refuses every later append (`broken`): the
 *   collector must stop rather than acknowledge records glued to a partial line.
 * - A kill -9 in the middle of a batch's write leaves some of its lines: a batch counts as stored only
 *   when all its `n` lines are there. Opening the store cuts the file back to the end of the last
 *   complete batch, and the sequence numbers it remembers come from complete batches only, so the
 *   exporter's resend of the torn batch is stored whole.
 * - A line that does not parse with complete batches after it (a disk error, or a log damaged by an
 *   older version) is skipped, here and in queries, and the batches after it are kept: only a torn
 *   tail is cut.
 * - The directory is fsync'ed after the log file is created, so the file itself survives a power cut
 *   (as far as the disk keeps its promises), not only its contents.
 * Lines without "i"/"n" (written before batches were marked) count as batches of one record.
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
  /** Position in its batch (0-based) and the batch's record count; absent on lines of older logs. */
  i?: number;
  n?: number;
  t: number;
  r: FlowRecord;
}

/** The file operations the store uses (tests make them fail). */
export interface StoreIo {
  writeSync(fd: number, buf: Buffer, off: number): number;
  fdatasyncSync(fd: number): void;
  ftruncateSync(fd: number, len: number): void;
  /** fsync a directory (its entries). */
  fsyncDir(dir: string): void;
}

const FS_IO: StoreIo = {
  writeSync: (fd, buf, off) => fs.writeSync(fd, buf, off),
  fdatasyncSync: (fd) => fs.fdatasyncSync(fd),
  ftruncateSync: (fd, len) => fs.ftruncateSync(fd, len),
  fsyncDir: (dir) => {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
};

/** An append failed and the file could not be cut back: nothing may be acknowledged any more. */
export class StoreBrokenError extends Error {
  override name = 'StoreBrokenError';
}

/** What scanning a log found. */
export interface LogScan {
  /** Records of complete batches. */
  records: number;
  /** The highest sequence number of a complete batch, per generator. */
  lastSeq: Map<string, number>;
  /** Offset just past the last complete batch: what follows is a torn tail. */
  end: number;
  /** Lines skipped before that end: lines that do not parse, lines of batches that are not whole. */
  skipped: number;
  /** Lines after it (the torn tail). */
  torn: number;
}

function isStored(v: unknown): v is Stored {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  if (typeof o.g !== 'string' || typeof o.s !== 'number' || typeof o.t !== 'number' || typeof o.r !== 'object' || o.r === null) return false;
  if (o.n === undefined && o.i === undefined) return true;
  return Number.isSafeInteger(o.n) && Number.isSafeInteger(o.i) && (o.i as number) >= 0 && (o.i as number) < (o.n as number);
}

/**
 * Read a log and hand each complete batch's lines to `onBatch` (in file order). A batch is whole when
 * its lines i = 0 … n−1 follow one another; a line that does not parse, or that breaks the run of the
 * batch before it, makes that batch incomplete (skipped).
 */
export function scanLog(file: string, onBatch: (lines: Stored[]) => void = () => undefined): LogScan {
  const scan: LogScan = { records: 0, lastSeq: new Map(), end: 0, skipped: 0, torn: 0 };
  let cur: Stored[] = [];
  let pendingLines = 0; // lines read since the last complete batch
  const complete = (lines: Stored[], end: number): void => {
    scan.skipped += pendingLines - lines.length;
    pendingLines = 0;
    scan.records += lines.length;
    scan.end = end;
    const g = lines[0].g;
    if ((scan.lastSeq.get(g) ?? 0) < lines[0].s) scan.lastSeq.set(g, lines[0].s);
    onBatch(lines);
  };
  for (const { line, end } of readLines(file)) {
    pendingLines++;
    let st: unknown;
    try {
      st = JSON.parse(line);
    } catch {
      st = undefined;
    }
    if (!isStored(st)) {
      cur = [];
      continue;
    }
    if (st.n === undefined) {
      cur = [];
      complete([st], end);
      continue;
    }
    if (st.i === 0) cur = [st];
    else if (cur.length > 0 && cur[0].g === st.g && cur[0].s === st.s && cur[0].n === st.n && st.i === cur.length) cur.push(st);
    else {
      cur = [];
      continue;
    }
    if (cur.length === st.n) {
      complete(cur, end);
      cur = [];
    }
  }
  scan.torn = pendingLines;
  return scan;
}

export class FlowStore {
  private readonly fd: number;
  private readonly io: StoreIo;
  /** The highest sequence number stored per generator (to drop a batch sent again). */
  readonly lastSeq: Map<string, number>;
  records = 0;
  /** Lines the open skipped (damaged, or of incomplete batches) and cut off (a torn tail). */
  readonly skippedAtOpen: number;
  readonly tornAtOpen: number;
  /** Set when a failed append could not be undone: every later append throws StoreBrokenError. */
  broken = false;
  readonly file: string;
  /** The file's size: the end of the last complete batch. */
  private size: number;

  /** Open (or create) the store in `dir`; a torn tail is cut off. */
  constructor(dir: string, io: Partial<StoreIo> = {}) {
    this.io = { ...FS_IO, ...io };
    const errno = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? String(e);
    let made: string | undefined;
    try {
      made = fs.mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new UserError(`${dir}: cannot create the collector's data directory (${errno(e)}); give another with --data DIR`);
    }
    this.file = path.join(dir, LOG_FILE);
    const existed = fs.existsSync(this.file);
    try {
      this.fd = fs.openSync(this.file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_APPEND, 0o644);
    } catch (e) {
      throw new UserError(`${this.file}: cannot open the flow log (${errno(e)}); give another directory with --data DIR`);
    }
    if (!existed) {
      // The new file's directory entry must be durable too, and so must those of the directories
      // mkdir made (from `made`, the first, down to `dir`): each in its parent.
      this.io.fsyncDir(dir);
      if (made !== undefined) {
        const top = path.resolve(made);
        for (let d = path.resolve(dir); d !== path.dirname(d); d = path.dirname(d)) {
          this.io.fsyncDir(path.dirname(d));
          if (d === top) break;
        }
      }
    }
    const scan = scanLog(this.file);
    this.lastSeq = scan.lastSeq;
    this.records = scan.records;
    this.skippedAtOpen = scan.skipped;
    this.tornAtOpen = scan.torn;
    this.size = scan.end;
    if (fs.fstatSync(this.fd).size > scan.end) {
      fs.ftruncateSync(this.fd, scan.end);
      fs.fdatasyncSync(this.fd);
    }
  }

  /**
   * Append the records of new batches, durably: when this returns, every line is on disk and the
   * batches count as stored. On a failure nothing of them counts and the file is as before.
   * @throws the write's or fdatasync's error (the file cut back), or StoreBrokenError when it could
   * not be cut back (then and ever after).
   */
  append(batches: { generator: string; seq: number; records: FlowRecord[] }[], now: number): void {
    if (this.broken) throw new StoreBrokenError(`${this.file}: an earlier append could not be undone; the collector must stop`);
    const lines: string[] = [];
    for (const b of batches) {
      const n = b.records.length;
      for (let i = 0; i < n; i++) lines.push(JSON.stringify({ g: b.generator, s: b.seq, i, n, t: now, r: b.records[i] }));
    }
    if (lines.length === 0) return;
    const buf = Buffer.from(lines.join('\n') + '\n');
    try {
      let off = 0;
      while (off < buf.length) off += this.io.writeSync(this.fd, buf, off);
      this.io.fdatasyncSync(this.fd);
    } catch (e) {
      try {
        this.io.ftruncateSync(this.fd, this.size);
        this.io.fdatasyncSync(this.fd);
      } catch (e2) {
        this.broken = true;
        throw new StoreBrokenError(`${this.file}: an append failed (${(e as Error).message}) and cutting it off failed too (${(e2 as Error).message})`);
      }
      throw e;
    }
    this.size += buf.length;
    for (const b of batches) {
      if (b.records.length > 0 && (this.lastSeq.get(b.generator) ?? 0) < b.seq) this.lastSeq.set(b.generator, b.seq);
    }
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
