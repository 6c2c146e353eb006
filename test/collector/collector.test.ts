/**
 * The collector and the exporters over real localhost sockets: records acknowledged once stored,
 * resent after the collector comes back and de-duplicated, bad clients disconnected and counted while
 * the others are served, a torn log line cut off, queries and their sums; IPFIX messages. The log's
 * durability (torn batches, failed appends, damaged lines, the directory fsync), an exporter facing a
 * stalled or closing peer, the collector's limits on clients, tcpControlBits through the flow path.
 */
import test from 'ava';
import * as dgram from 'dgram';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { FlowExport, FlowRecord } from '../../src/agent/flow-export';
import { TcpExporter } from '../../src/collector/exporter';
import { IpfixExporter, RECORD_LEN, TEMPLATE, TEMPLATE_ID, ipfixMessage } from '../../src/collector/ipfix';
import { VR_FLOW_TCP_ESTABLISHED_R, VR_FLOW_TCP_FIN, VR_FLOW_TCP_FIN_R, VR_FLOW_TCP_SYN, VR_FLOW_TCP_SYN_R } from '../../src/dp/defs';
import { tcpFrame } from '../../src/io/frame-build';
import { xorshift32 } from '../../src/lib/xorshift';
import { from, node } from '../helpers/compute-node';
import { rx as dpRx } from '../helpers/test-host';
import { parseSince, query, queryText } from '../../src/collector/query';
import { CollectorServer } from '../../src/collector/server';
import { FlowStore, LOG_FILE, StoreIo } from '../../src/collector/store';

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

/** The data records of IPFIX messages: [sourceTransportPort, tcpControlBits, flowDirection] each. */
function ipfixData(msgs: Buffer[]): { sport: number; tcpFlags: number; egress: boolean }[] {
  const out: { sport: number; tcpFlags: number; egress: boolean }[] = [];
  for (const m of msgs) {
    for (let at = 16; at < m.length; at += m.readUInt16BE(at + 2)) {
      if (m.readUInt16BE(at) !== TEMPLATE_ID) continue;
      for (let r = at + 4; r + RECORD_LEN <= at + m.readUInt16BE(at + 2); r += RECORD_LEN) {
        out.push({ sport: m.readUInt16BE(r + 8), tcpFlags: m.readUInt16BE(r + 13), egress: m.readUInt8(r + 47) === 1 });
      }
    }
  }
  return out;
}

test('IPFIX tcpControlBits: the TCP header flags of each direction, from the flow entry\'s state bits (datapath → agent export → exporter)', async (t) => {
  const sock = dgram.createSocket('udp4');
  const msgs: Buffer[] = [];
  sock.on('message', (m) => msgs.push(m));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const ex = new IpfixExporter('127.0.0.1', sock.address().port, { flushMs: 10 });
  const n = node();
  const raw: FlowRecord[] = [];
  n.agent.sampler = new FlowExport(n.agent, n.r.ft, n.cn.exportEnv('192.0.2.1'), { rate: -1, disable: false }, () => n.host.now, xorshift32(1), (r, start, end) => {
    raw.push(r);
    ex.push(r, start, end);
  });
  const b1 = (flags: string, seq: number, ack: number, payload = 0): void => {
    dpRx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 40000, dport: 80, flags, seq, ack, payload }), n.vifOf('b1'));
    n.run();
  };
  const r1 = (flags: string, seq: number, ack: number, payload = 0): void => {
    dpRx(n.r, tcpFrame(from('r1', n, '10.3.0.10', '10.2.0.10'), { sport: 80, dport: 40000, flags, seq, ack, payload }), n.vifOf('r1'));
    n.run();
  };
  // The handshake, data, and b1's FIN (the session is not closed: r1 has not answered it).
  b1('S', 1000, 0);
  r1('SA', 5000, 1001);
  b1('A', 1001, 5001);
  b1('PA', 1001, 5001, 100);
  r1('A', 5001, 1101);
  b1('FA', 1101, 5001);
  n.host.advance(1000);
  n.run();
  t.true(await until(() => ipfixData(msgs).length >= 4), `${ipfixData(msgs).length} records`);
  await ex.close();
  sock.close();
  const client = raw.find((r) => r.sport === -25536 && r.direction_ing === 1) as FlowRecord;
  const server = raw.find((r) => r.sport === 80 && r.direction_ing === 1) as FlowRecord;
  t.is(client.tcp_flags & (VR_FLOW_TCP_SYN | VR_FLOW_TCP_FIN | VR_FLOW_TCP_ESTABLISHED_R), VR_FLOW_TCP_SYN | VR_FLOW_TCP_FIN | VR_FLOW_TCP_ESTABLISHED_R, 'the FlowDataIpv4 record keeps the vRouter bits');
  t.is(server.tcp_flags & (VR_FLOW_TCP_SYN_R | VR_FLOW_TCP_FIN_R), VR_FLOW_TCP_SYN_R | VR_FLOW_TCP_FIN_R);
  const recs = ipfixData(msgs);
  const bits = (sport: number): number[] => [...new Set(recs.filter((r) => r.sport === sport).map((r) => r.tcpFlags))];
  t.deepEqual(bits(40000), [0x13], 'b1 sent SYN, ACK and FIN');
  t.deepEqual(bits(80), [0x12], 'r1 sent SYN and ACK, no FIN');
  t.is(recs.filter((r) => r.sport === 40000).length, 2, 'a local flow: ingress and egress');
});

