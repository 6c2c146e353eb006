/**
 * The flow stage on the packet path: miss → HOLD → trap, hold queue limits, hold limit, table full,
 * FLOW_SET semantics and errors, drops of malformed frames.
 */
import test, { ExecutionContext } from 'ava';
import fc from 'fast-check';
import {
  AGENT_TRAP_FLOW_MISS, VP_DROP_FLOW_ACTION_DROP, VP_DROP_FLOW_QUEUE_LIMIT_EXCEEDED, VP_DROP_FLOW_TABLE_FULL,
  VP_DROP_FLOW_UNUSABLE, VP_DROP_FRAGMENTS, VP_DROP_INTERFACE_DROP, VP_DROP_INVALID_PROTOCOL, VP_DROP_PULL,
  VR_FLOW_ACTION_DROP, VR_FLOW_ACTION_FORWARD, VR_FLOW_ACTION_HOLD, VR_FLOW_FLAG_ACTIVE, VR_FLOW_FLAG_MODIFIED,
  VR_FLOW_FLAG_NEW_FLOW, VR_FLOW_FLAG_RFLOW_VALID, VR_FLOW_FLAG_VRFT, VP_DROP_MAX, VP_DROP_FLOW_INVALID_PROTOCOL,
} from '../../src/dp/defs';
import { EBADF, EBUSY, EEXIST, EINVAL, ENOENT, ENOSPC, FlowReq, FlowResp, flowReqNew, flowSet, routerDrainWork } from '../../src/dp/flow';
import { FTI_ACTION_COUNT, FTI_HOLD_COUNT, feAction, feFlags, feKeyWord, flowFind, flowHoldEntries, htValid } from '../../src/dp/flow-table';
import { keyPorts } from '../../src/dp/proto-ip';
import { RES_FORWARDED, RES_NO_FLOW } from '../../src/dp/router';
import { arpRequest, icmpEcho, icmpError, tcpFrame, udpFrame } from '../../src/io/frame-build';
import { VM_NH, parseTrap, rx, testAgent, testRouter } from '../helpers/test-host';

const A = { src: '10.1.1.3', dst: '10.1.1.4' };
const udp = (sport: number, dport = 53, ip = A): Uint8Array => udpFrame(ip, { sport, dport, payload: 20 });

function keyReq(sport: number, dport: number): FlowReq {
  const q = flowReqNew();
  q.k0 = keyPorts(sport, dport);
  q.k1 = 0x0301010a;
  q.k2 = 0x0401010a;
  q.k3 = VM_NH;
  q.proto = 17;
  q.vrf = 1;
  return q;
}

const resp = (): FlowResp => ({ err: 0, index: -1, bytes: 0, packets: 0 });

test('a miss creates a HOLD entry and traps FLOW_MISS once; the 4th packet exceeds the queue', (t) => {
  const { r, host } = testRouter();
  for (let k = 0; k < 5; k++) rx(r, udp(1000));
  t.is(host.traps.length, 1);
  const tr = parseTrap(host.traps[0].frame);
  t.is(tr.cmd, AGENT_TRAP_FLOW_MISS);
  const i = flowFind(r.ft, keyPorts(1000, 53), 0x0301010a, 0x0401010a, VM_NH, 17);
  t.is(tr.index, i);
  t.is(feAction(r.ft, i), VR_FLOW_ACTION_HOLD);
  t.is(feFlags(r.ft, i) & VR_FLOW_FLAG_NEW_FLOW, 0, 'the trap clears NEW_FLOW');
  t.is(r.drops[VP_DROP_FLOW_QUEUE_LIMIT_EXCEEDED], 2);
  t.is(r.ft.info[FTI_HOLD_COUNT], 1);
});

test('the agent\'s FORWARD flushes the held packets through the new action', (t) => {
  const { r, host } = testRouter();
  const { run } = testAgent(r, host);
  for (let k = 0; k < 3; k++) rx(r, udp(1001));
  t.is(r.results[RES_FORWARDED], 0);
  run();
  t.is(r.results[RES_FORWARDED], 3);
  rx(r, udp(1001));
  t.is(r.results[RES_FORWARDED], 4);
  t.is(r.ft.info[FTI_ACTION_COUNT], 1, 'Processed counts the entry that left HOLD');
  t.is(flowHoldEntries(r.ft), 0);
});

test('a DROP decision drops the held packets as Flow Action Drop', (t) => {
  const { r, host } = testRouter();
  const { run } = testAgent(r, host, { decide: () => ({ action: VR_FLOW_ACTION_DROP, dropReason: 13 }) });
  rx(r, udp(1002));
  rx(r, udp(1002));
  run();
  t.is(r.drops[VP_DROP_FLOW_ACTION_DROP], 2);
  rx(r, udp(1002));
  t.is(r.drops[VP_DROP_FLOW_ACTION_DROP], 3);
});

