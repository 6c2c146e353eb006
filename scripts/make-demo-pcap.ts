/**
 * Writes examples/demo.pcap: what a capture on VM 10.1.1.3's tap might hold over ~20 s. Pings to its
 * neighbour, a TCP transfer with a FIN close, a refused TCP connection (RST), DNS queries, an ICMP port
 * unreachable, and a TCP session left open. Run: npx tsx scripts/make-demo-pcap.ts
 */
import * as fs from 'fs';
import * as path from 'path';
import { MAC_A, MAC_B, icmpEcho, icmpError, tcpFrame, udpFrame } from '../src/io/frame-build';

const VM = '10.1.1.3';
const PEER = '10.1.1.4';
const DNS = '10.1.1.2';
const out: { tsMs: number; data: Uint8Array }[] = [];
const t0 = Date.UTC(2015, 11, 11, 9, 0, 0);
let t = t0;
const at = (dt: number, data: Uint8Array): void => {
  t += dt;
  out.push({ tsMs: t, data });
};
const fromVm = { src: VM, dst: PEER, srcMac: MAC_A, dstMac: MAC_B };
const toVm = { src: PEER, dst: VM, srcMac: MAC_B, dstMac: MAC_A };

// ping x3
for (let s = 1; s <= 3; s++) {
  at(s === 1 ? 0 : 1000, icmpEcho(fromVm, false, 0x1234, s));
  at(0.3, icmpEcho(toVm, true, 0x1234, s));
}
// TCP transfer 10.1.1.3:40000 -> 10.1.1.4:80 with a FIN close
let cs = 1000;
let ss = 5000;
at(10, tcpFrame(fromVm, { sport: 40000, dport: 80, seq: cs, flags: 'S' }));
at(0.2, tcpFrame(toVm, { sport: 80, dport: 40000, seq: ss, ack: cs + 1, flags: 'SA' }));
at(0.2, tcpFrame(fromVm, { sport: 40000, dport: 80, seq: cs + 1, ack: ss + 1, flags: 'A' }));
cs += 1;
ss += 1;
at(0.1, tcpFrame(fromVm, { sport: 40000, dport: 80, seq: cs, ack: ss, flags: 'PA', payload: 120 }));
cs += 120;
for (let k = 0; k < 6; k++) {
  at(0.5, tcpFrame(toVm, { sport: 80, dport: 40000, seq: ss, ack: cs, flags: 'A', payload: 1448 }));
  ss += 1448;
  at(0.1, tcpFrame(fromVm, { sport: 40000, dport: 80, seq: cs, ack: ss, flags: 'A' }));
}
at(1, tcpFrame(toVm, { sport: 80, dport: 40000, seq: ss, ack: cs, flags: 'FA' }));
at(0.2, tcpFrame(fromVm, { sport: 40000, dport: 80, seq: cs, ack: ss + 1, flags: 'FA' }));
at(0.2, tcpFrame(toVm, { sport: 80, dport: 40000, seq: ss + 1, ack: cs + 1, flags: 'A' }));
// A refused connection: SYN answered by RST
at(2000, tcpFrame(fromVm, { sport: 40001, dport: 23, seq: 777, flags: 'S' }));
at(0.3, tcpFrame(toVm, { sport: 23, dport: 40001, seq: 0, ack: 778, flags: 'RA' }));
// DNS
for (let q = 0; q < 3; q++) {
  at(500, udpFrame({ src: VM, dst: DNS, srcMac: MAC_A, dstMac: MAC_B }, { sport: 53000 + q, dport: 53, payload: 40 }));
  at(1.5, udpFrame({ src: DNS, dst: VM, srcMac: MAC_B, dstMac: MAC_A }, { sport: 53, dport: 53000 + q, payload: 90 }));
}
// A datagram to a closed port, answered by ICMP port unreachable (it rides the UDP flow's reverse)
const probe = udpFrame(fromVm, { sport: 33434, dport: 33434, payload: 32 });
at(1000, probe);
at(0.4, icmpError(toVm, 3, 3, probe));
// A TCP session left open (established, idle)
at(3000, tcpFrame(fromVm, { sport: 40002, dport: 22, seq: 42, flags: 'S' }));
at(0.2, tcpFrame(toVm, { sport: 22, dport: 40002, seq: 9000, ack: 43, flags: 'SA' }));
at(0.2, tcpFrame(fromVm, { sport: 40002, dport: 22, seq: 43, ack: 9001, flags: 'A' }));
at(0.5, tcpFrame(toVm, { sport: 22, dport: 40002, seq: 9001, ack: 43, flags: 'PA', payload: 21 }));
// A last ping much later
at(15000, icmpEcho(fromVm, false, 0x1234, 4));
at(0.3, icmpEcho(toVm, true, 0x1234, 4));

import { pcapBuild } from '../src/io/pcap';
const file = path.join(__dirname, '..', 'examples', 'demo.pcap');
fs.writeFileSync(file, pcapBuild(out));
console.log(`wrote ${file}: ${out.length} frames`);
