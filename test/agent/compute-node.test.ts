/**
 * The agent's flow plans on a routed datapath: network policy (pass, deny, implicit deny, out_policy,
 * no route), floating-IP NAT both ways with checksums and ICMP errors, fat flow, max_vm_flows, the audit.
 */
import test from 'ava';
import { topologyFrom } from '../../src/agent/topology';
import { VR_FLOW_ACTION_DROP, VR_FLOW_ACTION_FORWARD, VP_DROP_FLOW_ACTION_DROP, VP_DROP_FLOW_NAT_NO_RFLOW, VR_VIF_MAC } from '../../src/dp/defs';
import { directProgrammer } from '../../src/agent/dp-channel';
import { flowReqNew, flowSet, routerDrainWork } from '../../src/dp/flow';
import { FTI_ACTIVE, feKeyWord, feVrf } from '../../src/dp/flow-table';
import { icmpError, inetChecksum, ipToBytes, tcpFrame, udpFrame } from '../../src/io/frame-build';
import { rx } from '../helpers/test-host';
import { holdAccounting, invariants } from '../helpers/table-check';
import { checksumsOk, flows, from, node, topo } from '../helpers/compute-node';

test('policy: a pass rule forwards (and logs), an implicit deny and a deny rule drop with reason Policy', (t) => {
  const n = node();
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 40000, dport: 80, flags: 'S' }), n.vifOf('b1'));
  n.run();
  t.deepEqual(n.host.sent.map((s) => s.vif), [n.vifOf('r1')], 'blue → red port 80 is routed (the policy leaks the routes)');
  const ok = flows(n.r).find((f) => f.key === '10.2.0.10:40000>10.3.0.10:80/6');
  t.is(ok?.action, 2);
  const fi = ok?.i as number;
  t.is(n.agent.flows.read(fi).rule, 'aaaaaaaa-0000-0000-0000-000000000080');
  t.true(n.agent.logged(fi));
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 40001, dport: 22, flags: 'S' }), n.vifOf('b1'));
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 40002, dport: 443, flags: 'S' }), n.vifOf('b1'));
  n.run();
  const denied = flows(n.r).filter((f) => f.key.endsWith(':22/6') || f.key.endsWith(':443/6'));
  t.true(denied.length >= 2);
  for (const f of denied) t.deepEqual([f.action, f.reason], [VR_FLOW_ACTION_DROP, 'Policy']);
  t.is(n.agent.flows.read(denied[0].i).rule, '00000000-0000-0000-0000-000000000002', 'implicit deny');
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 40001, dport: 22, flags: 'S' }), n.vifOf('b1'));
  t.is(n.r.drops[VP_DROP_FLOW_ACTION_DROP], 3, 'the held SYNs and the new one met DROP');
});

test('without a policy, another network has no route: DROP NoDstRt, a short flow', (t) => {
  const n = node({ policies: false });
  rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 5000, dport: 53 }), n.vifOf('b1'));
  n.run();
  const f = flows(n.r).find((x) => x.key.startsWith('10.2.0.10:5000'));
  t.deepEqual([f?.action, f?.reason], [VR_FLOW_ACTION_DROP, 'NoDstRt']);
  t.true(n.agent.isShort(f?.i as number));
  n.host.advance(1500);
  n.run();
  t.is(flows(n.r).filter((x) => x.key.startsWith('10.2.0.10:5000')).length, 0, 'deleted on its first aging visit');
});

