/**
 * The flow collector (src/collector/server.ts, wire.ts) under hostile exporters (issue 16): garbage,
 * JSON of the wrong shape, binary, a 10 MB line without a newline, a stall, a hang-up. The collector
 * closes that connection (counted), keeps no unbounded buffer, and acknowledges the next good client.
 */
import test from 'ava';
import fc from 'fast-check';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { CollectorServer } from '../../src/collector/server';
import { FlowStore } from '../../src/collector/store';
import { Exchange, FC, exchange as sendHostile } from './helpers';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuzz-collector-'));
const store = new FlowStore(dir);
const server = new CollectorServer(store, { helloMs: 300, idleMs: 300 });
let port = 0;

test.before(async () => {
  port = Number((await server.listen('127.0.0.1', 0)).split(':')[1]);
});
test.after.always(async () => {
  await server.close();
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const RECORD = {
  flowuuid: '00000000-0000-0000-0000-000000000001', sourcevn: 'default-domain:admin:a', destvn: 'default-domain:admin:b', action: 'pass',
  sg_rule_uuid: '', nw_ace_uuid: '', drop_reason: '', direction_ing: 1, sourceip: 167837955, destip: 167837956, protocol: 6,
  sport: 1000, dport: 80, tcp_flags: 0, bytes: 100, packets: 1, diff_bytes: 100, diff_packets: 1,
};
let generators = 0;
const hello = (g = `fuzz:${++generators}`): string => JSON.stringify({ hello: { generator: g, v: 1 } }) + '\n';
const batch = (seq: number): string => JSON.stringify({ seq, records: [RECORD] }) + '\n';

/** Send `chunks`, then keep quiet (the connection left open unless `hangUp`); the answer until close. */
function exchange(chunks: Buffer[], hangUp: boolean, limitMs = 5000): Promise<Exchange> {
  return sendHostile({ port, host: '127.0.0.1' }, chunks, hangUp, limitMs);
}

/** A good exporter: hello and one batch, acknowledged. */
async function goodClientAcked(): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(hello() + batch(1)));
    let a = '';
    c.on('data', (d) => {
      a += d.toString();
      if (a.includes('\n')) {
        c.destroy();
        resolve(a === '{"ack":1}\n');
      }
    });
    c.on('error', () => resolve(false));
  });
}

test.serial('a good exporter is acknowledged', async (t) => {
  t.true(await goodClientAcked());
});

test.serial('hostile first lines: the connection is closed, the collector serves on', async (t) => {
  const line = fc.oneof(
    fc.string({ maxLength: 50 }),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc.constantFrom('null', '{"hello": null}', '{"hello": {"generator": "", "v": 1}}', '{"hello": {"generator": "g", "v": "1"}}', '{"__proto__": {"hello": {"generator": "g", "v": 1}}}'),
    fc.integer({ min: 1000, max: 30000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  );
  await fc.assert(fc.asyncProperty(line, async (l) => {
    const e = await exchange([Buffer.from(l.replace(/\n/g, ' ') + '\n', 'latin1')], false);
    return e.answer === '' && e.ms < 1000;
  }), { ...FC, numRuns: 60 });
  t.true(await goodClientAcked());
});

test.serial('hostile batches after a hello: closed, or acknowledged when valid', async (t) => {
  const shapes = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.record({ seq: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(2 ** 60)), records: fc.constant([RECORD]) }),
    fc.record({ seq: fc.constant(1), records: fc.array(fc.dictionary(fc.constantFrom(...Object.keys(RECORD), '__proto__'), fc.oneof(fc.integer(), fc.string({ maxLength: 4 }), fc.constant(null))), { maxLength: 3 }) }),
    fc.constant({ seq: 1, records: Array.from({ length: 300 }, () => RECORD) }),
  );
  await fc.assert(fc.asyncProperty(shapes, async (v) => {
    // Hung up after the message: a client between messages may stay quiet, so a good one stays open.
    const e = await exchange([Buffer.from(hello() + JSON.stringify(v) + '\n')], true);
    return (e.answer === '' || /^\{"ack":\d+\}\n$/.test(e.answer)) && e.ms < 1500;
  }), { ...FC, numRuns: 60 });
  t.true(await goodClientAcked());
});

test.serial('a prototype-key generator name is an ordinary name', async (t) => {
  for (const g of ['__proto__', 'constructor', 'hasOwnProperty']) {
    const e = await exchange([Buffer.from(hello(g) + batch(1))], true);
    t.is(e.answer, '{"ack":1}\n', g);
  }
});

test.serial('a 10 MB line without a newline is cut off at 1 MiB', async (t) => {
  const before = server.stats.oversized;
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  const e = await exchange([Buffer.from(hello()), ...Array.from({ length: 160 }, () => chunk)], false);
  t.is(e.answer, '');
  t.is(server.stats.oversized, before + 1);
  t.true(e.written < 10 * 1024 * 1024, `the collector took ${e.written} bytes`);
  t.true(await goodClientAcked());
});

test.serial('no hello, or a stall inside a message, is closed in time', async (t) => {
  const noHello = await exchange([], false);
  t.true(noHello.ms < 2000, `${noHello.ms} ms`);
  const stall = await exchange([Buffer.from(hello() + '{"seq": 1, "rec')], false);
  t.true(stall.ms < 2000, `${stall.ms} ms`);
  const hangUp = await exchange([Buffer.from(hello() + '{"seq": 1, "rec')], true);
  t.is(hangUp.answer, '');
  t.true(await goodClientAcked());
});
