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
import { reqBridgeAdd, reqFlowSet, reqNhAdd, reqRtAdd, reqRtDelete, reqVifAdd, reqVifFatFlow } from '../dp/request';

/** What the agent programs into the datapath (vifs, nexthops, routes, bridge entries, fat-flow lists). */
export interface DpProgrammer {
  /** `io`: how the datapath reads the fd (VIF_IO_TAP, VIF_IO_PACKET). */
  vifAdd(idx: number, fd: number, type: number, vrf: number, nh: number, flags: number, mtu: number, mac: Uint8Array, io: number): void;
  nhAdd(id: number, type: number, vif: number, dmac: Uint8Array): void;
  rtAdd(vrf: number, ipWord: number, nh: number, flags: number): void;
  rtDelete(vrf: number, ipWord: number): void;
  bridgeAdd(vrf: number, mac: Uint8Array, vif: number): void;
  vifFatFlow(idx: number, rules: number[]): void;
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
    vifAdd: (idx, _fd, type, vrf, nh, flags, mtu, mac) => reqVifAdd(r, idx, type, vrf, nh, flags, mtu, mac),
    nhAdd: (id, type, vif, dmac) => reqNhAdd(r, id, type, vif, dmac),
    rtAdd: (vrf, ip, nh, flags) => reqRtAdd(r, vrf, ip, nh, flags),
    rtDelete: (vrf, ip) => reqRtDelete(r, vrf, ip),
    bridgeAdd: (vrf, mac, vif) => reqBridgeAdd(r, vrf, mac, vif),
    vifFatFlow: (idx, rules) => reqVifFatFlow(r, idx, rules),
  };
}
