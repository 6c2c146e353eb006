/**
 * How the agent reaches the datapath (the vRouter agent's KSync netlink socket): FLOW_SET requests
 * with their replies. The agent never writes the flow table; it reads it through a read-only view
 * (the /dev/flow mmap) and changes it with these requests.
 *
 * `DirectChannel` calls the datapath in the same thread (offline replay, tests); the TAP worker's
 * channel posts the requests to the datapath thread.
 * @module
 */
import { DpChannel, FlowReq, FlowResp } from '../dp/flow';
import { routerDrainWork } from '../dp/flow';
import type { Router } from '../dp/router';
import {
  reqBridgeAdd, reqFlowSet, reqMplsAdd, reqNhAdd, reqRtAdd, reqRtDelete, reqSubVifAdd, reqVifAdd, reqVifFatFlow, reqVxlanAdd,
} from '../dp/request';

/** What the agent programs into the datapath (vifs, nexthops, routes, bridge entries, fat-flow lists). */
export interface DpProgrammer {
  /** `io`: how the datapath reads the fd (VIF_IO_TAP, VIF_IO_PACKET); `ip`: the fabric address (physical vif, vhost0). */
  vifAdd(idx: number, fd: number, type: number, vrf: number, nh: number, flags: number, mtu: number, mac: Uint8Array, io: number, ip?: number): void;
  /** A VLAN sub-interface of `parent` (VIF_TYPE_VIRTUAL_VLAN): frames tagged `vlan` there are its, it sends tagged `ovlan`. */
  subVifAdd(idx: number, parent: number, vlan: number, ovlan: number, vrf: number, nh: number, flags: number, mtu: number, mac: Uint8Array): void;
  /** A tunnel: `flags` its type, `sip`/`dip` its outer addresses; a VRF_TRANSLATE: `vrf`. */
  nhAdd(id: number, type: number, vif: number, dmac: Uint8Array, flags?: number, sip?: number, dip?: number, vrf?: number): void;
  /** `label`: a tunnel route's MPLS label or VNI; `mac`: the stitched MAC of a remote host. */
  rtAdd(vrf: number, ipWord: number, nh: number, flags: number, label?: number, mac?: Uint8Array | null): void;
  rtDelete(vrf: number, ipWord: number): void;
  /** A local MAC on `vif`, or (vif −1) a remote one behind tunnel nexthop `nh` with `label`; vif and nh −1 remove it. */
  bridgeAdd(vrf: number, mac: Uint8Array, vif: number, nh?: number, label?: number): void;
  vifFatFlow(idx: number, rules: number[]): void;
  /** The incoming label map and the VXLAN table (nexthop −1 removes). */
  mplsAdd(label: number, nh: number): void;
  vxlanAdd(vni: number, nh: number): void;
}

// The interface lives in dp/flow.ts (the datapath thread implements it too); re-exported for the agent's users.
export type { DpChannel };

/** A channel to a datapath in the same thread. */
export class DirectChannel implements DpChannel {
  private readonly resp: FlowResp = { err: 0, index: -1, bytes: 0, packets: 0 };
  constructor(private readonly r: Router) {}

  flowSet(req: FlowReq, done: (resp: FlowResp) => void): void {
    const resp = reqFlowSet(this.r, req, this.resp);
    done({ ...resp });
  }

  /** Let the datapath run the work the requests scheduled (flushing held packets, freeing slots). */
  settle(): void {
    routerDrainWork(this.r);
  }
}

/**
 * Programs a datapath in the same thread through dp/request.ts, the table the datapath thread applies
 * the ring's requests with (the fd and io of a vif are the host's, and there is no host here).
 */
export function directProgrammer(r: Router): DpProgrammer {
  return {
    vifAdd: (idx, _fd, type, vrf, nh, flags, mtu, mac, _io, ip) => reqVifAdd(r, idx, type, vrf, nh, flags, mtu, mac, ip),
    subVifAdd: (idx, parent, vlan, ovlan, vrf, nh, flags, mtu, mac) => {
      reqSubVifAdd(r, idx, parent, vlan, ovlan, vrf, nh, flags, mtu, mac);
    },
    nhAdd: (id, type, vif, dmac, flags, sip, dip, vrf) => reqNhAdd(r, id, type, vif, dmac, flags, sip, dip, vrf),
    rtAdd: (vrf, ip, nh, flags, label, mac) => reqRtAdd(r, vrf, ip, nh, flags, label, mac ?? null),
    rtDelete: (vrf, ip) => reqRtDelete(r, vrf, ip),
    bridgeAdd: (vrf, mac, vif, nh, label) => reqBridgeAdd(r, vrf, mac, vif, nh, label),
    vifFatFlow: (idx, rules) => reqVifFatFlow(r, idx, rules),
    mplsAdd: (label, nh) => {
      reqMplsAdd(r, label, nh);
    },
    vxlanAdd: (vni, nh) => reqVxlanAdd(r, vni, nh),
  };
}
