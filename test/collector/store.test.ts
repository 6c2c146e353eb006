/**
 * The collector's log (store.ts) and its durability: a torn line or batch cut off, a failed append cut
 * off again, an append that cannot be cut off breaking the store, damaged lines skipped, old logs, the
 * directory fsync.
 */
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { TcpExporter } from '../../src/collector/exporter';
import { query } from '../../src/collector/query';
import { CollectorServer } from '../../src/collector/server';
import { FlowStore, LOG_FILE, StoreIo } from '../../src/collector/store';
import { batch, record, tmpDir } from '../helpers/collector';
import { until } from '../helpers/wait';

test('a line torn by a crash is cut off when the log is opened again', async (t) => {
  const dir = tmpDir(t);
  const s1 = new FlowStore(dir);
  s1.append([{ generator: 'g', seq: 1, records: [record(1), record(2)] }], 1000);
  s1.close();
  fs.appendFileSync(path.join(dir, LOG_FILE), '{"g":"g","s":2,"t":1,"r":{"flowuu');
  t.is(query(dir, {}).records.length, 2, 'a query skips it');
  const s2 = new FlowStore(dir);
  t.is(s2.records, 2);
  t.is(s2.lastSeq.get('g'), 1);
  s2.append([{ generator: 'g', seq: 2, records: [record(3)] }], 2000);
  s2.close();
  t.is(query(dir, {}).records.length, 3);
  t.true(fs.readFileSync(path.join(dir, LOG_FILE), 'utf8').endsWith('}\n'));
});

// ---------------------------------------------------------------------------------------------------
// The log's durability (review 3, item 2)

const logOf = (dir: string): string => path.join(dir, LOG_FILE);

test('a batch torn by a crash (some of its lines written) is not stored: cut off, its sequence number not remembered', (t) => {
  const dir = tmpDir(t);
  const s1 = new FlowStore(dir);
  s1.append([batch(1, 2)], 1000);
  const whole = fs.statSync(logOf(dir)).size;
  s1.append([batch(2, 3)], 2000);
  s1.close();
  // kill -9 during batch 2's write: its first line complete, the second cut short.
  const text = fs.readFileSync(logOf(dir), 'utf8');
  const firstOf2 = text.indexOf('\n', whole) + 1;
  fs.truncateSync(logOf(dir), firstOf2 + 20);
  t.is(query(dir, {}).stored, 2, 'a query counts complete batches only');
  t.is(query(dir, {}).records.length, 2);
  const s2 = new FlowStore(dir);
  t.is(s2.records, 2);
  t.is(s2.lastSeq.get('g'), 1, 'batch 2 is not stored: its resend must not count as a duplicate');
  t.is(s2.tornAtOpen, 1);
  t.is(fs.statSync(logOf(dir)).size, whole, 'cut back to the end of batch 1');
  s2.append([batch(2, 3)], 3000);
  s2.close();
  const q = query(dir, {});
  t.is(q.stored, 5);
  t.is(q.skipped, 0);
  t.deepEqual(q.records.map((r) => [r.s, r.i, r.n]), [[1, 0, 2], [1, 1, 2], [2, 0, 3], [2, 1, 3], [2, 2, 3]]);
});

test('a failed append is cut off again and not counted; the resend is stored, and nothing acknowledged is lost', (t) => {
  const dir = tmpDir(t);
  let fail: 'write' | 'sync' | undefined;
  const io: Partial<StoreIo> = {
    writeSync: (fd, buf, off) => {
      if (fail === 'write') {
        fs.writeSync(fd, buf, off, Math.floor((buf.length - off) / 2)); // part of it reaches the file
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      }
      return fs.writeSync(fd, buf, off);
    },
    fdatasyncSync: (fd) => {
      if (fail === 'sync') {
        fail = undefined; // once: the sync after the cut goes through
        throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
      }
      fs.fdatasyncSync(fd);
    },
  };
  const s = new FlowStore(dir, io);
  s.append([batch(1, 2)], 1000);
  for (const how of ['write', 'sync'] as const) {
    fail = how;
    t.throws(() => s.append([batch(2, 3)], 2000), { message: how === 'write' ? /ENOSPC/ : /EIO/ });
    fail = undefined;
    t.is(s.lastSeq.get('g'), 1, `${how}: not stored, so the resend is no duplicate`);
    t.is(s.records, 2);
  }
  s.append([batch(2, 3)], 3000);
  s.append([batch(3, 1)], 3000);
  t.is(s.lastSeq.get('g'), 3);
  s.close();
  const q = query(dir, {});
  t.deepEqual([q.stored, q.skipped], [6, 0], 'every acknowledged record, no partial line left');
  const again = new FlowStore(dir);
  t.deepEqual([again.records, again.skippedAtOpen, again.tornAtOpen], [6, 0, 0]);
  again.close();
});

