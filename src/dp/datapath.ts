/**
 * The packet path from a vif's receive to the flow stage (dp-core/vr_datapath.c vr_virtual_input,
 * vr_proto_ip.c vr_inet_flow_lookup at R2.22). Which frames meet the flow table (reference §4.1): IPv4,
 * unicast destination, untagged, from a policy-enabled vif. IPv6 bypasses flows in R2.22; ARP and other
 * ethertypes take the bridge path.
 *
 * The forwarding stage after a FORWARD verdict (route lookup, rewrite, transmit) belongs to the host
 * set-up: the replay host has none and counts the packet as forwarded.
 * @module
 */
import {
  ETH_HLEN,
  ETH_P_8021Q,
  ETH_P_IP,
  VP_DROP_INTERFACE_DROP,
  VP_DROP_INVALID_IF,
} from './defs';
import { FLOW_FORWARD, flowLookup, routerDrainWork } from './flow';
import { VIFS_RX_BYTES, VIFS_RX_ERRORS, VIFS_RX_PACKETS, VIFS_LEN, VIF_FLAG_POLICY_ENABLED } from './interface';
import { Pkt, rd16 } from './pkt';
import { KEY_OK, flowKeyBuild, ipParse } from './proto-ip';
import { DpConfig, HostOs, RES_FORWARDED, RES_NO_FLOW, Router, createRouter, dropPkt } from './router';
import type { ModuleParams } from '../params/module-params';

/** Create a router whose forwarding stage is the datapath's (vrouter_init + the datapath's module init). */
export function createDatapath(host: HostOs, params: ModuleParams, cfg: Partial<DpConfig> = {}): Router {
  const r = createRouter(host, params, cfg);
  r.reinject = dpForward;
  return r;
}

/** The forwarding stage after the flow said FORWARD. Without routes (offline replay) it only counts. */
function dpForward(r: Router, _pkt: Pkt): void {
  r.results[RES_FORWARDED]++;
}

/**
 * Receive one Ethernet frame on vif `vifIdx` (vif_rx → vr_virtual_input).
 * The frame is processed to completion (or held); `buf` may be reused once this returns.
 */
export function dpRx(r: Router, vifIdx: number, buf: Uint8Array, off: number, len: number): void {
  const v = r.vifs.vifs[vifIdx];
  if (v === undefined || !v.up) {
    dropPkt(r, VP_DROP_INVALID_IF);
    return;
  }
  const st = r.vifs.stats;
  const sb = vifIdx * VIFS_LEN;
  st[sb + VIFS_RX_PACKETS]++;
  st[sb + VIFS_RX_BYTES] += len;
  if (len < ETH_HLEN) {
    // vr_pkt_type fails on a frame shorter than an Ethernet header: vif_drop_pkt.
    st[sb + VIFS_RX_ERRORS]++;
    dropPkt(r, VP_DROP_INTERFACE_DROP);
    return;
  }
  const pkt = r.pkt;
  pkt.buf = buf;
  pkt.off = off;
  pkt.len = len;
  pkt.vif = vifIdx;
  pkt.vrf = v.vrf;
  pkt.nh = v.nh;
  pkt.flowIdx = -1;
  const ethType = rd16(buf, off + 12);
  if (ethType === ETH_P_8021Q) {
    if (len < ETH_HLEN + 4) {
      st[sb + VIFS_RX_ERRORS]++;
      dropPkt(r, VP_DROP_INTERFACE_DROP);
      return;
    }
    // Tagged frames on a VM vif that is not a service interface take the bridge path, without flows.
    r.results[RES_NO_FLOW]++;
    return;
  }
  if (ethType !== ETH_P_IP) {
    // ARP, IPv6 (no flows for IPv6 in R2.22) and other ethertypes: bridge/route without flows.
    r.results[RES_NO_FLOW]++;
    return;
  }
  pkt.l3 = off + ETH_HLEN;
  const perr = ipParse(pkt);
  if (perr !== KEY_OK) {
    dropPkt(r, perr);
    return;
  }
  const dipHi = buf[pkt.l3 + 16];
  if (dipHi >= 224 || (v.flags & VIF_FLAG_POLICY_ENABLED) === 0) {
    // Multicast/broadcast destinations skip the flow lookup, and so does a vif without policy.
    r.results[RES_NO_FLOW]++;
    return;
  }
  const kerr = flowKeyBuild(pkt, r.frags, r.host.monoMs());
  if (kerr !== KEY_OK) {
    dropPkt(r, kerr);
    return;
  }
  if (flowLookup(r, pkt) === FLOW_FORWARD) r.reinject(r, pkt);
}

/** End of a burst: run the deferred work (hold flushes, deletes, evictions). */
export function dpBurstEnd(r: Router): void {
  routerDrainWork(r);
}
