/**
 * The exported records (FlowDataIpv4, reference vrouter-agent.md §1.1, §1.7, §2): when samples come
 * (first aging visit, on new bytes, at deletion), the fields, local flows twice, the NAT source
 * override, drop and log actions; and that the deltas add up to the flow's counters.
 */
import test from 'ava';
import { FlowExport, FlowRecord } from '../../src/agent/flow-export';
import { UUID_IMPLICIT_DENY } from '../../src/agent/policy';
import { feBytes, fePackets } from '../../src/dp/flow-table';
import { tcpFrame, udpFrame } from '../../src/io/frame-build';
import { xorshift32 } from '../../src/lib/xorshift';
import { flows, from, node } from '../helpers/compute-node';
import { rx } from '../helpers/test-host';

const WALL = 1_800_000_000_000;

function exporting(rate = -1) {
  const n = node();
  const recs: FlowRecord[] = [];
  const fx = new FlowExport(n.agent, n.r.ft, n.cn.exportEnv('192.0.2.1'), { rate, disable: false }, () => n.host.now, xorshift32(9), (r) => recs.push(r), () => WALL);
  n.agent.sampler = fx;
  return { ...n, recs, fx };
}

const ip = (s: string): number => s.split('.').reduce((a, b) => (a << 8) | Number(b), 0) | 0;

test('a local flow: no record at setup; its first visit exports ingress and egress records with the first-record fields', (t) => {
  const n = exporting();
  for (let k = 0; k < 5; k++) {
    rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '10.2.0.11'), { sport: 5000, dport: 6000, payload: 30 }), n.vifOf('b1'));
    n.run();
  }
  t.is(n.recs.length, 0, 'not exported at creation');
  n.host.advance(1000);
  n.run();
  const fwd = n.recs.filter((r) => r.sourceip === ip('10.2.0.10'));
  t.is(fwd.length, 2, 'ingress and egress');
  const [ing, eg] = [fwd.find((r) => r.direction_ing === 1), fwd.find((r) => r.direction_ing === 0)] as FlowRecord[];
  t.truthy(ing && eg);
  t.not(ing.flowuuid, eg.flowuuid, 'the egress copy has its own UUID');
  t.like(ing, {
    sourcevn: 'default-domain:admin:blue', destvn: 'default-domain:admin:blue', destip: ip('10.2.0.11'), protocol: 17,
    sport: 5000, dport: 6000, bytes: 5 * 72, packets: 5, diff_bytes: 5 * 72, diff_packets: 5, action: 'pass',
    nw_ace_uuid: '00000000-0000-0000-0000-000000000001', drop_reason: 'UNKNOWN', vm: 'b1', vrouter_ip: '192.0.2.1',
    other_vrouter_ip: '192.0.2.1', underlay_proto: 0, underlay_source_port: 0,
  });
  t.regex(ing.vmi_uuid as string, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.is(ing.setup_time, WALL * 1000, 'µs since the epoch (the flow was set up at the exporter\'s start), on the first record');
  t.is(ing.teardown_time, undefined);
  const rev = n.recs.find((r) => r.sourceip === ip('10.2.0.11') && r.direction_ing === 1) as FlowRecord;
  t.is(rev.reverse_uuid, ing.flowuuid, 'the reverse (no traffic yet) is exported with zero deltas');
  t.like(rev, { diff_bytes: 0, diff_packets: 0, vm: 'b2' });
  // Nothing new: no record on the next visit; new bytes: one more pair, without the first-record fields.
  n.recs.length = 0;
  n.host.advance(1000);
  n.run();
  t.is(n.recs.length, 0);
  rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '10.2.0.11'), { sport: 5000, dport: 6000, payload: 30 }), n.vifOf('b1'));
  n.host.advance(1000);
  n.run();
  t.is(n.recs.length, 2);
  t.like(n.recs[0], { diff_bytes: 72, diff_packets: 1, bytes: 6 * 72 });
  t.is(n.recs[0].setup_time, undefined);
});

