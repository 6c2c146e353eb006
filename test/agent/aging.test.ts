/**
 * The aging scheduler (reference vrouter-agent.md §3.2: its pacing, and the scan driven with an injected
 * clock over flows set up through the datapath) and the protocol-aging tables (§4.3 lookup, §4.4 quirks).
 */
import test from 'ava';
import { agingMultiplier, agingPace } from '../../src/agent/aging';
import { FlowMgr, allowAllEnv } from '../../src/agent/flow-mgr';
import { DirectChannel } from '../../src/agent/dp-channel';
import { FTI_ACTIVE, feAction, feDropReason, feFlags } from '../../src/dp/flow-table';
import { VR_FLOW_ACTION_DROP, VR_FLOW_ACTION_HOLD, VR_FLOW_DR_AUDIT_ENTRY } from '../../src/dp/defs';
import { udpFrame } from '../../src/io/frame-build';
import { rx, testAgent, testRouter } from '../helpers/test-host';

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
  // 10 h, 1 000 000 flows: 36 000 000 × 145 = 5 220 000 000 wraps to 925 032 704 → 925 ms (unwrapped
  // the interval would be the 1000 ms cap).
  const m = agingMultiplier(10 * 3600_000);
  t.is(m, 145);
  t.is(agingPace(10 * 3600_000, m, 1_000_000).intervalMs, 925);
  t.is(agingPace(8 * 3600_000, m, 1_000_000).intervalMs, 1000, 'below the wrap: the cap');
});

/** An agent holding `pairs` idle UDP pairs set up through the datapath, at the default age time. */
function filled(pairs: number) {
  const { r, host } = testRouter({ vr_flow_entries: 4 * pairs + 1024, vr_oflow_entries: 4096 });
  const { agent, run } = testAgent(r, host);
  for (let k = 0; k < pairs; k++) {
    rx(r, udpFrame({ src: '10.1.1.3', dst: '10.1.1.4', srcMac: '02:00:00:00:00:03', dstMac: '00:00:5e:00:01:00' }, { sport: 1024 + (k % 60000), dport: 1 + Math.floor(k / 60000) }));
    if (k % 64 === 63) run();
  }
  run();
  return { r, host, agent, run };
}

// The scheduler itself, driven by an injected clock: flows visited per run and the time between runs
// reproduce the §3.2 examples (after the first run, which starts from 200 flows and 1000 ms).
for (const [flows, interval, count] of [[1000, 1000, 100], [50000, 522, 145]] as const) {
  test(`the scan with ${flows} flows at 180 s visits ${count} flows every ${interval} ms`, (t) => {
    const { host, agent } = filled(flows / 2);
    t.is(agent.flowCount, flows);
    const c = agent.collectorFor(17, 1024, 1);
    // Runs happen at nextRunMs; step the clock from run to run and record what each visited.
    const runs: { at: number; visited: number }[] = [];
    for (let k = 0; k < 6; k++) {
      const before = agent.stats.scanned;
      host.advance(c.nextRunMs - host.now);
      agent.tick(host.now);
      runs.push({ at: host.now, visited: agent.stats.scanned - before });
    }
    t.is(runs[0].visited, 200, 'the first run: the initial FlowCountPerPass');
    for (let k = 1; k < runs.length; k++) {
      t.is(runs[k].visited, count, `run ${k}`);
      t.is(runs[k].at - runs[k - 1].at, interval, `interval before run ${k}`);
    }
    t.is(agent.stats.aged, 0, 'nothing idle for 180 s yet');
  });
}

