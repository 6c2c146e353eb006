/**
 * The router (router.ts) at its own API and the verdicts of its pipeline: every frame ends in exactly one
 * of the outcome counters (forwarded, dropped, not subject to flows; held ones again when they go out; traps beside them); dropPkt counts the
 * reason and the outcome; a second router over the same shared memory sees the same tables and counters.
 */
import test from 'ava';
import { VP_DROP_PULL, VP_DROP_TTL_EXCEEDED } from '../../src/dp/defs';
import { MODULE_PARAM_DEFAULTS } from '../../src/params/module-params';
import { RES_DROPPED, RES_FORWARDED, RES_HELD, RES_MAX, RES_NO_FLOW, RES_TRAPPED, createRouter, dropPkt, routerShared, routerSharedCreate } from '../../src/dp/router';
import { arpRequest, udpFrame } from '../../src/io/frame-build';
import { rx, testHost } from '../helpers/test-host';
import { MAC1, VM1_TO_VM2, routedPair } from '../helpers/routed';

const outcomes = (res: Float64Array): number[] => Array.from(res.subarray(0, RES_MAX));

test('pipeline verdicts: held then forwarded, not subject to flows, dropped with its reason; the trap counted beside them', (t) => {
  const { r, host, run } = routedPair(testHost());
  rx(r, udpFrame(VM1_TO_VM2, { sport: 1000, dport: 53 }), 3);
  t.is(r.results[RES_HELD], 1, 'a new flow: held');
  t.is(host.traps.length, 1, 'and trapped to the agent');
  run();
  t.is(r.results[RES_FORWARDED], 1, 'the held packet forwarded once the agent answered');
  rx(r, udpFrame(VM1_TO_VM2, { sport: 1000, dport: 53 }), 3);
  t.is(r.results[RES_FORWARDED], 2, 'the flow is set: forwarded at once');
  rx(r, arpRequest(MAC1, '10.1.1.3', '10.1.1.4'), 3);
  t.is(r.results[RES_NO_FLOW], 1, 'ARP is not subject to flows');
  rx(r, udpFrame({ ...VM1_TO_VM2, ttl: 1 }, { sport: 1000, dport: 53 }), 3);
  t.is(r.drops[VP_DROP_TTL_EXCEEDED], 1);
  rx(r, udpFrame(VM1_TO_VM2, { sport: 1000, dport: 53 }).subarray(0, 20), 3);
  t.is(r.drops[VP_DROP_PULL], 1, 'a truncated IPv4 frame');
  t.is(r.results[RES_DROPPED], 2);
  // [forwarded, held, dropped, no flow, trapped]: the held packet counts as held and, once out, as
  // forwarded; the trap to the agent is counted beside the frame's own outcome.
  t.deepEqual(outcomes(r.results), [2, 1, 2, 1, 1]);
  t.is(r.results[RES_TRAPPED], 1, 'one trap: the new flow\'s first packet');
});

test('dropPkt counts the reason and the outcome, and remembers the last reason', (t) => {
  const r = createRouter(testHost(), { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: 64, vr_oflow_entries: 16 });
  dropPkt(r, VP_DROP_PULL);
  dropPkt(r, VP_DROP_PULL);
  dropPkt(r, VP_DROP_TTL_EXCEEDED);
  t.is(r.drops[VP_DROP_PULL], 2);
  t.is(r.drops[VP_DROP_TTL_EXCEEDED], 1);
  t.is(r.results[RES_DROPPED], 3);
  t.is(r.lastDrop, VP_DROP_TTL_EXCEEDED);
});

test('a router used before the datapath is initialised says so; two routers over one shared memory see each other\'s counters', (t) => {
  const params = { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: 64, vr_oflow_entries: 16 };
  const sh = routerSharedCreate(params);
  const a = createRouter(testHost(), params, {}, sh);
  const b = createRouter(testHost(), params, {}, routerShared(a));
  t.throws(() => a.reinject(a, a.pkt), { message: /before datapath init/ });
  dropPkt(a, VP_DROP_PULL);
  t.is(b.drops[VP_DROP_PULL], 1, 'drop stats are shared');
  a.ft.u32[0] = 0xdeadbeef;
  t.is(b.ft.u32[0], 0xdeadbeef, 'the flow table is shared');
  t.is(b.results[RES_DROPPED], 0, 'outcome counters are per router');
});