test('floating IP: SNAT out to the outside host, DNAT back, checksums right, ICMP errors rewritten', (t) => {
  const n = node();
  const out = n.vifOf('public-outside');
  const b1 = n.vifOf('b1');
  rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '203.0.113.254'), { sport: 7000, dport: 9999, payload: 20 }), b1);
  n.run();
  const sent = n.host.sent.splice(0);
  t.is(sent.length, 1);
  t.is(sent[0].vif, out);
  t.deepEqual(Array.from(sent[0].data.subarray(26, 30)), ipToBytes('203.0.113.10'), 'the source is the floating IP');
  t.true(checksumsOk(sent[0].data));
  const fwd = flows(n.r).find((f) => f.key === '10.2.0.10:7000>203.0.113.254:9999/17');
  const rev = flows(n.r).find((f) => f.key === '203.0.113.254:9999>203.0.113.10:7000/17');
  t.truthy(fwd && rev, 'forward keyed with the private address, reverse with the floating IP');
  t.is(fwd?.action, 3, 'NAT');
  t.truthy((fwd?.flags ?? 0) & 0x2, 'SNAT');
  t.truthy((rev?.flags ?? 0) & 0x8, 'DNAT');
  // The reply comes back to the VM's own address.
  const outside = { src: '203.0.113.254', dst: '203.0.113.10', srcMac: n.macOf('public-outside'), dstMac: VR_VIF_MAC };
  rx(n.r, udpFrame(outside, { sport: 9999, dport: 7000, payload: 33 }), out);
  const back = n.host.sent.splice(0);
  t.is(back[0].vif, b1);
  t.deepEqual(Array.from(back[0].data.subarray(30, 34)), ipToBytes('10.2.0.10'));
  t.true(checksumsOk(back[0].data));
  // A port unreachable from the outside host about the SNAT'ed datagram: outer and quoted header go back
  // to the VM's address.
  rx(n.r, icmpError(outside, 3, 3, sent[0].data), out);
  const err = n.host.sent.splice(0)[0];
  t.is(err.vif, b1);
  t.deepEqual(Array.from(err.data.subarray(30, 34)), ipToBytes('10.2.0.10'), 'outer destination');
  t.deepEqual(Array.from(err.data.subarray(34 + 8 + 12, 34 + 8 + 16)), ipToBytes('10.2.0.10'), 'quoted source');
  t.is(inetChecksum(err.data, 14, 20), 0);
  t.is(inetChecksum(err.data, 34 + 8, 20), 0, 'quoted header checksum');
  t.is(inetChecksum(err.data, 34, err.data.length - 34), 0, 'ICMP checksum');
  // The reverse flow deleted on its own: the NAT flow has no key to rewrite from (Flow NAT no rflow).
  const q = flowReqNew();
  const ri = rev?.i as number;
  Object.assign(q, { index: ri, flags: 0, k0: feKeyWord(n.r.ft, ri, 0), k1: feKeyWord(n.r.ft, ri, 1), k2: feKeyWord(n.r.ft, ri, 2), k3: feKeyWord(n.r.ft, ri, 3), proto: 17, vrf: feVrf(n.r.ft, ri) });
  t.is(flowSet(n.r, q, { err: 0, index: 0, bytes: 0, packets: 0 }).err, 0);
  routerDrainWork(n.r); // the deferred reset of the deleted entry
  rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '203.0.113.254'), { sport: 7000, dport: 9999, payload: 20 }), b1);
  t.is(n.host.sent.length, 0);
  t.is(n.r.drops[VP_DROP_FLOW_NAT_NO_RFLOW], 1);
});

test('floating IP: the outside host reaches the VM by its floating IP (DNAT first)', (t) => {
  const n = node();
  const outside = { src: '203.0.113.254', dst: '203.0.113.10', srcMac: n.macOf('public-outside'), dstMac: VR_VIF_MAC };
  rx(n.r, tcpFrame(outside, { sport: 33000, dport: 22, flags: 'S' }), n.vifOf('public-outside'));
  n.run();
  const f = n.host.sent.splice(0)[0];
  t.is(f.vif, n.vifOf('b1'));
  t.deepEqual(Array.from(f.data.subarray(30, 34)), ipToBytes('10.2.0.10'));
  t.true(checksumsOk(f.data));
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '203.0.113.254'), { sport: 22, dport: 33000, flags: 'SA', ack: 1 }), n.vifOf('b1'));
  const r = n.host.sent.splice(0)[0];
  t.is(r.vif, n.vifOf('public-outside'));
  t.deepEqual(Array.from(r.data.subarray(26, 30)), ipToBytes('203.0.113.10'), 'the reply leaves from the floating IP');
  t.true(checksumsOk(r.data));
});

for (const fat of [true, false]) {
  test(`fat flow (udp, 53) on the server VMI ${fat ? 'collapses' : 'does not collapse (without it)'} 100 client ports`, (t) => {
    const n = node({ fat });
    for (let k = 0; k < 100; k++) {
      rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '10.2.0.11'), { sport: 20000 + k, dport: 53 }), n.vifOf('b1'));
      n.run();
      rx(n.r, udpFrame(from('b2', n, '10.2.0.11', '10.2.0.10'), { sport: 53, dport: 20000 + k }), n.vifOf('b2'));
      n.run();
    }
    const pairs = flows(n.r).filter((f) => f.key.includes('10.2.0.11')).length / 2;
    t.is(pairs, fat ? 1 : 100);
    t.is(n.host.sent.length, 200, 'every query and answer was delivered');
    if (fat) t.truthy(flows(n.r).find((f) => f.key === '10.2.0.10:0>10.2.0.11:53/17'), 'the client port is zeroed');
    t.is(invariants(n.r.ft), null);
    t.is(holdAccounting(n.r.ft), null);
  });
}

