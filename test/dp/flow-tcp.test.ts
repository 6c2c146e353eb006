/**
 * TCP state on live flow pairs: the handshake digest, FIN and RST closes, two-step eviction and the
 * reuse of an evicted slot, and the agent's TCP scan when datapath eviction is off.
 */
import test from 'ava';
import fc from 'fast-check';
import {
  AGENT_TRAP_FLOW_MISS, VP_DROP_FLOW_UNUSABLE, VR_FLOW_FLAG_ACTIVE, VR_FLOW_FLAG_EVICTED, VR_FLOW_FLAG_EVICT_CANDIDATE,
  VR_FLOW_FLAG_NEW_FLOW, VR_FLOW_TCP_DEAD, VP_DROP_MAX,
} from '../../src/dp/defs';
import { feFlags, feRflow, feTcpFlags, flowFind, htValid } from '../../src/dp/flow-table';
import { keyPorts } from '../../src/dp/proto-ip';
import { tcpLetters } from '../../src/cli/flow-list';
import { RES_FORWARDED, RES_NO_FLOW } from '../../src/dp/router';
import { tcpFrame } from '../../src/io/frame-build';
import { VM_NH, parseTrap, rx, testAgent, testRouter } from '../helpers/test-host';
import { holdAccounting, invariants } from '../helpers/table-check';

const C = { src: '10.1.1.3', dst: '10.1.1.4' };
const S = { src: '10.1.1.4', dst: '10.1.1.3' };
const cli = (flags: string, seq: number, ack = 0, payload = 0): Uint8Array => tcpFrame(C, { sport: 40000, dport: 80, seq, ack, flags, payload });
const srv = (flags: string, seq: number, ack = 0, payload = 0): Uint8Array => tcpFrame(S, { sport: 80, dport: 40000, seq, ack, flags, payload });

function pair(r: ReturnType<typeof testRouter>['r']): [number, number] {
  const f = flowFind(r.ft, keyPorts(40000, 80), 0x0301010a, 0x0401010a, VM_NH, 6);
  return [f, feRflow(r.ft, f)];
}

function handshake(eviction = true) {
  const { r, host } = testRouter({}, { eviction });
  const a = testAgent(r, host);
  rx(r, cli('S', 100));
  a.run();
  rx(r, srv('SA', 900, 101));
  rx(r, cli('A', 101, 901));
  return { r, host, ...a };
}

test('a handshake leaves SSrEEr on both directions', (t) => {
  const { r } = handshake();
  const [f, rv] = pair(r);
  t.true(rv >= 0);
  t.is(tcpLetters(feTcpFlags(r.ft, f)), 'SSrEEr');
  t.is(tcpLetters(feTcpFlags(r.ft, rv)), 'SSrEEr');
  t.is(r.results[RES_FORWARDED], 3);
});

test('a FIN/ACK–FIN/ACK close ends DEAD, then both entries are evicted in two steps', (t) => {
  const { r } = handshake();
  const [f, rv] = pair(r);
  rx(r, cli('PA', 101, 901, 10));
  rx(r, srv('FA', 901, 111));
  rx(r, cli('FA', 111, 902));
  t.is(feTcpFlags(r.ft, f) & VR_FLOW_TCP_DEAD, 0, 'not dead before the last ACK');
  // The final ACK: step 1 (EVICT_CANDIDATE) happens with the packet, step 2 after the grace period.
  const last = srv('A', 902, 112);
  const { dpRx } = require('../../src/dp/datapath');
  dpRx(r, 3, last, 0, last.length);
  t.truthy(feTcpFlags(r.ft, f) & VR_FLOW_TCP_DEAD);
  t.truthy(feTcpFlags(r.ft, rv) & VR_FLOW_TCP_DEAD);
  t.truthy(feFlags(r.ft, f) & VR_FLOW_FLAG_EVICT_CANDIDATE);
  t.truthy(feFlags(r.ft, rv) & VR_FLOW_FLAG_EVICT_CANDIDATE);
  dpRx(r, 3, last, 0, last.length);
  t.is(r.drops[VP_DROP_FLOW_UNUSABLE], 1, 'a packet hitting an eviction candidate is Flow Unusable');
  const { routerDrainWork } = require('../../src/dp/flow');
  routerDrainWork(r);
  for (const i of [f, rv]) {
    t.is(feFlags(r.ft, i) & (VR_FLOW_FLAG_EVICTED | VR_FLOW_FLAG_ACTIVE), VR_FLOW_FLAG_EVICTED | VR_FLOW_FLAG_ACTIVE);
    t.false(htValid(r.ft, i), 'the slot is free for a new key');
  }
  t.is(pair(r)[0], -1);
});

test('an RST makes both directions DEAD at once', (t) => {
  const { r } = handshake(false);
  const [f, rv] = pair(r);
  rx(r, srv('RA', 901, 101));
  t.is(tcpLetters(feTcpFlags(r.ft, f)), 'SSrEErRD');
  t.is(tcpLetters(feTcpFlags(r.ft, rv)), 'SSrEErRD');
});

