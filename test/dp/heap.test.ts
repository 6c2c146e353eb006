/**
 * The packet path keeps no memory per packet: 1 M frames of established flows through the datapath core
 * (routing on, two VMs) after a warm-up, with the heap sampled every 50 000 frames. The lowest heap of the
 * last rounds must not stand above the lowest of the first rounds by more than a small bound: garbage the
 * collector takes back (a sawtooth) is allowed, memory kept per frame (a trend) is not. Counted, not timed.
 */
import test from 'ava';
import { dpBurstEnd, dpRx } from '../../src/dp/datapath';
import { udpFrame } from '../../src/io/frame-build';
import { ManualHost } from '../../src/dp/manual-host';
import { VM1_TO_VM2, routedPair } from '../helpers/routed';

/** A host that counts what the datapath sends and keeps none of it. */
class CountingHost extends ManualHost {
  txCount = 0;
  constructor() {
    super({ now: 1_000_000, seed: 12345, keepSent: false });
  }
  override tx(): void {
    this.txCount++;
  }
}

test('1 M frames through the datapath core: the heap does not grow with the packets', (t) => {
  t.timeout(60000);
  const host = new CountingHost();
  const { r, run } = routedPair(host);

  // 16 flows; their first packets trap, the agent sets them up, the held packets go out.
  const frames = Array.from({ length: 16 }, (_, k) =>
    udpFrame(VM1_TO_VM2, { sport: 1000 + k, dport: 2000, payload: 18 }));
  for (const f of frames) dpRx(r, 3, f, 0, f.length);
  dpBurstEnd(r);
  run();
  t.is(host.txCount, 16, 'the held first packets were forwarded');

  const BURST = 32;
  const pump = (n: number): void => {
    for (let k = 0; k < n; k += BURST) {
      for (let b = 0; b < BURST; b++) {
        const f = frames[(k + b) & 15];
        dpRx(r, 3, f, 0, f.length);
      }
      dpBurstEnd(r);
    }
  };
  pump(200_000); // warm-up: the JIT settles, lazily made structures exist
  // ava runs each file in a child process with --expose-gc (package.json): with a collection before each
  // sample the figures are the retained heap. Without it a young-generation sawtooth of ~16 B per frame
  // (garbage, collected) hid the trend and made the test fail by chance.
  const gc = (globalThis as { gc?: () => void }).gc;
  t.truthy(gc, 'run under ava with nodeArguments --expose-gc (package.json)');
  const ROUND = BURST * 1563; // ≈ 50 000
  const ROUNDS = 20; // ≈ 1 M frames
  const heap: number[] = [];
  const sentBefore = host.txCount;
  for (let k = 0; k < ROUNDS; k++) {
    pump(ROUND);
    gc?.();
    heap.push(process.memoryUsage().heapUsed);
  }
  t.is(host.txCount - sentBefore, ROUNDS * ROUND, 'every frame was forwarded (none held, trapped or dropped)');
  const first = Math.min(...heap.slice(0, 5));
  const last = Math.min(...heap.slice(-5));
  const growth = last - first;
  // 1 M frames: keeping even 8 bytes a frame would be 8 MB; 2 MB leaves room for the runtime's own noise.
  t.true(growth < 2 * 1024 * 1024, `heap grew ${(growth / 1024).toFixed(0)} KiB over 1 M frames (samples, KiB: ${heap.map((h) => Math.round(h / 1024)).join(' ')})`);
});