test('a full sweep visits every flow once, then idle pairs age together after the age time', (t) => {
  const { host, agent, r, run } = filled(500);
  const c = agent.collectorFor(17, 1024, 1);
  let visits = 0;
  while (visits < 1000) {
    const before = agent.stats.scanned;
    host.advance(c.nextRunMs - host.now);
    agent.tick(host.now);
    visits += agent.stats.scanned - before;
  }
  t.is(visits, 1000, 'one sweep: 1000 visits, none twice');
  t.is(agent.stats.aged, 0);
  // 180 s later (the runs in between catch up at once), one more sweep of 10 s deletes every pair.
  host.advance(180_000);
  run();
  for (let k = 0; k < 12 && agent.flowCount > 0; k++) {
    host.advance(1000);
    run();
  }
  t.is(agent.flowCount, 0, 'idle for the age time: all aged');
  t.is(agent.stats.aged, 1000, 'both directions of every pair');
  t.is(r.ft.info[FTI_ACTIVE], 0, 'and deleted from the table');
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

test('("all", 0) and ("tcp", 0) change tables that cannot be removed: the override lasts until restart', (t) => {
  const m = mgr([{ proto: 0, port: 0, timeoutS: 42 }, { proto: 6, port: 0, timeoutS: 77 }]);
  t.is(m.collectorFor(47, 0, 0).ageMs, 42_000);
  t.is(m.collectorFor(6, 1000, 22).ageMs, 77_000);
  m.configureAging({ ageMs: 180_000, tcpScanMs: 15_000, agingTimeouts: [] });
  t.is(m.collectorFor(47, 0, 0).ageMs, 42_000, 'removed from the list, still in force');
  t.is(m.collectorFor(6, 1000, 22).ageMs, 77_000);
  m.configureAging({ ageMs: 180_000, tcpScanMs: 15_000, agingTimeouts: [{ proto: 0, port: 0, timeoutS: 9 }] });
  t.is(m.collectorFor(47, 0, 0).ageMs, 9_000, 'a new value replaces it');
});

test('a removed table keeps its flows and is found by lookups (2.22) until it is empty, then freed', (t) => {
  const { r, host } = testRouter({ vr_flow_entries: 1024, vr_oflow_entries: 64 });
  const { agent, run } = testAgent(r, host);
  agent.configureAging({ ageMs: 180_000, tcpScanMs: 15_000, agingTimeouts: [{ proto: 17, port: 53, timeoutS: 5 }, { proto: 17, port: 123, timeoutS: 7 }] });
  rx(r, udpFrame({ src: '10.1.1.3', dst: '10.1.1.4', srcMac: '02:00:00:00:00:03', dstMac: '00:00:5e:00:01:00' }, { sport: 5353, dport: 53 }));
  run();
  t.is(agent.flowCount, 2);
  agent.configureAging({ ageMs: 180_000, tcpScanMs: 15_000, agingTimeouts: [] });
  const key = (c: { proto: number; port: number; deleted: boolean }): string => `${c.proto}/${c.port}${c.deleted ? ' deleted' : ''}`;
  t.deepEqual(agent.collectors.map(key).sort(), ['0/0', '17/53 deleted', '6/0'], 'the empty 17/123 is freed at once');
  t.is(key(agent.collectorFor(17, 5353, 53)), '17/53 deleted', 'still found while it exists');
  t.is(agent.collectorOf(agent.collectors.find((c) => c.port === 53)?.members[0] as number).ageMs, 5000);
  // Its flows age with its 5 s; then it is freed.
  for (let k = 0; k < 20; k++) {
    host.advance(1000);
    run();
  }
  t.is(agent.flowCount, 0);
  t.deepEqual(agent.collectors.map(key).sort(), ['0/0', '6/0']);
  t.is(agent.collectorFor(17, 5353, 53).port, 0, 'gone: new flows take the default table');
});

test('more aging tables than the emulator holds: one line, and the old configuration stays', (t) => {
  const m = mgr([{ proto: 17, port: 53, timeoutS: 5 }]);
  const many = Array.from({ length: 5000 }, (_, k) => ({ proto: 17, port: 1000 + k, timeoutS: 5 }));
  t.throws(() => m.configureAging({ ageMs: 180_000, tcpScanMs: 15_000, agingTimeouts: many }), { message: /more than the 4096 the emulator holds/ });
  t.is(m.collectorFor(17, 5353, 53).ageMs, 5000);
  t.false(m.collectors.some((c) => c.deleted));
});

test('the audit of lost traps at the default table size: 2 s after its scan (1024 entries each 500 ms) finds the entry', (t) => {
  const { r, host } = testRouter({ vr_flow_entries: 524288, vr_oflow_entries: 8192 });
  const { agent, run } = testAgent(r, host);
  const t0 = host.now;
  rx(r, udpFrame({ src: '10.1.1.3', dst: '10.1.1.4', srcMac: '02:00:00:00:00:03', dstMac: '00:00:5e:00:01:00' }, { sport: 777, dport: 9 }));
  host.traps.length = 0; // the trap is lost
  let hold = -1;
  for (let k = 0; k < r.ft.total && hold < 0; k++) if (feAction(r.ft, k) === VR_FLOW_ACTION_HOLD && feFlags(r.ft, k) & 1) hold = k;
  t.true(hold >= 0);
  let at = -1;
  while (at < 0 && host.now - t0 < 400_000) {
    host.advance(500);
    run();
    if ((feFlags(r.ft, hold) & 1) && feAction(r.ft, hold) === VR_FLOW_ACTION_DROP) at = host.now - t0;
  }
  const found = 500 * Math.ceil((hold + 1) / 1024);
  t.is(at, found + 2000, `entry ${hold}: found by the scan at ${found} ms`);
  t.is(feDropReason(r.ft, hold), VR_FLOW_DR_AUDIT_ENTRY);
  t.is(agent.stats.audited, 1);
});

// Issue 16: tick() made one run per interval of any gap, so a capture whose clock jumps by years made
// `vrouter-emu replay` loop for ever (1e14 ms is ~2e11 audit runs). The timers now catch up a bounded
// amount of work, skip the rest of the gap and re-arm from the time given.

test('a clock jump of 1e14 ms: tick returns at once, the idle pairs age and a lost trap is audited', (t) => {
  const { host, agent, r, run } = filled(500);
  rx(r, udpFrame({ src: '10.1.1.3', dst: '10.1.1.4', srcMac: '02:00:00:00:00:03', dstMac: '00:00:5e:00:01:00' }, { sport: 777, dport: 9 }));
  host.traps.length = 0; // this trap is lost
  t.is(agent.flowCount, 1000);
  host.advance(1e14);
  const t0 = Date.now();
  agent.tick(host.now);
  const took = Date.now() - t0;
  t.true(took < 1000, `tick took ${took} ms`);
  run();
  t.is(agent.stats.audited, 1, 'the lost trap became a short flow');
  t.is(agent.stats.aged, 1001, 'both directions of every idle pair, and the short flow');
  t.is(agent.flowCount, 0);
  t.is(r.ft.info[FTI_ACTIVE], 0);
  // The timers go on from the new time.
  rx(r, udpFrame({ src: '10.1.1.3', dst: '10.1.1.4', srcMac: '02:00:00:00:00:03', dstMac: '00:00:5e:00:01:00' }, { sport: 778, dport: 9 }));
  run();
  t.is(agent.flowCount, 2);
  host.advance(200_000);
  run();
  t.is(agent.flowCount, 0, 'a new pair ages after the age time');
});

test('a jump longer than the catch-up but shorter than the age time ages nothing; one longer than the age time ages all', (t) => {
  // Age time 1 day: the 1000 runs caught up at 1 s span < 17 min, so only the sweep at `now` can age.
  const { r, host } = testRouter({ vr_flow_entries: 1024, vr_oflow_entries: 64 });
  const { agent, run } = testAgent(r, host, {}, 86_400_000);
  for (let k = 0; k < 20; k++) rx(r, udpFrame({ src: '10.1.1.3', dst: '10.1.1.4', srcMac: '02:00:00:00:00:03', dstMac: '00:00:5e:00:01:00' }, { sport: 2000 + k, dport: 53 }));
  run();
  t.is(agent.flowCount, 40);
  host.advance(43_200_000); // 12 h
  run();
  t.is(agent.flowCount, 40, 'idle for half the age time: kept');
  host.advance(43_200_000 + 1000); // 24 h and a second since the flows' last activity
  run();
  t.is(agent.flowCount, 0, 'idle for the age time: aged');
  t.is(agent.stats.aged, 40);
});

test('tick with a non-finite time is ignored (NaN, ±Infinity): no loop, and the timers go on after it', (t) => {
  const { host, agent, run } = filled(50);
  const c = agent.collectorFor(17, 1024, 1);
  const next = c.nextRunMs;
  for (const x of [NaN, Infinity, -Infinity]) {
    const t0 = Date.now();
    agent.tick(x);
    t.true(Date.now() - t0 < 1000);
  }
  t.is(c.nextRunMs, next, 'no timer moved');
  t.is(agent.stats.scanned, 0);
  host.advance(200_000);
  run();
  t.is(agent.flowCount, 0, 'aged as usual afterwards');
});