test('max_vm_flows: a VM over its limit gets short DROP flows with reason FlowLim', (t) => {
  const n = node({}, 4);
  for (let k = 0; k < 3; k++) {
    rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '10.2.0.11'), { sport: 1000 + k, dport: 7 }), n.vifOf('b1'));
    n.run();
  }
  const fl = flows(n.r).filter((f) => f.key.startsWith('10.2.0.10:'));
  t.is(fl.filter((f) => f.action === 2).length, 2, 'two pairs fit in 4 flows');
  t.deepEqual(fl.filter((f) => f.action === 0).map((f) => f.reason), ['FlowLim']);
  t.is(n.agent.stats.limited, 1);
});

test('a lost trap: the audit turns the HOLD entry into a short flow (Audit) within a few seconds', (t) => {
  const n = node();
  rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '10.2.0.11'), { sport: 9, dport: 9 }), n.vifOf('b1'));
  n.host.traps.length = 0; // the trap never reaches the agent
  let seen = '';
  for (let s = 0; s < 600 && !seen; s++) {
    n.host.advance(500);
    n.run();
    const f = flows(n.r).find((x) => x.key.startsWith('10.2.0.10:9'));
    if (f && f.action === 0) seen = f.reason;
  }
  t.is(seen, 'Audit');
  t.is(n.agent.stats.audited, 1);
  n.host.advance(2000);
  n.run();
  t.is(flows(n.r).filter((x) => x.key.startsWith('10.2.0.10:9')).length, 0, 'and the aging deletes it');
  t.is(n.r.ft.info[FTI_ACTIVE], 0);
});

test('reload: a policy change re-evaluates established flows', (t) => {
  const n = node();
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 41000, dport: 80, flags: 'S' }), n.vifOf('b1'));
  n.run();
  t.is(flows(n.r).find((f) => f.key.startsWith('10.2.0.10:41000'))?.action, 2);
  const denyAll = JSON.parse(JSON.stringify(topo()));
  const rules = denyAll.network_policies[0]['network-policy'].network_policy_entries.policy_rule;
  rules[0].action_list.simple_action = 'deny';
  // A pass rule for another port keeps the networks connected (routes leaked); only pass rules connect.
  rules.push({ ...rules[0], rule_uuid: 'aaaaaaaa-0000-0000-0000-000000000443', dst_ports: [{ start_port: 443, end_port: 443 }], action_list: { simple_action: 'pass' } });
  n.cn.reconfigure(topologyFrom(denyAll, 't.json'));
  t.is(n.agent.reevaluate(), 1);
  n.run();
  const f = flows(n.r).find((x) => x.key.startsWith('10.2.0.10:41000'));
  t.deepEqual([f?.action, f?.reason], [VR_FLOW_ACTION_DROP, 'Policy']);
  // Without any pass rule the routes are withdrawn: a new flow finds no route.
  rules.splice(0);
  n.cn.reconfigure(topologyFrom(denyAll, 't.json'));
  n.agent.reevaluate();
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 41001, dport: 443, flags: 'S' }), n.vifOf('b1'));
  n.run();
  t.is(flows(n.r).find((x) => x.key.startsWith('10.2.0.10:41001'))?.reason, 'NoDstRt');
});

