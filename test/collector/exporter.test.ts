/**
 * The TCP exporter (exporter.ts) against the collector and against broken peers over real localhost
 * sockets: records acknowledged once stored and summed by the query, resent after the collector comes
 * back and stored once, a full queue, an unacknowledging collector, a connect that never completes, and
 * the reconnect backoff (driven by hand through injected timers, not measured in wall-clock time).
 */
import test from 'ava';
import * as net from 'net';
import { TcpExporter } from '../../src/collector/exporter';
import { parseSince, query } from '../../src/collector/query';
import { collector, record, tmpDir } from '../helpers/collector';
import { ManualTimers } from '../helpers/manual-timers';
import { until, waitFor } from '../helpers/wait';

test('records go to the collector, are acknowledged once stored, and the query sums them', async (t) => {
  const dir = tmpDir(t);
  const c = await collector(dir);
  const ex = new TcpExporter('127.0.0.1', c.port, { flushMs: 10 });
  for (let k = 0; k < 1000; k++) ex.push(record(k % 10, { diff_bytes: k }));
  t.true(await until(() => ex.stats().acked === 1000), JSON.stringify(ex.stats()));
  t.is(c.store.records, 1000);
  await ex.close();
  await c.close();
  const q = query(dir, {});
  t.is(q.records.length, 1000);
  t.is(q.flows.length, 10);
  const f0 = q.flows.find((f) => f.flowuuid.endsWith('000000000000'));
  t.is(f0?.bytes, Array.from({ length: 100 }, (_, j) => j * 10).reduce((a, b) => a + b, 0), 'Σ diff_bytes of that flow');
  t.deepEqual(q.vnPairs.map((p) => [p.sourcevn, p.destvn, p.direction, p.flows]), [['default-domain:admin:blue', 'default-domain:admin:red', 'ingress', 10]]);
  t.is(q.vnPairs[0].bytes, (999 * 1000) / 2);
  t.is(query(dir, { vn: 'green' }).records.length, 0);
  t.is(query(dir, { vn: 'red' }).records.length, 1000, 'the last part of an fq-name');
  t.is(query(dir, { ip: '10.3.0.10' }).records.length, 1000);
  t.is(query(dir, { ip: '10.3.0.11' }).records.length, 0);
  t.is(query(dir, { since: Date.now() + 60_000 }).records.length, 0);
  t.is(parseSince('10m', 1_000_000_000), 1_000_000_000 - 600_000);
  t.throws(() => parseSince('yesterday'), { message: /--since yesterday: expected an ISO date/ });
});

test('the collector goes away and comes back: unacknowledged records are sent again, stored once', async (t) => {
  const dir = tmpDir(t);
  let c = await collector(dir);
  const port = c.port;
  const ex = new TcpExporter('127.0.0.1', port, { flushMs: 10, backoffMinMs: 20, backoffMaxMs: 100 });
  for (let k = 0; k < 300; k++) ex.push(record(k));
  t.true(await until(() => ex.stats().acked === 300));
  await c.close();
  t.true(await until(() => !ex.stats().connected));
  for (let k = 300; k < 800; k++) ex.push(record(k));
  t.is(ex.stats().queued, 500, 'held while the collector is down');
  c = await collector(dir, port);
  t.true(await until(() => ex.stats().acked === 800), JSON.stringify(ex.stats()));
  t.is(ex.stats().reconnects >= 1, true);
  await ex.close();
  await c.close();
  const q = query(dir, {});
  t.is(q.records.length, 800);
  t.is(new Set(q.records.map((s) => s.r.flowuuid)).size, 800, 'each once');
});

test('a full queue drops new records and counts them; memory stays bounded', async (t) => {
  const ex = new TcpExporter('127.0.0.1', 1, { queueMax: 100, backoffMinMs: 10_000 }); // nothing listens on port 1
  for (let k = 0; k < 1000; k++) ex.push(record(k));
  t.deepEqual([ex.stats().queued, ex.stats().dropped], [100, 900]);
  await ex.close(0);
});

