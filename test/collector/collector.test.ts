/**
 * The collector and the exporters over real localhost sockets: records acknowledged once stored,
 * resent after the collector comes back and de-duplicated, bad clients disconnected and counted while
 * the others are served, a torn log line cut off, queries and their sums; IPFIX messages.
 */
import test from 'ava';
import * as dgram from 'dgram';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import type { FlowRecord } from '../../src/agent/flow-export';
import { TcpExporter } from '../../src/collector/exporter';
import { IpfixExporter, RECORD_LEN, TEMPLATE, TEMPLATE_ID, ipfixMessage } from '../../src/collector/ipfix';
import { parseSince, query } from '../../src/collector/query';
import { CollectorServer } from '../../src/collector/server';
import { FlowStore, LOG_FILE } from '../../src/collector/store';

function record(k: number, over: Partial<FlowRecord> = {}): FlowRecord {
  return {
    flowuuid: `00000000-0000-4000-8000-${k.toString(16).padStart(12, '0')}`, direction_ing: 1, sourcevn: 'default-domain:admin:blue',
    sourceip: 0x0a02000a, destvn: 'default-domain:admin:red', destip: 0x0a03000a, protocol: 17, sport: 1000 + (k % 100), dport: 53,
    tcp_flags: 0, bytes: 100 * (k + 1), packets: k + 1, diff_bytes: 100, diff_packets: 1, action: 'pass',
    sg_rule_uuid: '00000000-0000-0000-0000-000000000001', nw_ace_uuid: '00000000-0000-0000-0000-000000000001', underlay_source_port: 0, drop_reason: 'UNKNOWN',
    ...over,
  };
}

function tmpDir(t: { teardown: (f: () => void) => void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vremu-coll-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

async function until(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return cond();
}

async function collector(dir: string, port = 0) {
  const store = new FlowStore(dir);
  const server = new CollectorServer(store);
  const addr = await server.listen('127.0.0.1', port);
  return { store, server, port: Number(addr.split(':')[1]), close: async () => { await server.close(); store.close(); } };
}

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
  await new Promise((r) => setTimeout(r, 100));
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

test('IPFIX: header, template and data records as RFC 7011 lays them out', (t) => {
  const m = ipfixMessage([{ src: 0x0a02000a, dst: 0xcb0071fe | 0, sport: 40000, dport: 443, proto: 6, tcpFlags: 0x12, octets: 2 ** 33 + 5, packets: 7, startMs: 1_800_000_000_123, endMs: 1_800_000_001_456, egress: false }], 41, 1_800_000_001, true);
  const dv = new DataView(m.buffer);
  t.is(dv.getUint16(0), 10);
  t.is(dv.getUint16(2), m.length);
  t.is(dv.getUint32(4), 1_800_000_001);
  t.is(dv.getUint32(8), 41, 'sequence: data records sent before');
  t.is(dv.getUint16(16), 2, 'template set');
  t.is(dv.getUint16(20), TEMPLATE_ID);
  t.is(dv.getUint16(22), TEMPLATE.length);
  const data = 16 + 8 + TEMPLATE.length * 4;
  t.is(dv.getUint16(data), TEMPLATE_ID);
  t.is(dv.getUint16(data + 2), 4 + RECORD_LEN);
  const r = data + 4;
  t.is(dv.getUint32(r), 0x0a02000a);
  t.is(dv.getUint32(r + 4), 0xcb0071fe);
  t.is(dv.getUint16(r + 8), 40000);
  t.is(dv.getUint16(r + 10), 443);
  t.is(dv.getUint8(r + 12), 6);
  t.is(dv.getUint16(r + 13), 0x12);
  t.is(dv.getUint32(r + 15) * 2 ** 32 + dv.getUint32(r + 19), 2 ** 33 + 5);
  t.is(dv.getUint32(r + 31) * 2 ** 32 + dv.getUint32(r + 35), 1_800_000_000_123);
});

test('IPFIX exporter: a template first, sequence numbers counting records across messages', async (t) => {
  const rx = dgram.createSocket('udp4');
  const msgs: Buffer[] = [];
  rx.on('message', (m) => msgs.push(m));
  await new Promise<void>((r) => rx.bind(0, '127.0.0.1', () => r()));
  const ex = new IpfixExporter('127.0.0.1', rx.address().port, { flushMs: 10 });
  for (let k = 0; k < 100; k++) ex.push(record(k, { sport: -1000 }), 1000, 2000);
  t.true(await until(() => msgs.reduce((n, m) => n + (m.length - 16 - (m.readUInt16BE(16) === 2 ? 8 + TEMPLATE.length * 4 : 0) - 4) / RECORD_LEN, 0) >= 100));
  await ex.close();
  rx.close();
  t.is(msgs[0].readUInt16BE(16), 2, 'the first message carries the template');
  let seq = 0;
  for (const m of msgs) {
    t.is(m.readUInt32BE(8), seq);
    let at = 16;
    while (at < m.length) {
      const id = m.readUInt16BE(at);
      const len = m.readUInt16BE(at + 2);
      if (id === TEMPLATE_ID) {
        seq += (len - 4) / RECORD_LEN;
        t.is(m.readUInt16BE(at + 4 + 8), 64536, 'an i16 port goes out unsigned');
      }
      at += len;
    }
  }
  t.is(seq, 100);
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