test('a full table: the reverse cannot be added, the forward becomes a short DROP flow (NoRevFlow)', (t) => {
  const n = node();
  rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '10.2.0.11'), { sport: 5555, dport: 6666 }), n.vifOf('b1'));
  t.is(n.host.traps.length, 1, 'the forward is a HOLD entry, trapped');
  // Before the agent answers, other flows take every bucket and overflow entry.
  const q = flowReqNew();
  const resp = { err: 0, index: 0, bytes: 0, packets: 0 };
  let fails = 0;
  for (let k = 1; fails < 5000; k++) {
    Object.assign(q, { index: -1, flags: 1, action: 2, k0: k, k1: 0x0a0a0a0a, k2: 0x0b0b0b0b ^ k, k3: 0, proto: 17, vrf: 1 });
    if (flowSet(n.r, q, resp).err !== 0) fails++;
  }
  t.is(n.r.ft.info[FTI_ACTIVE], n.r.ft.total, 'the table is full');
  n.run();
  const f = flows(n.r).find((x) => x.key === '10.2.0.10:5555>10.2.0.11:6666/17');
  t.deepEqual([f?.action, f?.reason], [VR_FLOW_ACTION_DROP, 'NoRevFlow']);
  t.is(flows(n.r).filter((x) => x.key.startsWith('10.2.0.11:6666')).length, 0);
  t.is(n.agent.stats.short, 1);
  t.is(invariants(n.r.ft), null);
});

test('both directions trapped before the agent answers: one pair, the reply adopted as the reverse; a no-op reload changes nothing', (t) => {
  const n = node({}, Infinity, true);
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 40000, dport: 80, flags: 'S' }), n.vifOf('b1'));
  rx(n.r, tcpFrame(from('r1', n, '10.3.0.10', '10.2.0.10'), { sport: 80, dport: 40000, flags: 'SA' }), n.vifOf('r1'));
  t.is(n.host.traps.length, 2);
  n.run();
  n.run();
  const fl = flows(n.r).filter((f) => f.key.includes(':40000'));
  t.deepEqual(fl.map((f) => f.action), [2, 2], 'both forward: the one-way rule admits the answers (stateful)');
  const rev = fl.find((f) => f.key.startsWith('10.3.0.10')) as (typeof fl)[0];
  t.is(n.agent.flows.read(rev.i).rule, 'aaaaaaaa-0000-0000-0000-000000000080', 'the reverse carries the pair\'s rule');
  t.is(n.agent.flows.read(rev.i).srcVn, 1, 'and its networks the other way round (red → blue)');
  n.cn.reconfigure(topologyFrom(topo(), 't.json'));
  t.is(n.agent.reevaluate(), 0);
  n.run();
  t.deepEqual(flows(n.r).filter((f) => f.key.includes(':40000')).map((f) => f.action), [2, 2]);
  t.is(invariants(n.r.ft), null);
});

test('a reload that withdraws the route: both directions drop and go on the next aging visit', (t) => {
  const n = node();
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 41000, dport: 80, flags: 'S' }), n.vifOf('b1'));
  n.run();
  t.is(flows(n.r).filter((f) => f.key.includes(':41000')).length, 2);
  n.cn.reconfigure(topologyFrom(topo({ policies: false }), 't.json'));
  t.is(n.agent.reevaluate(), 1);
  n.run();
  const fl = flows(n.r).filter((f) => f.key.includes(':41000'));
  t.deepEqual(fl.map((f) => [f.action, f.reason]), [[0, 'NoDstRt'], [0, 'NoDstRt']]);
  n.host.advance(16_000); // the TCP table's sweep
  n.run();
  t.is(flows(n.r).filter((f) => f.key.includes(':41000')).length, 0, 'short flows: deleted on their first visit');
});

test('max_vm_flows: the limit is released when the short pair ages', (t) => {
  const n = node({}, 4);
  for (let k = 0; k < 3; k++) {
    rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '10.2.0.11'), { sport: 2000 + k, dport: 7 }), n.vifOf('b1'));
    n.run();
  }
  t.is(n.agent.stats.limited, 1);
  // The two forwarding pairs age out after 180 s idle; then new flows fit again.
  n.host.advance(200_000);
  n.run();
  for (let k = 0; k < 30; k++) {
    n.host.advance(1000);
    n.run();
  }
  t.is(n.agent.flowCount, 0);
  rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '10.2.0.11'), { sport: 3000, dport: 7 }), n.vifOf('b1'));
  n.run();
  t.is(flows(n.r).find((f) => f.key === '10.2.0.10:3000>10.2.0.11:7/17')?.action, 2);
  t.is(n.agent.stats.limited, 1);
});