test('above 4096 entries in HOLD new flows are Flow Unusable (flow_hold_limit on)', (t) => {
  const { r } = testRouter({ vr_flow_entries: 65536, vr_oflow_entries: 1024 });
  for (let k = 0; k < 4098; k++) rx(r, udp(1 + (k % 60000), 53 + Math.floor(k / 60000)));
  t.is(flowHoldEntries(r.ft), 4097);
  t.is(r.drops[VP_DROP_FLOW_UNUSABLE], 1);
  const { r: r2 } = testRouter({ vr_flow_entries: 65536, vr_oflow_entries: 1024 }, { flowHoldLimit: false });
  for (let k = 0; k < 4098; k++) rx(r2, udp(1 + k));
  t.is(flowHoldEntries(r2.ft), 4098);
  t.is(r2.drops[VP_DROP_FLOW_UNUSABLE], 0);
});

test('one bucket and no overflow: the 5th new flow is Flow Table Full', (t) => {
  const { r } = testRouter({ vr_flow_entries: 4, vr_oflow_entries: 0 });
  for (let k = 0; k < 5; k++) rx(r, udp(2000 + k));
  t.is(r.drops[VP_DROP_FLOW_TABLE_FULL], 1);
  rx(r, udp(2000));
  t.is(r.drops[VP_DROP_FLOW_TABLE_FULL], 1, 'an existing flow still matches');
});

// FLOW_SET errors, one case each (vr_flow_set, reference §8.2).
const errCase = test.macro({
  exec(t: ExecutionContext, setup: (r: ReturnType<typeof testRouter>['r']) => FlowReq, want: number) {
    const { r } = testRouter({ vr_flow_entries: 4, vr_oflow_entries: 0, vr_vrfs: 16 });
    const q = setup(r);
    t.is(flowSet(r, q, resp()).err, want);
  },
  title: (name = '') => `FLOW_SET ${name}`,
});

function added(r: ReturnType<typeof testRouter>['r'], sport: number): number {
  const q = keyReq(sport, 53);
  q.flags = VR_FLOW_FLAG_ACTIVE;
  q.action = VR_FLOW_ACTION_FORWARD;
  const res = flowSet(r, q, resp());
  if (res.err !== 0) throw new Error(`setup add failed: ${res.err}`);
  return res.index;
}

test('add', errCase, () => {
  const q = keyReq(1, 53);
  q.flags = VR_FLOW_FLAG_ACTIVE;
  return q;
}, 0);
test('add of an existing key → EEXIST', errCase, (r) => {
  added(r, 1);
  const q = keyReq(1, 53);
  q.flags = VR_FLOW_FLAG_ACTIVE;
  return q;
}, -EEXIST);
test('add into a full bucket → ENOSPC', errCase, (r) => {
  for (let k = 1; k <= 4; k++) added(r, k);
  const q = keyReq(5, 53);
  q.flags = VR_FLOW_FLAG_ACTIVE;
  return q;
}, -ENOSPC);
test('set on an entry being modified → EBUSY', errCase, (r) => {
  const i = added(r, 1);
  Atomics.or(r.ft.u16, (i * 128 + 38) >> 1, VR_FLOW_FLAG_MODIFIED);
  const q = keyReq(1, 53);
  q.index = i;
  q.flags = VR_FLOW_FLAG_ACTIVE;
  return q;
}, -EBUSY);
test('set with another key → EBADF', errCase, (r) => {
  const i = added(r, 1);
  const q = keyReq(2, 53);
  q.index = i;
  q.flags = VR_FLOW_FLAG_ACTIVE;
  return q;
}, -EBADF);
test('set on a delete-marked entry → EINVAL', errCase, (r) => {
  const i = added(r, 1);
  const d = keyReq(1, 53);
  d.index = i;
  flowSet(r, d, resp()); // delete; the slot is freed only by deferred work
  const q = keyReq(1, 53);
  q.index = i;
  q.flags = VR_FLOW_FLAG_ACTIVE;
  return q;
}, -EINVAL);
test('delete of an inactive index → EINVAL', errCase, () => {
  const q = keyReq(1, 53);
  q.index = 2;
  return q;
}, -EINVAL);
test('ACTIVE set on an inactive index → ENOENT', errCase, () => {
  const q = keyReq(1, 53);
  q.index = 2;
  q.flags = VR_FLOW_FLAG_ACTIVE;
  return q;
}, -ENOENT);
test('RFLOW_VALID naming an inactive reverse → EINVAL', errCase, (r) => {
  const i = added(r, 1);
  const q = keyReq(1, 53);
  q.index = i;
  q.flags = VR_FLOW_FLAG_ACTIVE | VR_FLOW_FLAG_RFLOW_VALID;
  q.rindex = (i + 1) % 4;
  return q;
}, -EINVAL);
test('VRFT to a VRF beyond vr_vrfs → EINVAL', errCase, (r) => {
  const i = added(r, 1);
  const q = keyReq(1, 53);
  q.index = i;
  q.flags = VR_FLOW_FLAG_ACTIVE | VR_FLOW_FLAG_VRFT;
  q.dvrf = 16;
  return q;
}, -EINVAL);
test('add of an existing key naming an inactive reverse → EINVAL (values are checked before the add)', errCase, (r) => {
  added(r, 1);
  const q = keyReq(1, 53);
  q.flags = VR_FLOW_FLAG_ACTIVE | VR_FLOW_FLAG_RFLOW_VALID;
  q.rindex = 3;
  return q;
}, -EINVAL);
test('add into a full bucket with RFLOW_VALID but no reverse → EINVAL, not ENOSPC', errCase, (r) => {
  for (let k = 1; k <= 4; k++) added(r, k);
  const q = keyReq(9, 53);
  q.flags = VR_FLOW_FLAG_ACTIVE | VR_FLOW_FLAG_RFLOW_VALID;
  q.rindex = -1;
  return q;
}, -EINVAL);
test('an index beyond the table → EINVAL', errCase, () => {
  const q = keyReq(1, 53);
  q.index = 4;
  q.flags = VR_FLOW_FLAG_ACTIVE;
  return q;
}, -EINVAL);

