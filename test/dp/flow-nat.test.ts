/**
 * flowNat at its own API (vr_inet_flow_nat): the rewrite a NAT flow applies with its reverse flow's key,
 * and every checksum right afterwards — IP header, TCP and UDP with the pseudo-header (UDP's "no
 * checksum" 0 kept), and an ICMP error's quoted header with its own checksum and the ICMP checksum.
 */
import test from 'ava';
import { IPPROTO_TCP, IPPROTO_UDP, VR_FLOW_FLAG_DNAT, VR_FLOW_FLAG_DPAT, VR_FLOW_FLAG_SNAT, VR_FLOW_FLAG_SPAT } from '../../src/dp/defs';
import { flowNat } from '../../src/dp/flow-nat';
import { FE_FLAGS, FE_K0, FE_K1, FE_K2, flowTableCreate } from '../../src/dp/flow-table';
import { Pkt, rd16 } from '../../src/dp/pkt';
import { ipParse, keyPorts } from '../../src/dp/proto-ip';
import { icmpError, inetChecksum, ipToBytes, tcpFrame, udpFrame } from '../../src/io/frame-build';
import { ipKeyWord, ipParse as ipOf } from '../../src/agent/topology';

const FWD = 0;
const REV = 4;
const VM = '10.1.1.3';
const FIP = '198.51.100.10';
const OUT = '10.9.9.9';
const w = (ip: string): number => ipKeyWord(ipOf(ip));

/** A table with flow FWD (VM:1234 → OUT:80, `fwdFlags`) and its reverse REV (OUT:80 → FIP:40000, `revFlags`). */
function table(fwdFlags: number, revFlags: number) {
  const t = flowTableCreate(64, 16);
  const set = (i: number, sip: string, dip: string, sport: number, dport: number, flags: number): void => {
    t.u32[i * 32 + (FE_K0 >> 2)] = keyPorts(sport, dport);
    t.i32[i * 32 + (FE_K1 >> 2)] = w(sip);
    t.i32[i * 32 + (FE_K2 >> 2)] = w(dip);
    t.u16[i * 64 + (FE_FLAGS >> 1)] = flags;
  };
  set(FWD, VM, OUT, 1234, 80, fwdFlags);
  set(REV, OUT, FIP, 80, 40000, revFlags);
  return t;
}

function pktOf(frame: Uint8Array): Pkt {
  const p = new Pkt();
  p.buf = frame;
  p.off = 0;
  p.len = frame.length;
  p.l3 = 14;
  ipParse(p);
  return p;
}

const addr = (b: Uint8Array, at: number): string => Array.from(b.subarray(at, at + 4)).join('.');

/** Whether the transport checksum of the packet (TCP or UDP, pseudo-header included) is right. */
function l4Right(p: Pkt): boolean {
  const b = p.buf;
  let pseudo = 0;
  for (let k = 0; k < 8; k += 2) pseudo += rd16(b, p.l3 + 12 + k);
  pseudo += p.proto + p.l4Len;
  return inetChecksum(b, p.l4, p.l4Len, pseudo) === 0;
}
const ipRight = (p: Pkt): boolean => inetChecksum(p.buf, p.l3, p.ihl, 0) === 0;

test('SNAT + SPAT of TCP: source address and port from the reverse key; IP and TCP checksums still right', (t) => {
  const ft = table(VR_FLOW_FLAG_SNAT | VR_FLOW_FLAG_SPAT, VR_FLOW_FLAG_DNAT | VR_FLOW_FLAG_DPAT);
  const p = pktOf(tcpFrame({ src: VM, dst: OUT }, { sport: 1234, dport: 80, flags: 'S', payload: 33 }));
  t.true(ipRight(p) && l4Right(p), 'right before');
  flowNat(ft, FWD, REV, p);
  t.is(addr(p.buf, p.l3 + 12), FIP);
  t.is(addr(p.buf, p.l3 + 16), OUT, 'the destination untouched');
  t.is(rd16(p.buf, p.l4), 40000);
  t.is(rd16(p.buf, p.l4 + 2), 80);
  t.is(p.proto, IPPROTO_TCP);
  t.true(ipRight(p), 'IP header checksum');
  t.true(l4Right(p), 'TCP checksum with the pseudo-header');
});

test('DNAT + DPAT of UDP on the way back: destination and port from the forward key; checksums right', (t) => {
  const ft = table(VR_FLOW_FLAG_SNAT | VR_FLOW_FLAG_SPAT, VR_FLOW_FLAG_DNAT | VR_FLOW_FLAG_DPAT);
  const p = pktOf(udpFrame({ src: OUT, dst: FIP }, { sport: 80, dport: 40000, payload: 21 }));
  flowNat(ft, REV, FWD, p);
  t.is(addr(p.buf, p.l3 + 16), VM);
  t.is(rd16(p.buf, p.l4 + 2), 1234);
  t.is(p.proto, IPPROTO_UDP);
  t.true(ipRight(p));
  t.true(l4Right(p), 'UDP checksum with the pseudo-header');
});

test('UDP without a checksum (0) stays without one after NAT', (t) => {
  const ft = table(VR_FLOW_FLAG_SNAT, 0);
  const f = udpFrame({ src: VM, dst: OUT }, { sport: 1234, dport: 80, payload: 8 });
  const p = pktOf(f);
  p.buf[p.l4 + 6] = 0;
  p.buf[p.l4 + 7] = 0;
  flowNat(ft, FWD, REV, p);
  t.is(addr(p.buf, p.l3 + 12), FIP);
  t.is(rd16(p.buf, p.l4 + 6), 0);
  t.true(ipRight(p));
});

test('SNAT only when the packet\'s source is the flow key\'s', (t) => {
  const ft = table(VR_FLOW_FLAG_SNAT, 0);
  const p = pktOf(udpFrame({ src: '10.1.1.77', dst: OUT }, { sport: 1234, dport: 80 }));
  const before = p.buf.slice();
  flowNat(ft, FWD, REV, p);
  t.deepEqual(p.buf, before);
});

test('an ICMP error coming back (DNAT): outer destination and the quoted header\'s source rewritten, all checksums right', (t) => {
  const ft = table(VR_FLOW_FLAG_SNAT | VR_FLOW_FLAG_SPAT, VR_FLOW_FLAG_DNAT);
  // What left the node (after SNAT): FIP:40000 → OUT:80 UDP. OUT answers port unreachable to FIP.
  const offending = udpFrame({ src: FIP, dst: OUT }, { sport: 40000, dport: 80, payload: 4 });
  const p = pktOf(icmpError({ src: OUT, dst: FIP }, 3, 3, offending));
  flowNat(ft, REV, FWD, p);
  t.is(addr(p.buf, p.l3 + 16), VM, 'outer destination: the VM');
  t.true(ipRight(p), 'outer IP checksum');
  const in3 = p.l4 + 8;
  t.is(addr(p.buf, in3 + 12), VM, 'the quoted header\'s source: the VM (the mirror image)');
  t.is(addr(p.buf, in3 + 16), OUT);
  t.is(inetChecksum(p.buf, in3, 20, 0), 0, 'quoted IP header checksum redone');
  t.is(inetChecksum(p.buf, p.l4, p.l4Len, 0), 0, 'ICMP checksum recomputed');
  t.deepEqual(Array.from(p.buf.subarray(p.l3 + 12, p.l3 + 16)), ipToBytes(OUT), 'outer source untouched');
});
