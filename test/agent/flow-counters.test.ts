/**
 * How the agent reads a flow's kernel counters (reference vrouter-agent.md §1.8; review 3 items 1 and 9):
 * 48-bit bytes and 40-bit packets extended across a wrap only when the decrease can be one, a counter
 * that restarted under the flow taken as no change, and reads while the datapath thread counts (the low
 * word stored before the carry into the overflow word) never taken for a wrap.
 */
import test from 'ava';
import { Worker } from 'worker_threads';
import { FlowExport, FlowRecord } from '../../src/agent/flow-export';
import { FE_BYTES, FE_BYTES_OFLOW, FE_SIZE } from '../../src/dp/flow-table';
import { udpFrame } from '../../src/io/frame-build';
import { xorshift32 } from '../../src/lib/xorshift';
import { flows, from, node } from '../helpers/compute-node';
import { rx } from '../helpers/test-host';

/** A node exporting everything, with one local UDP flow b1:5000 → b2:6000 (one 72-byte packet); @returns its index too. */
function oneFlow() {
  const n = node();
  const recs: FlowRecord[] = [];
  n.agent.sampler = new FlowExport(n.agent, n.r.ft, n.cn.exportEnv('192.0.2.1'), { rate: -1, disable: false }, () => n.host.now, xorshift32(9), (r) => recs.push(r));
  rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '10.2.0.11'), { sport: 5000, dport: 6000, payload: 30 }), n.vifOf('b1'));
  n.run();
  const i = (flows(n.r).find((f) => f.key.startsWith('10.2.0.10:5000')) as { i: number }).i;
  /** The next visit's ingress deltas of the flow. */
  const deltas = (): number[] => {
    recs.length = 0;
    n.host.advance(1000);
    n.run();
    return recs.filter((r) => r.sport === 5000 && r.direction_ing === 1).map((r) => r.diff_bytes);
  };
  return { ...n, i, deltas, lo: (i * FE_SIZE + FE_BYTES) >> 2, of: (i * FE_SIZE + FE_BYTES_OFLOW) >> 1 };
}

test('counters: a 48-bit wrap is taken when it can be one; any other decrease is a reset (delta 0, counted, copy kept)', (t) => {
  const { r, deltas, lo, of, agent } = oneFlow();
  const setBytes = (v: number): void => {
    r.ft.u32[lo] = v % 2 ** 32;
    r.ft.u16[of] = Math.floor(v / 2 ** 32);
  };
  t.deepEqual(deltas(), [72]);
  setBytes(2 ** 48 - 100);
  t.deepEqual(deltas(), [2 ** 48 - 172]);
  setBytes(50);
  t.deepEqual(deltas(), [150], 'a wrap: from the upper half of the range to the lower');
  setBytes(10);
  t.deepEqual(deltas(), [], 'a decrease that is no wrap: no change taken');
  t.is(agent.stats.counterResets, 1);
  setBytes(60);
  t.deepEqual(deltas(), [10], 'still against the copy (2^48 + 50)');
});

test('counters: a low word that wrapped before the datapath stored the carry is not taken for a 48-bit wrap', (t) => {
  const { r, deltas, lo, of } = oneFlow();
  const ft = r.ft;
  t.deepEqual(deltas(), [72]);
  ft.u32[lo] = 2 ** 32 - 10;
  t.deepEqual(deltas(), [2 ** 32 - 82]);
  ft.u32[lo] = 5; // the datapath stored the wrapped low word; the overflow word is still 0
  t.deepEqual(deltas(), [], 'read as no change');
  ft.u16[of] = 1; // the carry
  t.deepEqual(deltas(), [15]);
});

test('counters read while another thread counts (low word first, then the carry): the deltas add up to what it counted', async (t) => {
  const { r, i, lo, of, agent, host } = oneFlow();
  // Visits every (agent) second; a worker that the OS holds back must not let the flow age meanwhile.
  agent.configureAging({ ageMs: 28_000_000, tcpScanMs: 15_000 });
  let sum = 0;
  agent.sampler = { sample: (k, db) => ((sum += k === i ? db : 0), true) };
  // The worker counts as flowStatsAdd does, 64 KiB a packet: the low word wraps every 65536 packets.
  const ctl = new SharedArrayBuffer(16);
  const w = new Worker(`
    const { workerData: { sab, ctl, lo, of } } = require('worker_threads');
    const u32 = new Uint32Array(sab), u16 = new Uint16Array(sab), state = new Int32Array(ctl, 0, 1), total = new Float64Array(ctl, 8, 1);
    let n = 0;
    while (Atomics.load(state, 0) === 0) {
      const ob = u32[lo];
      const nb = (ob + 0x10000) >>> 0;
      u32[lo] = nb;
      if (nb < ob) u16[of]++;
      n++;
    }
    total[0] = n * 0x10000;
    Atomics.store(state, 0, 2);
  `, { eval: true, workerData: { sab: r.ft.sab, ctl, lo, of } });
  const state = new Int32Array(ctl, 0, 1);
  const before = agent.flows.read(i).bytes;
  // Reads go on until the worker has carried into the overflow word many times and the agent has read
  // the counters many times meanwhile: a count of events, not a wall-clock time (the machine is loaded).
  const overflow = new Uint16Array(r.ft.sab);
  const giveUp = Date.now() + 60_000;
  let reads = 0;
  while (overflow[of] < 17 || reads < 20_000) {
    if (Date.now() > giveUp) {
      t.fail(`after 60 s: ${overflow[of]} carries, ${reads} reads`);
      break;
    }
    for (let k = 0; k < 1000; k++, reads++) {
      host.advance(1000);
      agent.tick(host.now);
    }
    await new Promise((res) => setImmediate(res));
  }
  Atomics.store(state, 0, 1);
  while (Atomics.load(state, 0) !== 2) await new Promise((res) => setTimeout(res, 5));
  await w.terminate();
  host.advance(1000);
  agent.tick(host.now);
  const counted = new Float64Array(ctl, 8, 1)[0];
  t.true(counted > 2 ** 36, `the worker counted ${counted} bytes`);
  t.is(agent.stats.aged, 0);
  t.is(sum, counted + 72 - before, `${reads} reads`);
});