test('deletion exports a final record with teardown_time; the deltas add up to the counters', (t) => {
  const n = exporting();
  let first = true;
  for (const burst of [3, 0, 7, 2]) {
    for (let k = 0; k < burst; k++) {
      rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 40000, dport: 80, flags: first ? 'S' : 'A', payload: 10 * k }), n.vifOf('b1'));
      first = false;
      n.run();
    }
    n.host.advance(1000);
    n.run();
  }
  const f = flows(n.r).find((x) => x.key.startsWith('10.2.0.10:40000'));
  const total = { bytes: feBytes(n.r.ft, f?.i as number), packets: fePackets(n.r.ft, f?.i as number) };
  n.host.advance(200_000);
  n.run();
  n.host.advance(20_000);
  n.run();
  t.is(flows(n.r).length, 0, 'aged');
  const mine = n.recs.filter((r) => r.sourceip === ip('10.2.0.10') && r.direction_ing === 1);
  t.is(mine.filter((r) => r.teardown_time !== undefined).length, 1, 'one final record');
  t.deepEqual([mine.reduce((a, r) => a + r.diff_bytes, 0), mine.reduce((a, r) => a + r.diff_packets, 0)], [total.bytes, total.packets]);
  t.like(mine[0], { action: 'log|pass', nw_ace_uuid: 'aaaaaaaa-0000-0000-0000-000000000080', sourcevn: 'default-domain:admin:blue', destvn: 'default-domain:admin:red' });
});

test('NAT: the ingress record of a floating-IP flow carries the floating IP as its source; drops name their reason', (t) => {
  const n = exporting();
  rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '203.0.113.254'), { sport: 7000, dport: 9999 }), n.vifOf('b1'));
  n.run();
  rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 7001, dport: 22 }), n.vifOf('b1')); // no rule: implicit deny
  n.run();
  n.host.advance(1000);
  n.run();
  const nat = n.recs.find((r) => r.sport === 7000 && r.direction_ing === 1) as FlowRecord;
  t.is(nat.sourceip, ip('203.0.113.10'));
  t.is(nat.destvn, 'default-domain:admin:public');
  const back = n.recs.find((r) => r.dport === 7000) as FlowRecord;
  t.is(back.direction_ing, 0, 'from the outside host: egress, and one record only');
  t.is(back.destip, ip('203.0.113.10'));
  t.is(n.recs.filter((r) => r.flowuuid === back.flowuuid).length, 1);
  const denied = n.recs.find((r) => r.dport === 22) as FlowRecord;
  t.like(denied, { action: 'deny|implicit deny', drop_reason: 'DROP_POLICY', nw_ace_uuid: UUID_IMPLICIT_DENY });
});

test('ports are i16 as FlowDataIpv4 declares them; rate 0 exports log flows only', (t) => {
  const n = exporting(0);
  rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '10.2.0.11'), { sport: 40000, dport: 53 }), n.vifOf('b1'));
  n.run();
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 50000, dport: 80, flags: 'S' }), n.vifOf('b1'));
  n.run();
  n.host.advance(1000);
  n.run();
  t.true(n.recs.length > 0);
  t.true(n.recs.every((r) => r.action === 'log|pass'), 'only the logged flow (tcp 80)');
  t.is(n.recs.find((r) => r.direction_ing === 1 && r.dport === 80)?.sport, 50000 - 65536);
  t.true(n.fx.sampler.stats.disabled >= 2);
});

// ---------------------------------------------------------------------------------------------------
// Flows the datapath evicts (review 3, item 1) and the pair's second final record (item 3)

/** A TCP session b1:40000 → r1:80 (a `log` rule: every sample exported), packet by packet; @returns the bytes each side sent. */
function tcpSession(n: ReturnType<typeof exporting>, steps: [('b1' | 'r1'), string, number][]): { fwd: number; rev: number } {
  const sent = { fwd: 0, rev: 0 };
  for (const [who, flags, payload] of steps) {
    const f = who === 'b1'
      ? tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 40000, dport: 80, flags, payload })
      : tcpFrame(from('r1', n, '10.3.0.10', '10.2.0.10'), { sport: 80, dport: 40000, flags, payload });
    rx(n.r, f, n.vifOf(who));
    if (who === 'b1') sent.fwd += f.length;
    else sent.rev += f.length;
    n.run();
  }
  return sent;
}

const SESSION: [('b1' | 'r1'), string, number][] = [['b1', 'S', 0], ['r1', 'SA', 0], ['b1', 'A', 0], ['b1', 'PA', 500], ['r1', 'PA', 200], ['b1', 'R', 0]];
const fwdOf = (r: FlowRecord): boolean => r.sourceip === ip('10.2.0.10') && r.sport === -25536 && r.dport === 80;
const revOf = (r: FlowRecord): boolean => r.sourceip === ip('10.3.0.10') && r.sport === 80 && r.dport === -25536;
const sum = (rs: FlowRecord[]): number => rs.reduce((a, r) => a + r.diff_bytes, 0);