test('an evicted slot is reused: NEW_FLOW, FLOW_MISS trap with the last flow\'s counters', (t) => {
  const { r, host, agent, run } = handshake();
  const [f] = pair(r);
  rx(r, cli('RA', 101, 901));
  t.is(pair(r)[0], -1);
  // The same 5-tuple again lands in the same (first free) slot of its bucket.
  rx(r, cli('S', 5000));
  const again = flowFind(r.ft, keyPorts(40000, 80), 0x0301010a, 0x0401010a, VM_NH, 6);
  t.is(again, f);
  const tr = parseTrap(host.traps[host.traps.length - 1].frame);
  t.is(tr.cmd, AGENT_TRAP_FLOW_MISS);
  t.is(tr.index, f);
  t.is(tr.packets, 3, 'the evicted flow\'s counters are reported');
  t.is(feFlags(r.ft, f) & (VR_FLOW_FLAG_EVICTED | VR_FLOW_FLAG_NEW_FLOW), 0);
  run();
  t.is(agent.stats.evicted, 2, 'the agent learnt of the eviction from the reused index');
  t.truthy(feRflow(r.ft, f) >= 0);
});

test('with datapath eviction off, the agent\'s TCP scan deletes DEAD pairs within 15 s', (t) => {
  const { r, host, run } = handshake(false);
  rx(r, cli('RA', 101, 901));
  const [f, rv] = pair(r);
  t.truthy(feTcpFlags(r.ft, f) & VR_FLOW_TCP_DEAD);
  t.is(feFlags(r.ft, f) & VR_FLOW_FLAG_EVICT_CANDIDATE, 0);
  for (let s = 0; s < 15; s++) {
    host.advance(1000);
    run();
  }
  t.is(feFlags(r.ft, f) & VR_FLOW_FLAG_ACTIVE, 0);
  t.is(feFlags(r.ft, rv) & VR_FLOW_FLAG_ACTIVE, 0);
});

test('idle pairs age after flow_cache_timeout, active ones stay', (t) => {
  const { r, host } = testRouter();
  const a = testAgent(r, host, {}, 10_000);
  rx(r, cli('S', 1));
  a.run();
  const quiet = tcpFrame(C, { sport: 40001, dport: 81, seq: 1, flags: 'S' });
  rx(r, quiet);
  a.run();
  for (let s = 0; s < 30; s++) {
    host.advance(1000);
    rx(r, cli('A', 2, 0)); // keeps the first flow busy
    a.run();
  }
  t.true(pair(r)[0] >= 0, 'the busy flow is still there');
  t.is(flowFind(r.ft, keyPorts(40001, 81), 0x0301010a, 0x0401010a, VM_NH, 6), -1, 'the idle flow aged out');
});

test('random TCP exchanges between two endpoints keep the table consistent', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.record({
        dir: fc.boolean(), flags: fc.constantFrom('S', 'SA', 'A', 'PA', 'FA', 'RA', 'R'), port: fc.nat(3), seq: fc.nat(5),
        wait: fc.constantFrom(100, 100, 100, 3000, 20000),
      })),
      fc.boolean(),
      (pkts, eviction) => {
        const { r, host } = testRouter({ vr_flow_entries: 16, vr_oflow_entries: 4 }, { eviction });
        const a = testAgent(r, host);
        for (const p of pkts) {
          const fr = p.dir
            ? tcpFrame(C, { sport: 40000 + p.port, dport: 80, seq: p.seq, ack: p.seq, flags: p.flags })
            : tcpFrame(S, { sport: 80, dport: 40000 + p.port, seq: p.seq, ack: p.seq, flags: p.flags });
          rx(r, fr);
          a.run();
          host.advance(p.wait);
          a.run();
        }
        let drops = 0;
        for (let k = 0; k < VP_DROP_MAX; k++) drops += r.drops[k];
        if (r.results[RES_FORWARDED] + drops + r.results[RES_NO_FLOW] !== pkts.length) return false;
        // Pairs point at each other.
        for (let i = 0; i < r.ft.total; i++) {
          if (!htValid(r.ft, i)) continue;
          const rv = feRflow(r.ft, i);
          if (rv >= 0 && htValid(r.ft, rv) && feRflow(r.ft, rv) !== i) return false;
        }
        if (invariants(r.ft) !== null || holdAccounting(r.ft) !== null) return false;
        // The agent's flows are the kernel's (or were evicted under it), and its pairs are symmetric.
        const ag = a.agent;
        for (let i = 0; i < r.ft.total; i++) {
          if (!ag.has(i)) continue;
          const f = feFlags(r.ft, i);
          if ((f & VR_FLOW_FLAG_ACTIVE) === 0) return false;
          const rv = ag.flows.read(i).rindex;
          if (rv >= 0 && ag.flows.read(rv).rindex !== i) return false;
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});