/** A TCP server that takes connections and does `onConn` with them (a stand-in for a broken collector). */
async function rawServer(t: { teardown: (f: () => void) => void }, onConn: (s: net.Socket) => void) {
  const socks: net.Socket[] = [];
  const srv = net.createServer((s) => {
    socks.push(s);
    s.on('error', () => undefined);
    onConn(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    for (const s of socks) s.destroy();
    srv.close();
  });
  return { port: (srv.address() as net.AddressInfo).port, socks };
}

test('exporter: a collector that takes batches and never acknowledges them is dropped and connected to again', async (t) => {
  const srv = await rawServer(t, (s) => s.resume()); // reads, never answers (a stopped or wedged collector)
  const ex = new TcpExporter('127.0.0.1', srv.port, { flushMs: 10, ackTimeoutMs: 200, backoffMinMs: 20 });
  for (let k = 0; k < 10; k++) ex.push(record(k));
  t.true(await until(() => srv.socks.length >= 3, 3000), `${srv.socks.length} connections`);
  t.true((ex.stats().timeouts ?? 0) >= 2);
  t.is(ex.stats().queued, 10, 'the records are kept for the next connection');
  await ex.close(0);
});

test('exporter: a connect that does not complete is given up after the connect timeout; keepalive is on', async (t) => {
  const opened: { keepAlive: boolean[] }[] = [];
  const ex = new TcpExporter('192.0.2.1', 8086, {
    connectTimeoutMs: 100, backoffMinMs: 20,
    connect: () => {
      const s = new net.Socket(); // never connects: a SYN that nobody answers
      const o = { keepAlive: [] as boolean[] };
      const ka = s.setKeepAlive.bind(s);
      s.setKeepAlive = (on?: boolean, ms?: number) => {
        o.keepAlive.push(on === true && ms !== undefined && ms > 0);
        return ka(on, ms);
      };
      opened.push(o);
      return s;
    },
  });
  t.true(await until(() => opened.length >= 3, 2000), `${opened.length} attempts`);
  t.true((ex.stats().timeouts ?? 0) >= 2);
  t.true(opened.every((o) => o.keepAlive[0] === true));
  await ex.close(0);
});

test('exporter: a peer that accepts and closes at once is reconnected to with a growing backoff (reset only by an acknowledgement)', async (t) => {
  // The first three connections are closed at once; later ones are relayed to a real collector.
  const dir = tmpDir(t);
  const c = await collector(dir);
  t.teardown(() => c.close());
  let conns = 0;
  const srv = await rawServer(t, (s) => {
    if (++conns <= 3) {
      s.destroy();
      return;
    }
    const up = net.connect(c.port, '127.0.0.1');
    up.on('error', () => s.destroy());
    s.on('close', () => up.destroy());
    s.pipe(up).pipe(s);
  });
  // The reconnect and flush timers are fired by hand: the backoff is read from the delays asked for.
  const timers = new ManualTimers();
  const ex = new TcpExporter('127.0.0.1', srv.port, { flushMs: 10, backoffMinMs: 25, backoffMaxMs: 10_000, timers, now: timers.now });
  ex.push(record(1));
  for (let k = 0; k < 3; k++) {
    await waitFor(() => timers.waiting(true) === 1, { what: `reconnect ${k + 1} to be scheduled` });
    timers.advance(timers.delays[timers.delays.length - 1]);
  }
  t.deepEqual(timers.delays, [25, 50, 100], 'doubling from the minimum while no connection is acknowledged');
  await waitFor(() => ex.stats().connected, { what: 'the fourth connection' });
  timers.advance(10); // the flush
  await waitFor(() => ex.stats().acked === 1, { what: 'the acknowledgement' });
  // After an acknowledgement a lost connection starts over at the minimum.
  for (const s of srv.socks) s.destroy();
  await waitFor(() => timers.waiting(true) === 1, { what: 'the reconnect after the acknowledged connection' });
  t.deepEqual(timers.delays, [25, 50, 100, 25]);
  t.is(conns, 4);
  await ex.close(0);
});
