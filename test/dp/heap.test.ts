/**
 * The packet path keeps no memory per packet: 1 M frames of established flows through the datapath core
 * (routing on, two VMs) after a warm-up, with the heap sampled every 50 000 frames. The lowest heap of the
 * last rounds must not stand above the lowest of the first rounds by more than a small bound: garbage the
 * collector takes back (a sawtooth) is allowed, memory kept per frame (a trend) is not. Counted, not timed.
 */
import test from 'ava';
import { createDatapath, dpBurstEnd, dpRx } from '../../src/dp/datapath';
import { VR_VIF_MAC } from '../../src/dp/defs';
import { VIF_FLAG_L2_ENABLED, VIF_FLAG_L3_ENABLED, VIF_FLAG_POLICY_ENABLED, VIF_TYPE_VIRTUAL, macParse, vifAdd } from '../../src/dp/interface';
import { NH_ENCAP, NH_RCV, VR_RT_ARP_PROXY_FLAG, bridgeAdd, nhAdd, rtAdd } from '../../src/dp/nexthop';
import { MODULE_PARAM_DEFAULTS } from '../../src/params/module-params';
import { udpFrame } from '../../src/io/frame-build';
import { ipKeyWord, ipParse } from '../../src/agent/topology';
import { TestHost, testAgent } from '../helpers/test-host';

/** A host that counts what the datapath sends and keeps none of it. */
class CountingHost extends TestHost {
  txCount = 0;
  override tx(): void {
    this.txCount++;
  }
}

const MAC1 = '02:00:0a:01:01:03';
const MAC2 = '02:00:0a:01:01:04';

test('1 M frames through the datapath core: the heap does not grow with the packets', (t) => {
  t.timeout(60000);
  const host = new CountingHost();
  const r = createDatapath(host, { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: 256, vr_oflow_entries: 32 });
  const vrmac = macParse(VR_VIF_MAC) as Uint8Array;
  const flags = VIF_FLAG_POLICY_ENABLED | VIF_FLAG_L3_ENABLED | VIF_FLAG_L2_ENABLED;
  vifAdd(r.vifs, { idx: 3, type: VIF_TYPE_VIRTUAL, name: 'tap3', vrf: 1, nh: 10, flags, mtu: 1500, mac: vrmac, up: true });
  vifAdd(r.vifs, { idx: 4, type: VIF_TYPE_VIRTUAL, name: 'tap4', vrf: 1, nh: 11, flags, mtu: 1500, mac: vrmac, up: true });
  nhAdd(r.rt, { id: 1, type: NH_RCV, vif: 2, dmac: new Uint8Array(6) });
  nhAdd(r.rt, { id: 10, type: NH_ENCAP, vif: 3, dmac: macParse(MAC1) as Uint8Array });
  nhAdd(r.rt, { id: 11, type: NH_ENCAP, vif: 4, dmac: macParse(MAC2) as Uint8Array });
  rtAdd(r.rt, 1, ipKeyWord(ipParse('10.1.1.3')), { nh: 10, flags: VR_RT_ARP_PROXY_FLAG });
  rtAdd(r.rt, 1, ipKeyWord(ipParse('10.1.1.4')), { nh: 11, flags: VR_RT_ARP_PROXY_FLAG });
  bridgeAdd(r.rt, 1, macParse(MAC1) as Uint8Array, 3);
  bridgeAdd(r.rt, 1, macParse(MAC2) as Uint8Array, 4);
  const ip4 = ipKeyWord(ipParse('10.1.1.4'));
  const ip3 = ipKeyWord(ipParse('10.1.1.3'));
  const { run } = testAgent(r, host, { reverseNh: (_v, _s, d, nh) => (d === ip4 ? 11 : d === ip3 ? 10 : nh) });

  // 16 flows; their first packets trap, the agent sets them up, the held packets go out.
  const frames = Array.from({ length: 16 }, (_, k) =>
    udpFrame({ src: '10.1.1.3', dst: '10.1.1.4', srcMac: MAC1, dstMac: VR_VIF_MAC }, { sport: 1000 + k, dport: 2000, payload: 18 }));
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
  const gc = (globalThis as { gc?: () => void }).gc;
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