test('NAT keeps a TCP checksum of 0x0000 right, and UDP sends 0xffff for a computed 0', (t) => {
  const n = node();
  // Find a SYN whose TCP checksum is 0 (1 in 65 536 sequence numbers or so).
  let syn: Uint8Array | undefined;
  for (let seq = 0; seq < 1 << 20 && !syn; seq++) {
    const f = tcpFrame(from('b1', n, '10.2.0.10', '203.0.113.254'), { sport: 45000, dport: 443, flags: 'S', seq });
    if (f[34 + 16] === 0 && f[34 + 17] === 0) syn = f;
  }
  t.truthy(syn, 'a SYN with checksum 0');
  t.true(checksumsOk(syn as Uint8Array));
  rx(n.r, syn as Uint8Array, n.vifOf('b1'));
  n.run();
  const out = n.host.sent.splice(0);
  t.is(out.length, 1);
  t.deepEqual(Array.from(out[0].data.subarray(26, 30)), ipToBytes('203.0.113.10'));
  t.true(checksumsOk(out[0].data), 'the SNAT\'ed SYN checksums');
  // UDP: a datagram whose checksum after SNAT computes to 0 goes out as 0xffff (0 would mean "none").
  const pub = { src: '203.0.113.10', dst: '203.0.113.254', srcMac: n.macOf('b1'), dstMac: VR_VIF_MAC };
  let sport = 1;
  while (sport < 65536 && !(udpFrame(pub, { sport, dport: 9999, payload: 8 })[40] === 0xff && udpFrame(pub, { sport, dport: 9999, payload: 8 })[41] === 0xff)) sport++;
  t.true(sport < 65536);
  rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '203.0.113.254'), { sport, dport: 9999, payload: 8 }), n.vifOf('b1'));
  n.run();
  const u = n.host.sent.splice(0);
  t.deepEqual([u[0].data[40], u[0].data[41]], [0xff, 0xff]);
  t.true(checksumsOk(u[0].data));
});

test('vif --add and --delete on the node: the lowest free vif, routes in and out, conflicts named', (t) => {
  const n = node({ policies: false });
  const dp = directProgrammer(n.r);
  const spec = (name: string, ip: string, mac: string) =>
    topologyFrom({ networks: [{ name: 'blue', subnet: '10.2.0.0/24', gateway: '10.2.0.1' }], vms: [{ name, ip, mac, network: 'blue', attach: `veth-${name}` }] }, 'vif --add').vms[0];
  const x = spec('x1', '10.2.0.50', '02:00:00:00:00:50');
  t.is(n.cn.addable(x), undefined);
  const used = new Set(n.cn.vifs.map((v) => v.idx));
  const v = n.cn.addVm(dp, x, { fd: 0, io: 1 });
  t.false(used.has(v.idx));
  for (let k = 3; k < v.idx; k++) t.true(used.has(k), 'the lowest free index');
  t.is(v.os, 'veth-x1');
  t.regex(n.cn.addable(spec('x2', '10.2.0.50', '02:00:00:00:00:51')) ?? '', new RegExp(`^10\\.2\\.0\\.50 is already vif0/${v.idx} \\(x1\\)$`));
  t.regex(n.cn.addable(spec('x2', '10.2.0.51', '02:00:00:00:00:50')) ?? '', /^MAC 02:00:00:00:00:50 is already/);
  t.regex(n.cn.addable(spec('x1', '10.2.0.51', '02:00:00:00:00:51')) ?? '', /^VM x1 is already/);
  t.regex(n.cn.addable({ ...spec('x3', '10.2.0.52', '02:00:00:00:00:52'), network: 'nope' }) ?? '', /^no network nope/);

  // Traffic from b1 reaches the new vif, with the new VM's MAC.
  rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '10.2.0.50'), { sport: 7000, dport: 53 }), n.vifOf('b1'));
  n.run();
  const f = flows(n.r).find((y) => y.key.startsWith('10.2.0.10:7000'));
  t.is(f?.action, VR_FLOW_ACTION_FORWARD);
  const out = n.host.sent.filter((s) => s.vif === v.idx);
  t.is(out.length, 1, 'the held packet went out on the new vif');
  t.deepEqual(Array.from(out[0].data.subarray(0, 6)), [2, 0, 0, 0, 0, 0x50]);

  // Deleted: its route goes, new flows towards it find none.
  t.is(n.cn.removeVm(dp, v.idx)?.idx, v.idx);
  t.is(n.cn.vif(v.idx), undefined);
  rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '10.2.0.50'), { sport: 7001, dport: 53 }), n.vifOf('b1'));
  n.run();
  t.is(flows(n.r).find((y) => y.key.startsWith('10.2.0.10:7001'))?.reason, 'NoDstRt');
  t.is(n.cn.addable(x), undefined, 'free again');
});
