/**
 * Two (or more) compute nodes in one thread, joined by a wire: each node is a routed datapath on the
 * manual-clock host with its agent, programmed from one cluster topology exactly as `start --node` does
 * (ComputeNode on the node's part of it, programFabric, the static route source); what a node sends on
 * its fabric vif (vif0/0) is delivered to the node (or the test's bare-metal VTEP) that owns the
 * destination MAC, or to all on a broadcast. vhost0 is played by the test: it answers ARP for the node's
 * fabric address, as the host's kernel would.
 */
import { ComputeNode, FabricIf, VIF_FABRIC, VIF_VHOST } from '../../src/agent/compute-node';
import { DirectChannel, directProgrammer } from '../../src/agent/dp-channel';
import { DpMirror } from '../../src/agent/dp-mirror';
import { FlowMgr } from '../../src/agent/flow-mgr';
import { Overlay, StaticRoutes, localTopology } from '../../src/agent/overlay';
import { Topology, topologyFrom } from '../../src/agent/topology';
import { createDatapath, dpBurstEnd, dpRx } from '../../src/dp/datapath';
import { ETH_P_ARP } from '../../src/dp/defs';
import { macString } from '../../src/dp/interface';
import { ManualHost } from '../../src/dp/manual-host';
import { rd16, rd32 } from '../../src/dp/pkt';
import type { Router } from '../../src/dp/router';
import type { Encap } from '../../src/lib/topology-types';
import { MODULE_PARAM_DEFAULTS } from '../../src/params/module-params';

export interface TestNode {
  name: string;
  r: Router;
  host: ManualHost;
  cn: ComputeNode;
  agent: FlowMgr;
  ch: DirectChannel;
  mac: Uint8Array;
  ip: number;
  /** What its agent programmed (for the table tools). */
  mirror: DpMirror;
}

/** The cluster the tests use: demo 10.1.1.0/24 with vm1 on node1, vm2 on node2, bms1 behind a VTEP. */
export function clusterTopology(priorities: Encap[], extra: Record<string, unknown> = {}): Topology {
  return topologyFrom({
    nodes: [
      { name: 'node1', fabric_ip: '192.168.50.11/24' },
      { name: 'node2', fabric_ip: '192.168.50.12/24' },
    ],
    networks: [{ name: 'demo', subnet: '10.1.1.0/24', gateway: '10.1.1.1' }],
    vms: [
      { name: 'vm1', ip: '10.1.1.3', network: 'demo', node: 'node1' },
      { name: 'vm2', ip: '10.1.1.4', network: 'demo', node: 'node2' },
    ],
    bare_metal: [{ name: 'bms1', vtep_ip: '192.168.50.20', ip: '10.1.1.20', network: 'demo' }],
    global_vrouter_config: { encapsulation_priorities: { encapsulation: priorities } },
    ...extra,
  }, 'cluster.json');
}

export const BMS_MAC = '02:00:0a:01:01:14';
export const VTEP_MAC = Uint8Array.from([0x02, 0xbb, 0, 0, 0, 0x20]);
export const VTEP_IP = 0xc0a83214; // 192.168.50.20

export class TestCluster {
  readonly nodes: TestNode[] = [];
  /** Frames sent to the bare-metal VTEP (its MAC). */
  readonly toVtep: Uint8Array[] = [];

  constructor(readonly topo: Topology, tunnelType: Encap = 'MPLSoGRE') {
    topo.nodes.forEach((ns, k) => {
      const host = new ManualHost({ now: 1_000_000, seed: 7 + k });
      const r = createDatapath(host, { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: 1024, vr_oflow_entries: 64 });
      const ov = new Overlay(topo, ns.name, tunnelType);
      const cn = new ComputeNode(localTopology(topo, ns.name), ov);
      const dp = new DpMirror(directProgrammer(r));
      const fds = new Map<string, { fd: number; io: number }>();
      for (const h of [...cn.topo.vms, ...cn.topo.outside]) fds.set(h.name, { fd: 0, io: 0 });
      cn.program(dp, fds);
      const mac = Uint8Array.from([0x02, 0xfa, 0, 0, 0, k + 1]);
      const fab: FabricIf = { ifname: 'eth1', fd: 0, io: 1, vhostFd: 0, mac, mtu: 1500, speed: 10000, duplex: 1 };
      cn.programFabric(dp, fab);
      new StaticRoutes(ov).start(cn.routeSink(dp));
      const ch = new DirectChannel(r);
      const agent = new FlowMgr(r.ft, ch, cn.flowEnv(), { ageMs: 180_000, tcpScanMs: 15_000 }, () => host.now);
      this.nodes.push({ name: ns.name, r, host, cn, agent, ch, mac, ip: ns.fabricIp, mirror: dp });
    });
  }

