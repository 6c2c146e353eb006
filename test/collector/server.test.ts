/**
 * The collector's server (server.ts): bad clients disconnected and counted while the others are served,
 * a batch sent again acknowledged and not stored twice, clients without a hello or stalled inside a
 * message closed, connections over the limit refused.
 */
import test from 'ava';
import * as net from 'net';
import { TcpExporter } from '../../src/collector/exporter';
import { query } from '../../src/collector/query';
import { CollectorServer } from '../../src/collector/server';
import { FlowStore } from '../../src/collector/store';
import { collector, record, tmpDir } from '../helpers/collector';
import { until } from '../helpers/wait';

test('a bad client is disconnected and counted; the others are served on', async (t) => {
  const dir = tmpDir(t);
  const c = await collector(dir);
  const ex = new TcpExporter('127.0.0.1', c.port, { flushMs: 10 });
  const raw = (payload: string | Buffer): Promise<void> => new Promise((resolve) => {
    const s = net.connect(c.port, '127.0.0.1', () => s.write(payload));
    s.on('close', () => resolve());
    s.on('error', () => resolve());
  });
  await raw('this is not json\n');
  await raw(JSON.stringify({ hello: { generator: 'g', v: 1 } }) + '\n' + JSON.stringify({ seq: 1, records: [{ flowuuid: 7 }] }) + '\n');
  await raw(Buffer.alloc(1.5 * 1024 * 1024, 0x41)); // no newline, over 1 MiB
  t.is(c.server.stats.malformed, 2);
  t.is(c.server.stats.oversized, 1);
  for (let k = 0; k < 50; k++) ex.push(record(k));
  t.true(await until(() => ex.stats().acked === 50));
  await ex.close();
  await c.close();
  t.is(query(dir, {}).records.length, 50);
});

test('a batch sent again (its acknowledgement lost) is acknowledged and not stored twice', async (t) => {
  const dir = tmpDir(t);
  const c = await collector(dir);
  const send = (lines: string[]): Promise<string> => new Promise((resolve) => {
    let got = '';
    const s = net.connect(c.port, '127.0.0.1', () => s.write(lines.join('\n') + '\n'));
    s.on('data', (d) => {
      got += d.toString();
      s.end();
    });
    s.on('close', () => resolve(got));
  });
  const hello = JSON.stringify({ hello: { generator: 'node-a:vrouter-emu:1:abc', v: 1 } });
  const batch = JSON.stringify({ seq: 1, records: [record(1), record(2)] });
  t.is((await send([hello, batch])).trim(), '{"ack":1}');
  t.is((await send([hello, batch])).trim(), '{"ack":1}', 'acknowledged again');
  t.is(c.server.stats.duplicates, 2);
  await c.close();
  t.is(query(dir, {}).records.length, 2);
});

test('collector: a client without a hello, or stalled inside a message, is closed and counted while an exporter is served', async (t) => {
  const dir = tmpDir(t);
  const store = new FlowStore(dir);
  const server = new CollectorServer(store, { helloMs: 600, idleMs: 1000 });
  const port = Number((await server.listen('127.0.0.1', 0)).split(':')[1]);
  const closed: string[] = [];
  const client = (name: string, first: string): net.Socket => {
    const s = net.connect(port, '127.0.0.1', () => s.write(first));
    s.on('error', () => undefined);
    s.on('close', () => closed.push(name));
    return s;
  };
  const hello = JSON.stringify({ hello: { generator: 'quiet', v: 1 } }) + '\n';
  client('silent', '');
  client('stalled', hello + '{"seq": 1, "records": [');
  const quiet = client('quiet', hello);
  // A good exporter, all along.
  const ex = new TcpExporter('127.0.0.1', port, { flushMs: 10 });
  for (let k = 0; k < 20; k++) ex.push(record(k));
  t.true(await until(() => ex.stats().acked === 20));
  t.true(await until(() => closed.length === 2, 5000));
  t.deepEqual(closed.sort(), ['silent', 'stalled']);
  t.is(server.stats.noHello, 1);
  t.is(server.stats.idle, 1);
  t.false(quiet.destroyed, 'a client between messages may stay quiet');
  for (let k = 20; k < 40; k++) ex.push(record(k));
  t.true(await until(() => ex.stats().acked === 40));
  quiet.destroy();
  await ex.close();
  await server.close();
  store.close();
  t.is(query(dir, {}).stored, 40);
});

test('collector: connections over the limit are closed and counted', async (t) => {
  const dir = tmpDir(t);
  const store = new FlowStore(dir);
  const server = new CollectorServer(store, { maxConnections: 3 });
  const port = Number((await server.listen('127.0.0.1', 0)).split(':')[1]);
  const ex = new TcpExporter('127.0.0.1', port, { flushMs: 10 });
  ex.push(record(0));
  t.true(await until(() => ex.stats().acked === 1));
  const socks: net.Socket[] = [];
  let closed = 0;
  for (let k = 0; k < 4; k++) {
    const s = net.connect(port, '127.0.0.1', () => s.write(JSON.stringify({ hello: { generator: `c${k}`, v: 1 } }) + '\n'));
    s.on('error', () => undefined);
    s.on('close', () => closed++);
    socks.push(s);
  }
  t.true(await until(() => server.stats.refused === 2 && closed === 2));
  t.is(server.open, 3);
  ex.push(record(1));
  t.true(await until(() => ex.stats().acked === 2), 'the exporter keeps its connection');
  for (const s of socks) s.destroy();
  await ex.close();
  await server.close();
  store.close();
});
