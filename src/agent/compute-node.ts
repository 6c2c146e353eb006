/**
 * The agent's model of this compute node: which vif, nexthop and VRF each VM and network gets, what the
 * datapath must be told (vifs, interface nexthops, /32 routes with the ARP-proxy flag, bridge entries),
 * and the answers the flow module needs (the reverse flow's nexthop, the default decision).
 *
 * Numbering as the module and agent do it: vif0/0 physical (absent: no overlay), vif0/1 vhost0, vif0/2
 * pkt0, VM interfaces from vif0/3; VRF 0 is the fabric's, a network's VRF is its position + 1; nexthop 0
 * is discard, 1 the receive nexthop of the gateway addresses, VM interface nexthops from 10.
 * @module
 */
import { VR_FLOW_ACTION_DROP, VR_FLOW_ACTION_FORWARD, VR_VIF_MAC } from '../dp/defs';
import {
  VIF_FLAG_DHCP_ENABLED,
  VIF_FLAG_L2_ENABLED,
  VIF_FLAG_L3_ENABLED,
  VIF_FLAG_POLICY_ENABLED,
  VIF_TYPE_AGENT,
  VIF_TYPE_HOST,
  VIF_TYPE_VIRTUAL,
  macParse,
} from '../dp/interface';
import { NH_ENCAP, NH_RCV, VR_RT_ARP_PROXY_FLAG } from '../dp/nexthop';
import type { FlowDecision, FlowEnv } from './flow-mgr';
import { Topology, VmSpec, ipKeyWord } from './topology';

/** VR_FLOW_DR_NO_DST_ROUTE: the flow's destination has no route in its VRF. */
const DR_NO_DST_ROUTE = 5;

export interface VifInfo {
  idx: number;
  /** OS interface name, as `vif --list` prints it. */
  os: string;
  type: number;
  vrf: number;
  flags: number;
  mtu: number;
  mac: Uint8Array;
  nh: number;
  vm?: VmSpec;
  /** False once the OS interface went away. */
  up: boolean;
}

/** What the agent programs into the datapath. */
export interface DpProgrammer {
  vifAdd(idx: number, fd: number, type: number, vrf: number, nh: number, flags: number, mtu: number, mac: Uint8Array): void;
  nhAdd(id: number, type: number, vif: number, dmac: Uint8Array): void;
  rtAdd(vrf: number, ipWord: number, nh: number, flags: number): void;
  bridgeAdd(vrf: number, mac: Uint8Array, vif: number): void;
}

export const VIF_VHOST = 1;
export const VIF_PKT0 = 2;
export const VIF_FIRST_VM = 3;
export const NH_GATEWAY = 1;
export const NH_FIRST_VM = 10;

export class ComputeNode {
  readonly vifs: VifInfo[] = [];
  private readonly byIpWord = new Map<number, VifInfo>();
  private readonly gateways = new Map<number, number>(); // ip word → vrf

  constructor(readonly topo: Topology) {
    const vrmac = macParse(VR_VIF_MAC) as Uint8Array;
    this.vifs.push({ idx: VIF_VHOST, os: 'vhost0', type: VIF_TYPE_HOST, vrf: 0, flags: VIF_FLAG_L3_ENABLED, mtu: 1514, mac: vrmac, nh: 0, up: true });
    this.vifs.push({ idx: VIF_PKT0, os: 'pkt0', type: VIF_TYPE_AGENT, vrf: 65535, flags: VIF_FLAG_L3_ENABLED, mtu: 1514, mac: vrmac, nh: 0, up: true });
    topo.vms.forEach((vm, i) => {
      const v: VifInfo = {
        idx: VIF_FIRST_VM + i, os: vm.tap, type: VIF_TYPE_VIRTUAL, vrf: this.vrfOf(vm.network),
        flags: VIF_FLAG_POLICY_ENABLED | VIF_FLAG_L3_ENABLED | VIF_FLAG_L2_ENABLED | VIF_FLAG_DHCP_ENABLED,
        mtu: vm.mtu, mac: vrmac, nh: NH_FIRST_VM + i, vm, up: true,
      };
      this.vifs.push(v);
      this.byIpWord.set(ipKeyWord(vm.ip), v);
    });
    topo.networks.forEach((n) => this.gateways.set(ipKeyWord(n.gateway), this.vrfOf(n.name)));
  }

  vrfOf(network: string): number {
    return this.topo.networks.findIndex((n) => n.name === network) + 1;
  }

  vif(idx: number): VifInfo | undefined {
    return this.vifs.find((v) => v.idx === idx);
  }

  vmVif(name: string): VifInfo | undefined {
    return this.vifs.find((v) => v.vm?.name === name);
  }

  /** Tell the datapath about the VMs (their TAP fds by VM name), nexthops, routes and bridge entries. */
  program(dp: DpProgrammer, fds: Map<string, number>): void {
    dp.nhAdd(NH_GATEWAY, NH_RCV, VIF_PKT0, new Uint8Array(6));
    for (const n of this.topo.networks) dp.rtAdd(this.vrfOf(n.name), ipKeyWord(n.gateway), NH_GATEWAY, VR_RT_ARP_PROXY_FLAG);
    for (const v of this.vifs) {
      if (!v.vm) continue;
      dp.vifAdd(v.idx, fds.get(v.vm.name) as number, v.type, v.vrf, v.nh, v.flags, v.mtu, v.mac);
      dp.nhAdd(v.nh, NH_ENCAP, v.idx, v.vm.mac);
      dp.rtAdd(v.vrf, ipKeyWord(v.vm.ip), v.nh, VR_RT_ARP_PROXY_FLAG);
      dp.bridgeAdd(v.vrf, v.vm.mac, v.idx);
    }
  }

  /** The flow module's view: reverse nexthops and the default decision. */
  flowEnv(): FlowEnv {
    return {
      reverseNh: (_vrf, _sip, dip, fwdNh) => this.byIpWord.get(dip | 0)?.nh ?? fwdNh,
      decide: (_k0, k1, k2): FlowDecision => {
        const src = this.byIpWord.get(k1 | 0);
        const dst = this.byIpWord.get(k2 | 0);
        const vrf = src?.vrf ?? dst?.vrf;
        // Within a network: allowed (no policy yet); anything without a route in that VRF is dropped.
        if ((dst !== undefined && vrf === dst.vrf) || this.gateways.get(k2 | 0) === vrf) {
          return { action: VR_FLOW_ACTION_FORWARD, dropReason: 0 };
        }
        return { action: VR_FLOW_ACTION_DROP, dropReason: DR_NO_DST_ROUTE };
      },
    };
  }
}
