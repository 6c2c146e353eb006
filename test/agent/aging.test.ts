/**
 * The aging scheduler's pacing (reference vrouter-agent.md §3.2 examples) and the protocol-aging table
 * lookup order (§4.3), with an injected clock.
 */
import test from 'ava';
import { agingMultiplier, agingPace } from '../../src/agent/aging';
import { FlowMgr, allowAllEnv } from '../../src/agent/flow-mgr';
import { DirectChannel } from '../../src/agent/dp-channel';
import { testRouter } from '../helpers/test-host';

test('the multiplier is 145 at 180 s', (t) => {
  t.is(agingMultiplier(180_000), 145);
});

// §3.2: N = 1 000 → 1000 ms, 100 flows; 50 000 → 522 ms, 145; 262 144 → 100 ms, 145.
for (const [n, interval, count, sweep] of [[1000, 1000, 100, 10], [50000, 522, 145, 180], [262144, 100, 145, 180]] as const) {
  test(`pacing at 180 s with ${n} flows: every ${interval} ms, ${count} flows, a sweep in ≈${sweep} s`, (t) => {
    const p = agingPace(180_000, agingMultiplier(180_000), n);
    t.is(p.intervalMs, interval);
    t.is(p.countPerPass, count);
    const sweepS = (n / p.countPerPass) * (p.intervalMs / 1000);
    t.true(Math.abs(sweepS - sweep) / sweep < 0.02, `${sweepS}`);
  });
}

test('an empty table re-arms at 1000 ms; the 32-bit product wraps above ~8.2 h as in the agent', (t) => {
  t.deepEqual(agingPace(180_000, 145, 0), { intervalMs: 1000, countPerPass: 100 });
  const m = agingMultiplier(10 * 3600_000);
  const wrapped = agingPace(10 * 3600_000, m, 1000);
  t.true(wrapped.intervalMs <= 1000);
});

function mgr(aging: { proto: number; port: number; timeoutS: number }[]) {
  const { r, host } = testRouter();
  return new FlowMgr(r.ft, new DirectChannel(r), allowAllEnv(), { ageMs: 180_000, tcpScanMs: 15_000, agingTimeouts: aging }, () => host.now);
}

test('protocol aging lookup (§4.3): port tables, then the protocol table, then the default', (t) => {
  const m = mgr([
    { proto: 6, port: 80, timeoutS: 30 },
    { proto: 17, port: 53, timeoutS: 5 },
    { proto: 17, port: 0, timeoutS: 60 },
    { proto: 1, port: 0, timeoutS: 20 },
  ]);
  const key = (c: { proto: number; port: number }): string => `${c.proto}/${c.port}`;
  t.is(key(m.collectorFor(6, 40000, 80)), '6/80', 'client → server: the destination port');
  t.is(key(m.collectorFor(6, 80, 40000)), '6/80', 'its reverse (sport 80): the same table');
  t.is(key(m.collectorFor(6, 40000, 22)), '6/0', 'TCP without a port table: the TCP table');
  t.is(key(m.collectorFor(17, 5353, 53)), '17/53');
  t.is(key(m.collectorFor(17, 5353, 123)), '17/0', 'udp protocol-only table');
  t.is(key(m.collectorFor(1, 77, 0)), '1/0');
  t.is(key(m.collectorFor(47, 0, 0)), '0/0', 'GRE: the default table');
  t.is(m.collectorFor(17, 5353, 53).ageMs, 5000);
  // sport and dport both configured: the source port's table (the tie-break of 2.22 is unreachable).
  const both = mgr([{ proto: 6, port: 80, timeoutS: 30 }, { proto: 6, port: 8080, timeoutS: 10 }]);
  t.is(key(both.collectorFor(6, 8080, 80)), '6/8080');
});

test('("all", 0) sets the default table\'s age; a removed table takes no new flows', (t) => {
  const m = mgr([{ proto: 0, port: 0, timeoutS: 42 }, { proto: 17, port: 53, timeoutS: 5 }]);
  t.is(m.collectorFor(47, 0, 0).ageMs, 42_000);
  m.configureAging({ ageMs: 180_000, tcpScanMs: 15_000, agingTimeouts: [] });
  t.is(m.collectorFor(17, 5353, 53).port, 0, 'udp/53 is gone for new flows');
  t.true(m.collectors.some((c) => c.proto === 17 && c.port === 53 && c.deleted), 'but the table stays for its flows');
});