test('an append that cannot be cut off breaks the store: the collector stops acknowledging', async (t) => {
  const dir = tmpDir(t);
  let fail = false;
  const store = new FlowStore(dir, {
    fdatasyncSync: (fd) => {
      if (fail) throw new Error('EIO: i/o error, fdatasync');
      fs.fdatasyncSync(fd);
    },
    ftruncateSync: () => {
      throw new Error('EIO: i/o error, ftruncate');
    },
  });
  const fatal: Error[] = [];
  const server = new CollectorServer(store, { onFatal: (e) => fatal.push(e) });
  const port = Number((await server.listen('127.0.0.1', 0)).split(':')[1]);
  const ex = new TcpExporter('127.0.0.1', port, { flushMs: 10, backoffMinMs: 20 });
  ex.push(record(1));
  t.true(await until(() => ex.stats().acked === 1));
  fail = true;
  ex.push(record(2));
  t.true(await until(() => fatal.length === 1));
  t.is(fatal[0].name, 'StoreBrokenError');
  t.true(store.broken);
  fail = false;
  t.true(await until(() => ex.stats().reconnects >= 1 && (server.stats.refused > 0 || server.stats.writeErrors > 0)), JSON.stringify([ex.stats(), server.stats]));
  t.is(ex.stats().acked, 1, 'nothing acknowledged after that, though the exporter reconnects and resends');
  t.true(server.stats.refused > 0 || server.stats.writeErrors > 0);
  t.throws(() => store.append([batch(9, 1)], 1), { name: 'StoreBrokenError' });
  await ex.close(0);
  await server.close();
  store.close();
});

test('a damaged line with good lines after it is skipped, not cut off with them', (t) => {
  // The lines of four batches as a store writes them, with two damaged lines between them.
  const src = tmpDir(t);
  const w = new FlowStore(src);
  const lines: string[][] = [];
  for (const [seq, n] of [[1, 2], [2, 2], [3, 3], [4, 1]]) {
    const before = fs.statSync(logOf(src)).size;
    w.append([batch(seq, n)], seq * 1000);
    lines.push(fs.readFileSync(logOf(src), 'utf8').slice(before).trimEnd().split('\n'));
  }
  w.close();
  const dir = tmpDir(t);
  fs.writeFileSync(logOf(dir), [...lines[0], 'garbage', ...lines[1], '{"not a record": true}', ...lines[2], ...lines[3]].join('\n') + '\n');
  const q = query(dir, {});
  t.is(q.stored, 8, 'batches 1–4, all of them');
  t.is(q.skipped, 2);
  t.deepEqual([...new Set(q.records.map((r) => r.s))], [1, 2, 3, 4]);
  const size = fs.statSync(logOf(dir)).size;
  const s = new FlowStore(dir);
  t.deepEqual([s.records, s.skippedAtOpen, s.tornAtOpen, s.lastSeq.get('g')], [8, 2, 0, 4]);
  s.close();
  t.is(fs.statSync(logOf(dir)).size, size, 'nothing cut off by the open');
  // A batch whose run a damaged line breaks is not whole: skipped, and its resend is stored.
  fs.writeFileSync(logOf(dir), [...lines[0], lines[2][0], 'garbage', lines[2][2], ...lines[3]].join('\n') + '\n');
  const s2 = new FlowStore(dir);
  t.deepEqual([s2.records, s2.skippedAtOpen, s2.lastSeq.get('g')], [3, 3, 4]);
  s2.close();
});

test('lines of a log written before batches were marked count as batches of one', (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(logOf(dir), [1, 2, 3].map((s) => JSON.stringify({ g: 'old', s, t: 1, r: record(s) })).join('\n') + '\n');
  const s = new FlowStore(dir);
  t.deepEqual([s.records, s.lastSeq.get('old')], [3, 3]);
  s.append([batch(4, 2, 'old')], 2);
  s.close();
  t.is(query(dir, {}).stored, 5);
});

test('the directory is synced when the log file is created (and the directories made for it)', (t) => {
  const base = tmpDir(t);
  const synced: string[] = [];
  const dir = path.join(base, 'a', 'b');
  new FlowStore(dir, { fsyncDir: (d) => synced.push(d) }).close();
  t.deepEqual(synced, [dir, path.join(base, 'a'), base]);
  synced.length = 0;
  new FlowStore(dir, { fsyncDir: (d) => synced.push(d) }).close();
  t.deepEqual(synced, [], 'not again for a log that exists');
});