test('a delete frees the slot after the deferred work, and held packets meet DROP', (t) => {
  const { r } = testRouter({ vr_flow_entries: 4, vr_oflow_entries: 0 });
  rx(r, udp(7));
  rx(r, udp(7));
  const i = flowFind(r.ft, keyPorts(7, 53), 0x0301010a, 0x0401010a, VM_NH, 17);
  const q = keyReq(7, 53);
  q.index = i;
  t.is(flowSet(r, q, resp()).err, 0);
  t.is(flowFind(r.ft, keyPorts(7, 53), 0x0301010a, 0x0401010a, VM_NH, 17), -1, 'a delete-marked entry no longer matches');
  routerDrainWork(r);
  t.is(r.drops[VP_DROP_FLOW_ACTION_DROP], 2);
  t.is(feFlags(r.ft, i) & VR_FLOW_FLAG_ACTIVE, 0);
  t.false(htValid(r.ft, i), 'the slot is free');
  t.is(r.ft.info[FTI_ACTION_COUNT], 1, 'deleting a HOLD entry counts as processed');
});

test('non-head fragments take the head\'s ports and may not create a flow', (t) => {
  const { r, host } = testRouter();
  const { run } = testAgent(r, host);
  const head = udpFrame({ ...A, id: 77, mf: true }, { sport: 3000, dport: 4000, payload: 64 });
  const tail = udpFrame({ ...A, id: 77, fragOffset: 9 }, { sport: 0x0102, dport: 0x0304, payload: 8 });
  rx(r, head);
  run();
  rx(r, tail);
  t.is(r.results[RES_FORWARDED], 2, 'the tail matched the head\'s flow');
  // The flow goes; a late fragment finds no flow and may not create one.
  const i = flowFind(r.ft, keyPorts(3000, 4000), 0x0301010a, 0x0401010a, VM_NH, 17);
  const q = keyReq(3000, 4000);
  q.index = i;
  flowSet(r, q, resp());
  routerDrainWork(r);
  rx(r, tail);
  t.is(r.drops[VP_DROP_FLOW_UNUSABLE], 1);
  // Addresses whose key words are negative as int32 (x.x.x.128 and above) work the same.
  const hi = { src: '192.168.7.200', dst: '172.16.9.250' };
  rx(r, udpFrame({ ...hi, id: 5, mf: true }, { sport: 3001, dport: 4001, payload: 64 }));
  run();
  rx(r, udpFrame({ ...hi, id: 5, fragOffset: 9 }, { sport: 1, dport: 2, payload: 8 }));
  t.is(r.results[RES_FORWARDED], 4);
  // A fragment whose head was never seen is a fragment error.
  rx(r, udpFrame({ ...A, id: 78, fragOffset: 9 }, { sport: 1, dport: 2 }));
  t.is(r.drops[VP_DROP_FRAGMENTS], 1);
});