  node(name: string): TestNode {
    return this.nodes.find((n) => n.name === name) as TestNode;
  }

  /** Frames a node's VM vif was sent (and forget them), for vif `vif`. */
  take(n: TestNode, vif: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let k = 0; k < n.host.sent.length; k++) {
      if (n.host.sent[k].vif === vif) {
        out.push(n.host.sent[k].data);
        n.host.sent.splice(k--, 1);
      }
    }
    return out;
  }

  /** The frames on the fabric since the last call (copies), as the wire carried them. */
  readonly wire: { from: string; data: Uint8Array }[] = [];

  /**
   * Run until quiet: traps to the agents, fabric frames across the wire, vhost0's ARP answers.
   * Frames to VM vifs stay in each host's `sent` for the test.
   */
  settle(rounds = 20): void {
    for (let round = 0; round < rounds; round++) {
      let moved = false;
      for (const n of this.nodes) {
        for (const t of n.host.traps.splice(0)) {
          n.agent.onTrap(t.frame);
          moved = true;
        }
        n.agent.tick(n.host.now);
        n.ch.settle();
        dpBurstEnd(n.r);
      }
      for (const n of this.nodes) {
        const fabric = n.host.sent.filter((s) => s.vif === VIF_FABRIC || s.vif === VIF_VHOST);
        n.host.sent.splice(0, n.host.sent.length, ...n.host.sent.filter((s) => s.vif !== VIF_FABRIC && s.vif !== VIF_VHOST));
        for (const s of fabric) {
          moved = true;
          if (s.vif === VIF_VHOST) this.vhost(n, s.data);
          else this.carry(n, s.data);
        }
      }
      if (!moved) return;
    }
  }

  /** The wire: to the node whose MAC the frame names (all on broadcast), or to the VTEP. */
  private carry(from: TestNode, f: Uint8Array): void {
    this.wire.push({ from: from.name, data: f.slice() }); // the receiver decapsulates in place
    const dst = macString(f.subarray(0, 6));
    for (const n of this.nodes) {
      if (n === from) continue;
      if (dst === 'ff:ff:ff:ff:ff:ff' || dst === macString(n.mac)) dpRx(n.r, VIF_FABRIC, f, 0, f.length);
    }
    if (dst === macString(VTEP_MAC)) this.toVtep.push(f);
    if (dst === 'ff:ff:ff:ff:ff:ff' && rd16(f, 12) === ETH_P_ARP && rd32(f, 38) === VTEP_IP) {
      // The VTEP answers ARP for its address.
      dpRx(from.r, VIF_FABRIC, arpReply(VTEP_MAC, VTEP_IP, f), 0, 42);
    }
  }

  /** vhost0: the host's stack answers ARP for the node's address (the only thing the tests need of it). */
  private vhost(n: TestNode, f: Uint8Array): void {
    if (rd16(f, 12) !== ETH_P_ARP || rd16(f, 20) !== 1 || rd32(f, 38) !== n.ip) return;
    const reply = arpReply(n.mac, n.ip, f);
    dpRx(n.r, VIF_VHOST, reply, 0, reply.length);
  }
}

/** An ARP reply from (mac, ip) to the requester of `req`. */
export function arpReply(mac: Uint8Array, ip: number, req: Uint8Array): Uint8Array {
  const b = new Uint8Array(42);
  b.set(req.subarray(6, 12), 0);
  b.set(mac, 6);
  b[12] = 0x08;
  b[13] = 0x06;
  b.set([0, 1, 8, 0, 6, 4, 0, 2], 14);
  b.set(mac, 22);
  b[28] = ip >>> 24;
  b[29] = (ip >>> 16) & 255;
  b[30] = (ip >>> 8) & 255;
  b[31] = ip & 255;
  b.set(req.subarray(22, 32), 32);
  return b;
}