test('a TCP flow closed by RST before its first aging visit: the datapath evicts it, its records carry its bytes', (t) => {
  const n = exporting();
  const sent = tcpSession(n, SESSION);
  t.is(flows(n.r).length, 0, 'evicted by the datapath (RST: both directions DEAD)');
  t.is(n.recs.length, 0, 'no visit yet');
  n.host.advance(1000);
  n.run();
  const fwd = n.recs.filter((r) => fwdOf(r) && r.direction_ing === 1);
  const rev = n.recs.filter((r) => revOf(r) && r.direction_ing === 1);
  t.is(fwd.length, 1);
  t.is(rev.length, 1);
  t.like(fwd[0], { bytes: sent.fwd, diff_bytes: sent.fwd, packets: 4, action: 'log|pass', drop_reason: 'UNKNOWN', protocol: 6 });
  t.like(rev[0], { bytes: sent.rev, diff_bytes: sent.rev, packets: 2 });
  t.truthy(fwd[0].teardown_time);
  t.truthy(rev[0].teardown_time);
  t.is(n.agent.stats.evicted, 2);
  t.is(n.agent.stats.counterResets, 0);
});

test('the same 5-tuple reopened in the evicted slot before a visit: the old flow\'s bytes come from the trap, no 2^48 delta', (t) => {
  const n = exporting();
  const before = tcpSession(n, SESSION.slice(0, 4));
  n.host.advance(1000);
  n.run(); // the first visit: the agent's copies are non-zero now
  t.is(sum(n.recs.filter((r) => fwdOf(r) && r.direction_ing === 1)), before.fwd);
  const end = tcpSession(n, SESSION.slice(4));
  const again = tcpSession(n, [['b1', 'S', 0], ['r1', 'SA', 0], ['b1', 'A', 0], ['b1', 'PA', 100]]);
  n.host.advance(1000);
  n.run();
  t.true(n.recs.every((r) => r.diff_bytes < 1e6 && r.bytes < 1e6), JSON.stringify(n.recs.map((r) => r.diff_bytes)));
  const fwd = n.recs.filter((r) => fwdOf(r) && r.direction_ing === 1);
  const old = fwd.filter((r) => r.teardown_time !== undefined);
  t.is(old.length, 1, 'the old flow ended');
  t.like(old[0], { diff_bytes: end.fwd, bytes: before.fwd + end.fwd }, 'its final delta: from the counters the FLOW_MISS trap reported');
  const cur = fwd.filter((r) => r.flowuuid !== old[0].flowuuid);
  t.is(sum(cur), again.fwd, 'the new flow counts from zero');
  t.is(sum(n.recs.filter((r) => revOf(r) && r.direction_ing === 1)), before.rev + end.rev + again.rev);
  t.is(n.agent.stats.counterResets, 0);
});

test('an aged local pair: both final records have the reverse UUID, and each is exported ingress and egress', (t) => {
  const n = exporting();
  rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '10.2.0.11'), { sport: 5000, dport: 6000, payload: 30 }), n.vifOf('b1'));
  n.run();
  rx(n.r, udpFrame(from('b2', n, '10.2.0.11', '10.2.0.10'), { sport: 6000, dport: 5000, payload: 10 }), n.vifOf('b2'));
  n.run();
  rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '203.0.113.254'), { sport: 7000, dport: 9999 }), n.vifOf('b1')); // floating IP
  n.run();
  for (let s = 0; s < 400 && flows(n.r).length > 0; s++) {
    n.host.advance(1000);
    n.run();
  }
  t.is(flows(n.r).length, 0, 'aged');
  const ends = n.recs.filter((r) => r.teardown_time !== undefined);
  const fwd = ends.filter((r) => r.sport === 5000);
  const rev = ends.filter((r) => r.sport === 6000);
  t.deepEqual(fwd.map((r) => r.direction_ing).sort(), [0, 1]);
  t.deepEqual(rev.map((r) => r.direction_ing).sort(), [0, 1], 'the second flow of the pair is still a local flow');
  const fwdUuid = (fwd.find((r) => r.direction_ing === 1) as FlowRecord).flowuuid;
  const revUuid = (rev.find((r) => r.direction_ing === 1) as FlowRecord).flowuuid;
  t.true(fwd.every((r) => r.reverse_uuid === revUuid));
  t.true(rev.every((r) => r.reverse_uuid === fwdUuid));
  const nat = ends.filter((r) => r.sport === 7000 || r.dport === 7000);
  t.is(nat.length, 2);
  t.true(nat.every((r) => r.reverse_uuid !== undefined));
  t.is((nat.find((r) => r.direction_ing === 1) as FlowRecord).sourceip, ip('203.0.113.10'), 'the NAT source on the final ingress record');
});