test('ARP, IPv6, multicast and broadcast frames take no flow', (t) => {
  const { r } = testRouter();
  rx(r, arpRequest('02:00:00:00:00:01', '10.1.1.3', '10.1.1.1'));
  const v6 = new Uint8Array(60);
  v6[12] = 0x86;
  v6[13] = 0xdd;
  rx(r, v6);
  rx(r, udp(5, 53, { src: '10.1.1.3', dst: '224.0.0.251' }));
  rx(r, udp(5, 53, { src: '10.1.1.3', dst: '255.255.255.255' }));
  t.is(r.results[RES_NO_FLOW], 4);
  t.is(r.ft.info[FTI_HOLD_COUNT], 0);
});

test('malformed frames are counted under their drop reason', (t) => {
  const { r } = testRouter();
  rx(r, new Uint8Array(10)); // runt
  t.is(r.drops[VP_DROP_INTERFACE_DROP], 1);
  const bad = icmpEcho(A, false, 1, 1);
  bad[14] = 0x44; // IHL 4
  rx(r, bad);
  t.is(r.drops[VP_DROP_INVALID_PROTOCOL], 1);
  const cut = tcpFrame(A, { sport: 1, dport: 2, flags: 'S' }).subarray(0, 30); // IP header cut short
  rx(r, cut);
  t.is(r.drops[VP_DROP_PULL], 1);
  const short = udp(9).slice();
  short[16] = 0x10; // total length 4096 > frame
  rx(r, short);
  t.is(r.drops[VP_DROP_PULL], 2);
});

test('random frames never throw and every frame is accounted for', (t) => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ minLength: 0, maxLength: 200 }), { maxLength: 60 }), fc.boolean(), (frames, ipv4) => {
      const { r, host } = testRouter({ vr_flow_entries: 16, vr_oflow_entries: 4 });
      const { run } = testAgent(r, host);
      for (const f of frames) {
        if (ipv4 && f.length >= 34) {
          f[12] = 0x08;
          f[13] = 0x00;
          f[14] = 0x40 | (f[14] & 0x0f);
        }
        rx(r, f);
        run();
      }
      let drops = 0;
      for (let k = 0; k < VP_DROP_MAX; k++) drops += r.drops[k];
      // Each frame is forwarded, dropped or not subject to flows, exactly once (run() flushed the held ones).
      return r.results[RES_FORWARDED] + drops + r.results[RES_NO_FLOW] === frames.length;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('the trap carries the vif, the flow index and the key nexthop', (t) => {
  const { r, host } = testRouter();
  rx(r, udp(4242));
  const f = host.traps[0].frame;
  const i = parseTrap(f).index;
  t.is((f[14] << 8) | f[15], 3, 'hdr_ifindex');
  t.is((f[16] << 8) | f[17], 1, 'hdr_vrf');
  t.is(((f[24] << 24) | (f[25] << 16) | (f[26] << 8) | f[27]) >>> 0, VM_NH, 'hdr_cmd_param_1 = key nh');
  t.is(feKeyWord(r.ft, i, 0), keyPorts(4242, 53));
});

test('a first packet with RST does not leak hold accounting (the agent, not eviction, removes it)', (t) => {
  const { r, host } = testRouter({ vr_flow_entries: 1024, vr_oflow_entries: 64 });
  const { run } = testAgent(r, host);
  for (let k = 0; k < 50; k++) {
    rx(r, tcpFrame(A, { sport: 5000 + k, dport: 80, seq: 1, flags: 'R' }));
    run();
  }
  t.is(flowHoldEntries(r.ft), 0, 'no entry is left counted as in HOLD');
  t.is(r.ft.info[FTI_ACTION_COUNT], 50);
});

test('an ICMP error quoting an ICMP error cannot form a key: Flow Invalid Protocol', (t) => {
  const { r } = testRouter();
  const inner = icmpError({ src: '10.1.1.4', dst: '10.1.1.3' }, 3, 3, udp(5));
  rx(r, icmpError({ src: '10.1.1.3', dst: '10.1.1.4' }, 3, 1, inner));
  t.is(r.drops[VP_DROP_FLOW_INVALID_PROTOCOL], 1);
  // A port unreachable quoting a UDP datagram is keyed as that flow's reverse.
  rx(r, icmpError({ src: '10.1.1.4', dst: '10.1.1.3' }, 3, 3, udp(5)));
  t.true(flowFind(r.ft, keyPorts(53, 5), 0x0401010a, 0x0301010a, VM_NH, 17) >= 0);
});
