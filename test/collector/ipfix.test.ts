/**
 * IPFIX (ipfix.ts): the message layout of RFC 7011, the exporter's template and sequence numbers, the
 * tcpControlBits of each direction from the datapath through the agent's export, one name lookup.
 */
import test from 'ava';
import * as dgram from 'dgram';
import { FlowExport, FlowRecord } from '../../src/agent/flow-export';
import { IpfixExporter, RECORD_LEN, TEMPLATE, TEMPLATE_ID, ipfixMessage } from '../../src/collector/ipfix';
import { VR_FLOW_TCP_ESTABLISHED_R, VR_FLOW_TCP_FIN, VR_FLOW_TCP_FIN_R, VR_FLOW_TCP_SYN, VR_FLOW_TCP_SYN_R } from '../../src/dp/defs';
import { tcpFrame } from '../../src/io/frame-build';
import { xorshift32 } from '../../src/lib/xorshift';
import { from, node } from '../helpers/compute-node';
import { rx as dpRx } from '../helpers/test-host';
import { record } from '../helpers/collector';
import { until } from '../helpers/wait';

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