test('IPFIX exporter: the collector\'s name is looked up once, not per datagram', async (t) => {
  const sock = dgram.createSocket('udp4');
  const msgs: Buffer[] = [];
  sock.on('message', (m) => msgs.push(m));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  let lookups = 0;
  const ex = new IpfixExporter('collector.test', sock.address().port, {
    flushMs: 10,
    lookup: (_h, cb) => {
      lookups++;
      setTimeout(() => cb(null, '127.0.0.1'), 20);
    },
  });
  for (let k = 0; k < 200; k++) ex.push(record(k), 1000, 2000);
  t.true(await until(() => ipfixData(msgs).length === 200), `${ipfixData(msgs).length}`);
  t.true(msgs.length > 5);
  t.is(lookups, 1);
  let seq = 0;
  for (const m of msgs) {
    t.is(m.readUInt32BE(8), seq, 'in order');
    seq += (m.length - 16 - (m.readUInt16BE(16) === 2 ? 8 + TEMPLATE.length * 4 : 0) - 4) / RECORD_LEN;
  }
  await ex.close();
  sock.close();
});

// ---------------------------------------------------------------------------------------------------
// The log's durability (review 3, item 2)

const batch = (seq: number, n: number, g = 'g'): { generator: string; seq: number; records: FlowRecord[] } =>
  ({ generator: g, seq, records: Array.from({ length: n }, (_, k) => record(seq * 100 + k)) });
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
  await new Promise((r) => setTimeout(r, 200));
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

test('query: only the last --limit records are kept; the sums cover all', (t) => {
  const dir = tmpDir(t);
  const s = new FlowStore(dir);
  for (let k = 1; k <= 20; k++) s.append([batch(k, 5)], k);
  s.close();
  const q = query(dir, { keep: 7 });
  t.is(q.matched, 100);
  t.is(q.records.length, 7);
  t.deepEqual(q.records.map((r) => `${r.s}.${r.i as number}`), ['19.3', '19.4', '20.0', '20.1', '20.2', '20.3', '20.4'], 'the last 7, oldest first');
  t.is(q.flows.reduce((a, f) => a + f.records, 0), 100);
  t.is(query(dir, { keep: 0 }).records.length, 0);
  t.is(query(dir, {}).records.length, 100);
  t.regex(queryText(q, 7), /^100 of 100 records in .*\n[\s\S]*… 93 earlier records not shown/);
});

// ---------------------------------------------------------------------------------------------------
// A stalled collector, a bad peer, misbehaving clients (review 3, items 6 and 7)

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
  const srv = await rawServer(t, (s) => s.destroy());
  const ex = new TcpExporter('127.0.0.1', srv.port, { flushMs: 10, backoffMinMs: 25, backoffMaxMs: 10_000 });
  ex.push(record(1));
  await new Promise((r) => setTimeout(r, 1000));
  // 25, 50, 100, 200, 400 ms: about 5 connections in a second (every 25 ms would make ~40).
  t.true(srv.socks.length >= 3 && srv.socks.length <= 7, `${srv.socks.length} connections`);
  await ex.close(0);
  // After an acknowledgement it starts over at the minimum.
  const dir = tmpDir(t);
  const c = await collector(dir);
  const ex2 = new TcpExporter('127.0.0.1', c.port, { flushMs: 10, backoffMinMs: 25 });
  ex2.push(record(2));
  t.true(await until(() => ex2.stats().acked === 1));
  await ex2.close();
  await c.close();
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
