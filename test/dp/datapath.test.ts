/**
 * The routed datapath (routing on, as in the TAP testbed): proxy ARP, the L3 path and its rewrite, TTL,
 * bridging without flows, and random traffic through all of it.
 */
import test from 'ava';
import fc from 'fast-check';
import {
  VP_DROP_DISCARD, VP_DROP_INVALID_ARP, VP_DROP_L2_NO_ROUTE, VP_DROP_TTL_EXCEEDED, VR_VIF_MAC,
} from '../../src/dp/defs';
import { macParse } from '../../src/dp/interface';
import { arpRequest, icmpEcho, inetChecksum, tcpFrame, udpFrame } from '../../src/io/frame-build';
import { rx, testHost } from '../helpers/test-host';
import { MAC1, MAC2, routedPair } from '../helpers/routed';
import { holdAccounting, invariants } from '../helpers/table-check';

/** Two VMs (vif0/3 10.1.1.3, vif0/4 10.1.1.4) in VRF 1 with gateway 10.1.1.1, as the agent programs them. */
const routed = () => routedPair(testHost());

const toVr = { src: '10.1.1.3', dst: '10.1.1.4', srcMac: MAC1, dstMac: VR_VIF_MAC };
const hex = (b: Uint8Array, a: number, n: number): string => Array.from(b.subarray(a, a + n), (x) => x.toString(16).padStart(2, '0')).join(':');

test('proxy ARP: the gateway and the VMs are answered with the vRouter MAC; others are flooded', (t) => {
  const { r, host } = routed();
  rx(r, arpRequest(MAC1, '10.1.1.3', '10.1.1.1'), 3);
  t.is(host.sent.length, 1);
  const rep = host.sent[0];
  t.is(rep.vif, 3, 'answered on the asking vif');
  t.is(hex(rep.data, 0, 6), MAC1, 'to the requester');
  t.is(hex(rep.data, 6, 6), VR_VIF_MAC);
  t.is((rep.data[20] << 8) | rep.data[21], 2, 'an ARP reply');
  t.is(hex(rep.data, 22, 6), VR_VIF_MAC, 'sha = vRouter MAC');
  t.deepEqual(Array.from(rep.data.subarray(28, 32)), [10, 1, 1, 1], 'spa = the address asked for');
  t.is(hex(rep.data, 32, 6), MAC1);
  rx(r, arpRequest(MAC1, '10.1.1.3', '10.1.1.4'), 3);
  t.is(hex(host.sent[1].data, 22, 6), VR_VIF_MAC, 'another VM: vRouter MAC too');
  host.sent.length = 0;
  rx(r, arpRequest(MAC1, '10.1.1.3', '10.1.1.99'), 3);
  t.deepEqual(host.sent.map((s) => s.vif), [4], 'an unknown address is flooded to the other VM');
  const bad = arpRequest(MAC1, '10.1.1.3', '10.1.1.1');
  bad[19] = 5; // hardware length 5
  rx(r, bad, 3);
  t.is(r.drops[VP_DROP_INVALID_ARP], 1);
});

test('L3: a flow-forwarded packet gets TTL − 1, a correct checksum and the VM\'s MAC; TTL 1 and unrouted addresses drop', (t) => {
  const { r, host, run } = routed();
  rx(r, udpFrame({ ...toVr, ttl: 64 }, { sport: 1000, dport: 2000, payload: 30 }), 3);
  run();
  t.is(host.sent.length, 1, 'the held packet went out once the agent answered');
  const f = host.sent[0];
  t.is(f.vif, 4);
  t.is(hex(f.data, 0, 6), MAC2, 'dst = the VM');
  t.is(hex(f.data, 6, 6), VR_VIF_MAC, 'src = the vRouter');
  t.is(f.data[14 + 8], 63, 'TTL − 1');
  t.is(inetChecksum(f.data, 14, 20), 0, 'the header checksum still holds');
  rx(r, udpFrame({ ...toVr, ttl: 1 }, { sport: 1000, dport: 2000 }), 3);
  t.is(r.drops[VP_DROP_TTL_EXCEEDED], 1);
  rx(r, icmpEcho({ ...toVr, dst: '10.1.1.1' }, false, 7, 1), 3);
  run();
  t.is(r.drops[VP_DROP_DISCARD], 1, 'the gateway address is not answered (a receive nexthop)');
});

test('bridging without flows: IPv6 multicast floods, unicast to a VM MAC goes to it, unknown MACs drop', (t) => {
  const { r, host } = routed();
  const v6 = new Uint8Array(80);
  v6.set([0x33, 0x33, 0, 0, 0, 1], 0);
  v6.set(macParse(MAC1) as Uint8Array, 6);
  v6[12] = 0x86;
  v6[13] = 0xdd;
  rx(r, v6, 3);
  t.deepEqual(host.sent.map((s) => s.vif), [4]);
  v6.set(macParse(MAC2) as Uint8Array, 0);
  rx(r, v6, 3);
  t.deepEqual(host.sent.map((s) => s.vif), [4, 4]);
  v6.set([2, 9, 9, 9, 9, 9], 0);
  rx(r, v6, 3);
  t.is(r.drops[VP_DROP_L2_NO_ROUTE], 1);
  t.is(r.ft.info[4], 0, 'no flow was made');
});

test('random traffic through the routed datapath: no exception, the table and hold accounting stay right', (t) => {
  const frame = fc.oneof(
    fc.uint8Array({ maxLength: 120 }),
    fc.record({ s: fc.nat(3), d: fc.nat(3), sp: fc.nat(65535), dp: fc.nat(8), ttl: fc.nat(3), kind: fc.nat(4), flags: fc.constantFrom('S', 'SA', 'A', 'FA', 'R') })
      .map(({ s, d, sp, dp, ttl, kind, flags }) => {
        const ip = { src: `10.1.1.${s + 2}`, dst: `10.1.1.${d + 1}`, srcMac: MAC1, dstMac: kind === 4 ? MAC2 : VR_VIF_MAC, ttl };
        if (kind === 0) return udpFrame(ip, { sport: sp, dport: dp });
        if (kind === 1) return tcpFrame(ip, { sport: sp, dport: dp, flags });
        if (kind === 2) return icmpEcho(ip, (sp & 1) === 1, sp, dp);
        if (kind === 3) return arpRequest(MAC1, ip.src, ip.dst);
        return udpFrame(ip, { sport: sp, dport: dp });
      }),
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(frame, fc.boolean()), { maxLength: 80 }), (frames) => {
      const { r, run } = routed();
      for (const [f, fromVm2] of frames) {
        rx(r, f, fromVm2 ? 4 : 3);
        run();
      }
      return invariants(r.ft) === null && holdAccounting(r.ft) === null;
    }),
    { numRuns: 300 },
  );
  t.pass();
});
