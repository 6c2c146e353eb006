/**
 * The datapath thread (the TAP host of the datapath core; the vRouter's linux/ host layer). It blocks in
 * poll() on the VM interfaces' TAP fds and an eventfd the agent rings, reads frames in batches, runs them
 * through the datapath, writes what the datapath sent in batches, applies the agent's requests from a
 * shared ring (FLOW_SET, vif/nexthop/route set-up) and posts traps and replies back once per burst.
 * It never returns to its event loop while running, so all input arrives through the ring.
 *
 * Entry point of dist/dp-worker.cjs; started by io/dp-thread.ts.
 * @module
 */
import { parentPort, workerData } from 'worker_threads';
import type { MessagePort } from 'worker_threads';
import { performance } from 'perf_hooks';
import { createDatapath, dpRx } from '../dp/datapath';
import { fabricTick } from '../dp/fabric';
import { macKey } from '../dp/nexthop';
import { FlowReq, FlowResp, flowReqNew, routerDrainWork } from '../dp/flow';
import { VIFS_RX_ERRORS, VIFS_TX_ERRORS, VIFS_LEN, VIF_TYPE_VIRTUAL_VLAN } from '../dp/interface';
import { DVS_TO_PORT, DvSwitch, VLAN_MAX } from '../esxi/dvswitch';
import { VP_DROP_INTERFACE_RX_DISCARD, VP_DROP_INTERFACE_TX_DISCARD } from '../dp/defs';
import {
  reqBridgeAdd, reqFlowSet, reqMplsAdd, reqNhAdd, reqRtAdd, reqRtDelete, reqSubVifAdd, reqVifAdd, reqVifAttach, reqVifDelete, reqVifDetach,
  reqVifFatFlow, reqVxlanAdd,
} from '../dp/request';
import { DpConfig, HostOs, Router, RouterShared } from '../dp/router';
import type { ModuleParams } from '../params/module-params';
import { Native, PACKET_STAGE_BYTES, PS_COUNT_LEN, PS_DROPPED, PS_SOCK_DROPS, loadNative } from './native';
import { xorshift32 } from '../lib/xorshift';
import {
  BridgeAddRec, NhAddRec, OP_BRIDGE_ADD, OP_FLOW_SET, OP_MPLS_ADD, OP_NH_ADD, OP_PORT_SET, OP_RT_ADD, OP_RT_DEL, OP_STOP, OP_VIF_ADD,
  OP_VIF_ATTACH, OP_VIF_DEL, OP_VIF_DETACH, OP_VIF_FAT, OP_VXLAN_ADD, PortSetRec, RING_REPLY, Ring, RtRec, VIF_IO_PACKET, VIF_IO_SWITCH,
  VifAddRec, VifAttachRec, ringGetBridgeAdd, ringGetFlowSet, ringGetMapKey, ringGetMapNh, ringGetPortSet,
  ringGetNhAdd, ringGetRt, ringGetVifAdd, ringGetVifAttach, ringGetVifFatIdx, ringGetVifFatRules, ringGetVifRelease, ringOp,
  ringPutReply, ringSeq,
} from './ring';

export interface DpWorkerData {
  params: ModuleParams;
  cfg: Partial<DpConfig>;
  shared: RouterShared;
  ring: SharedArrayBuffer;
  wakeFd: number;
  /** CPU to pin the datapath thread to, or −1. */
  cpu: number;
  /** Seed of the random source (0 = from Math.random). */
  seed: number;
}

/** Messages the datapath thread posts. */
export type DpWorkerMsg =
  | { type: 'ready'; cpu: number }
  /** `resps`: RING_REPLY-word replies (io/ring.ts); `traps`: the trapped frames back to back, `trapLens` long. */
  | { type: 'batch'; resps: Int32Array; traps: Uint8Array; trapLens: Int32Array }
  | { type: 'vifDown'; idx: number; code: string }
  /** A packet-socket vif's socket reported an error (ENETDOWN: its interface went down or away). */
  | { type: 'vifError'; idx: number; code: string }
  /** Offload work on packet-socket vifs since the last report: checksums completed, TSO frames, segments. */
  | { type: 'offload'; stats: number[] }
  /** A tunnel nexthop's destination MAC, learned or changed (ARP on the fabric). */
  | { type: 'tunnel'; id: number; mac: number[] }
  | { type: 'stopped' }
  | { type: 'error'; message: string; stack?: string };

const BURST = 64; // frames read from one TAP per poll round
const PKT_BURST = 256; // slots for one packet socket per poll round (TSO frames take several)
const MAX_VIFS = 4352;
/** The emulated ESXi switch's ports (vCenter mode) take the slots after the vifs', one per VLAN. */
const PORT_BASE = MAX_VIFS;
const SLOTS = PORT_BASE + VLAN_MAX + 1;
const MAX_MTU = 9216;
const SLOT = MAX_MTU + 32; // bytes per frame slot in the rx and tx slabs
const POLL_MS = 50; // poll timeout: the longest the deferred work and offload reports wait without traffic

/** The datapath thread's state: one per thread, allocated once, written by this thread only. */
interface DpWorker {
  readonly nat: Native;
  readonly port: MessagePort;
  readonly wakeFd: number;
  r: Router;
  readonly ring: Ring;

  // tx: per-vif batches, flushed at the end of each burst (a TAP write runs the receiver's stack in
  // this thread, so one syscall per frame is the cost that matters; batching saves the JS↔C crossings).
  readonly txSlab: (Uint8Array | undefined)[];
  readonly txOffs: (Int32Array | undefined)[];
  readonly txLens: (Int32Array | undefined)[];
  readonly txCount: Int32Array;
  /** Vifs with frames to write. */
  readonly txPending: number[];
  readonly vifFd: Int32Array;
  /** VIF_IO_* per vif. */
  readonly vifIo: Uint8Array;
  /** The emulated ESXi switch (vCenter mode): its ports' fds are in the poll set at PORT_BASE + VLAN. */
  readonly dvs: DvSwitch;
  readonly portSlab: Uint8Array;
  /** Ports on packet sockets (qemu guests): their slab (TSO frames become many segments) and offload counters, made on first use. */
  portPktSlab: Uint8Array | undefined;
  readonly portPktStats: Float64Array;

  // rx
  readonly rxSlab: Uint8Array;
  readonly rxLens: Int32Array;
  // Packet sockets: their own slab (TSO frames become many segments) and staging area, made on first use.
  pktSlab: Uint8Array | undefined;
  pktStage: Uint8Array | undefined;
  readonly pktLens: Int32Array;
  readonly pktStats: Float64Array;
  pktDropped: number;
  pktSockDrops: number;
  offloadReported: number;
  /** The tunnel MACs last reported (tunnelReport), by nexthop id. */
  readonly tunnelMacs: Map<number, number>;
  // The poll set: slot 0 is the agent's eventfd, then one per up vif with an fd.
  readonly fds: Int32Array;
  readonly fdVif: Int32Array;
  readonly revents: Int32Array;
  nfds: number;
  // poll(2) event bits, read from the addon once
  readonly pollIn: number;
  readonly pollErr: number;
  readonly pollHup: number;
  readonly pollNval: number;
  /** Rebuild the poll set after the rx loop, which walks the current one. */
  pollDirty: boolean;

  // ring apply: one scratch record per op, reused.
  readonly req: FlowReq;
  readonly resp: FlowResp;
  readonly vifAddRec: VifAddRec;
  readonly vifAttachRec: VifAttachRec;
  readonly portRec: PortSetRec;
  readonly nhRec: NhAddRec;
  readonly rtRec: RtRec;
  readonly bridgeRec: BridgeAddRec;

  // The burst's batch for the agent: replies and trapped frames, posted once per burst.
  resps: Int32Array;
  respLen: number; // words
  trapBuf: Uint8Array;
  trapLen: number; // bytes
  trapLens: Int32Array;
  trapCount: number;
}

function workerNew(d: DpWorkerData, nat: Native, port: MessagePort): DpWorker {
  const w: DpWorker = {
    nat, port, wakeFd: d.wakeFd, r: undefined as unknown as Router, ring: new Ring(d.ring),
    // Sized up front: the switch ports' slots start at PORT_BASE, and a first store that far past the end
    // of an empty array would turn it into a dictionary (a hash lookup per access, per frame).
    txSlab: new Array<Uint8Array | undefined>(SLOTS), txOffs: new Array<Int32Array | undefined>(SLOTS), txLens: new Array<Int32Array | undefined>(SLOTS),
    txCount: new Int32Array(SLOTS), txPending: [],
    vifFd: new Int32Array(SLOTS).fill(-1), vifIo: new Uint8Array(SLOTS),
    dvs: new DvSwitch(), portSlab: new Uint8Array(BURST * SLOT + 4), portPktSlab: undefined, portPktStats: new Float64Array(PS_COUNT_LEN),
    rxSlab: new Uint8Array(BURST * SLOT), rxLens: new Int32Array(BURST),
    pktSlab: undefined, pktStage: undefined, pktLens: new Int32Array(PKT_BURST), pktStats: new Float64Array(PS_COUNT_LEN),
    pktDropped: 0, pktSockDrops: 0, offloadReported: 0, tunnelMacs: new Map(),
    fds: new Int32Array(SLOTS + 1), fdVif: new Int32Array(SLOTS + 1), revents: new Int32Array(SLOTS + 1), nfds: 1,
    pollIn: nat.constants.POLLIN, pollErr: nat.constants.POLLERR, pollHup: nat.constants.POLLHUP, pollNval: nat.constants.POLLNVAL,
    pollDirty: false,
    req: flowReqNew(), resp: { err: 0, index: -1, bytes: 0, packets: 0 },
    vifAddRec: { idx: 0, fd: -1, type: 0, vrf: 0, nh: 0, flags: 0, mtu: 0, mac: new Uint8Array(6), io: 0, ip: 0, parent: -1, vlan: -1, ovlan: -1 },
    vifAttachRec: { idx: 0, fd: -1, io: 0 },
    portRec: { vlan: 0, fd: -1, trunk: -1, io: 0 },
    nhRec: { id: 0, type: 0, vif: 0, dmac: new Uint8Array(6), flags: 0, sip: 0, dip: 0, vrf: 0 },
    rtRec: { vrf: 0, ip: 0, nh: 0, flags: 0, label: -1, hasMac: false, mac: new Uint8Array(6) },
    bridgeRec: { vrf: 0, mac: new Uint8Array(6), vif: 0, nh: -1, label: -1 },
    resps: new Int32Array(256 * RING_REPLY), respLen: 0,
    trapBuf: new Uint8Array(1 << 16), trapLen: 0, trapLens: new Int32Array(256), trapCount: 0,
  };
  w.fds[0] = d.wakeFd;
  const host: HostOs = {
    monoMs: () => performance.now(),
    random32: xorshift32(d.seed >>> 0 || (Math.random() * 0x100000000) >>> 0),
    tx: (vif: number, buf: Uint8Array, off: number, len: number): void => txQueue(w, vif, buf, off, len),
    trap: (buf: Uint8Array, off: number, len: number): void => batchTrap(w, buf, off, len),
  };
  w.r = createDatapath(host, d.params, d.cfg, d.shared);
  return w;
}

// ---------------------------------------------------------------------------------------------------
// tx batching

/**
 * HostOs.tx: queue a frame on the vif's batch (written when it is full or at the end of the burst). A
 * frame for the emulated ESXi switch's trunk goes, without its tag, to the batch of its VLAN's port.
 */
function txQueue(w: DpWorker, vif: number, buf: Uint8Array, off: number, len: number): void {
  if (w.vifIo[vif] === VIF_IO_SWITCH) {
    const vlan = w.dvs.vlanOf(buf, off, len);
    if (vlan >= 0) txQueueCut(w, PORT_BASE + vlan, buf, off, len);
    return;
  }
  let slab = w.txSlab[vif];
  if (slab === undefined) {
    slab = w.txSlab[vif] = new Uint8Array(BURST * SLOT);
    w.txOffs[vif] = new Int32Array(BURST);
    w.txLens[vif] = new Int32Array(BURST);
  }
  let n = w.txCount[vif];
  if (n === BURST) {
    txFlushVif(w, vif);
    n = 0;
  }
  if (n === 0) w.txPending.push(vif);
  const o = n * SLOT;
  slab.set(buf.subarray(off, off + Math.min(len, SLOT)), o);
  (w.txOffs[vif] as Int32Array)[n] = o;
  (w.txLens[vif] as Int32Array)[n] = Math.min(len, SLOT);
  w.txCount[vif] = n + 1;
}

/** Queue a tagged frame on slot `slot` without its tag (bytes 12..15), the switch's side of the trunk. */
function txQueueCut(w: DpWorker, slot: number, buf: Uint8Array, off: number, len: number): void {
  txQueue(w, slot, buf, off, len); // the frame as it came …
  const n = w.txCount[slot] - 1;
  const slab = w.txSlab[slot] as Uint8Array;
  const o = (w.txOffs[slot] as Int32Array)[n];
  slab.copyWithin(o + 4, o, o + 12); // … then the MACs over the tag
  (w.txOffs[slot] as Int32Array)[n] = o + 4;
  (w.txLens[slot] as Int32Array)[n] -= 4;
}

/** Write the vif's batch; what its fd does not take is counted as TX errors and INTERFACE_TX_DISCARD. */
function txFlushVif(w: DpWorker, v: number): void {
  const n = w.txCount[v];
  w.txCount[v] = 0;
  const fd = w.vifFd[v];
  if (n === 0 || fd < 0) return;
  let written = 0;
  try {
    written = w.vifIo[v] === VIF_IO_PACKET
      ? w.nat.packetWriteBatch(fd, w.txSlab[v] as Uint8Array, w.txOffs[v] as Int32Array, w.txLens[v] as Int32Array, n)
      : w.nat.writeBatch(fd, w.txSlab[v] as Uint8Array, w.txOffs[v] as Int32Array, w.txLens[v] as Int32Array, n);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    // EBADFD: the TAP was deleted under its fd. Anything else (EIO: the VM took its link down; ENETDOWN
    // on a packet socket, whose interface the agent checks on the error it reads) loses these frames
    // but keeps the vif.
    if (w.vifIo[v] !== VIF_IO_PACKET && v < PORT_BASE && (code === 'EBADFD' || code === 'EBADF' || code === 'ENODEV')) vifDown(w, v, code);
  }
  if (written < n && v >= PORT_BASE) {
    w.dvs.counters[DVS_TO_PORT] -= n - written; // the VM did not take them (its link is down): ESXi's loss
  } else if (written < n) {
    w.r.vifs.stats[v * VIFS_LEN + VIFS_TX_ERRORS] += n - written;
    w.r.drops[VP_DROP_INTERFACE_TX_DISCARD] += n - written;
  }
}

function txFlush(w: DpWorker): void {
  for (let k = 0; k < w.txPending.length; k++) txFlushVif(w, w.txPending[k]);
  w.txPending.length = 0;
}

// ---------------------------------------------------------------------------------------------------
// The batch for the agent: replies and traps, posted once per burst.

/** HostOs.trap: append a frame for the agent vif (pkt0). */
function batchTrap(w: DpWorker, buf: Uint8Array, off: number, len: number): void {
  if (w.trapLen + len > w.trapBuf.length) w.trapBuf = grownU8(w.trapBuf, w.trapLen, w.trapLen + len);
  w.trapBuf.set(buf.subarray(off, off + len), w.trapLen);
  w.trapLen += len;
  if (w.trapCount === w.trapLens.length) w.trapLens = grownI32(w.trapLens, w.trapCount, w.trapCount + 1);
  w.trapLens[w.trapCount++] = len;
}

function batchReply(w: DpWorker, seq: number, err: number, index: number, bytes: number, packets: number): void {
  if (w.respLen + RING_REPLY > w.resps.length) w.resps = grownI32(w.resps, w.respLen, w.respLen + RING_REPLY);
  ringPutReply(w.resps, w.respLen, seq, err, index, bytes, packets);
  w.respLen += RING_REPLY;
}

/** Post the burst's replies and traps (copies, transferred: the working buffers stay). */
function batchPost(w: DpWorker): void {
  if (w.respLen === 0 && w.trapCount === 0) return;
  const msg: DpWorkerMsg = {
    type: 'batch',
    resps: w.resps.slice(0, w.respLen),
    traps: w.trapBuf.slice(0, w.trapLen),
    trapLens: w.trapLens.slice(0, w.trapCount),
  };
  w.respLen = 0;
  w.trapCount = 0;
  w.trapLen = 0;
  w.port.postMessage(msg, [msg.resps.buffer as ArrayBuffer, msg.traps.buffer as ArrayBuffer, msg.trapLens.buffer as ArrayBuffer]);
}

// Grown by doubling, so a burst's batch reallocates O(log n) times at most and then never again.
function grownU8(b: Uint8Array, used: number, need: number): Uint8Array {
  const n = new Uint8Array(Math.max(b.length * 2, need));
  n.set(b.subarray(0, used));
  return n;
}

function grownI32(b: Int32Array, used: number, need: number): Int32Array {
  const n = new Int32Array(Math.max(b.length * 2, need));
  n.set(b.subarray(0, used));
  return n;
}

// ---------------------------------------------------------------------------------------------------
// Vifs and the poll set

function pollRebuild(w: DpWorker): void {
  let nfds = 1;
  for (let v = 0; v < MAX_VIFS; v++) {
    if (w.vifFd[v] >= 0 && w.r.vifs.vifs[v]?.up) {
      w.fds[nfds] = w.vifFd[v];
      w.fdVif[nfds] = v;
      nfds++;
    }
  }
  for (let vlan = 1; vlan <= VLAN_MAX; vlan++) {
    const fd = w.vifFd[PORT_BASE + vlan];
    if (fd < 0) continue;
    w.fds[nfds] = fd;
    w.fdVif[nfds] = PORT_BASE + vlan;
    nfds++;
  }
  w.nfds = nfds;
}

/** The TAP is gone (deleted, or its namespace): the vif goes down for good and leaves the poll set. */
function vifDown(w: DpWorker, v: number, code: string): void {
  const vif = w.r.vifs.vifs[v];
  if (vif === undefined || !vif.up) return;
  vif.up = false;
  w.r.vifs.stats[v * VIFS_LEN + VIFS_RX_ERRORS]++;
  w.pollDirty = true; // rebuilt after the rx loop, which is walking the current set
  w.port.postMessage({ type: 'vifDown', idx: v, code } satisfies DpWorkerMsg);
}

// ---------------------------------------------------------------------------------------------------
// ring apply

/**
 * Apply the agent's requests: decode each record (io/ring.ts), change the router through dp/request.ts
 * (the table the in-thread channel uses too), then do the host's part (fds, the poll set, replies).
 * @returns false on OP_STOP.
 */
function ringApply(w: DpWorker): boolean {
  const { ring, r } = w;
  const a = ring.i32;
  for (let o = ring.peek(); o >= 0; o = ring.peek()) {
    const op = ringOp(a, o);
    switch (op) {
      case OP_FLOW_SET: {
        ringGetFlowSet(a, o, w.req);
        const resp = reqFlowSet(r, w.req, w.resp);
        batchReply(w, ringSeq(a, o), resp.err, resp.index, resp.bytes, resp.packets);
        break;
      }
      case OP_VIF_ADD: {
        const v = w.vifAddRec;
        ringGetVifAdd(a, o, v);
        // A refused sub-interface (no parent, VLAN taken) is not added; the agent checked before asking.
        if (v.type === VIF_TYPE_VIRTUAL_VLAN) reqSubVifAdd(r, v.idx, v.parent, v.vlan, v.ovlan, v.vrf, v.nh, v.flags, v.mtu, v.mac);
        else reqVifAdd(r, v.idx, v.type, v.vrf, v.nh, v.flags, v.mtu, v.mac, v.ip);
        w.vifFd[v.idx] = v.fd;
        w.vifIo[v.idx] = v.io;
        pollRebuild(w);
        break;
      }
      case OP_VIF_ATTACH: {
        const v = w.vifAttachRec;
        ringGetVifAttach(a, o, v);
        if (reqVifAttach(r, v.idx)) {
          w.vifFd[v.idx] = v.fd;
          w.vifIo[v.idx] = v.io;
          pollRebuild(w);
        }
        break;
      }
      case OP_VIF_DEL:
      case OP_VIF_DETACH: {
        const idx = ringGetVifRelease(a, o);
        txFlushVif(w, idx); // what was queued for it goes out first (or is counted)
        if (op === OP_VIF_DEL) reqVifDelete(r, idx);
        else reqVifDetach(r, idx);
        w.vifFd[idx] = -1;
        w.txCount[idx] = 0;
        pollRebuild(w);
        // The agent closes the fd once it has this: nothing here uses it any more.
        const seq = ringSeq(a, o);
        if (seq !== 0) batchReply(w, seq, 0, idx, 0, 0);
        break;
      }
      case OP_PORT_SET: {
        const p = w.portRec;
        ringGetPortSet(a, o, p);
        if (p.fd < 0 && p.vlan >= 1 && p.vlan <= VLAN_MAX) {
          txFlushVif(w, PORT_BASE + p.vlan);
          w.txCount[PORT_BASE + p.vlan] = 0;
        }
        if (w.dvs.set(p.vlan, p.fd, p.trunk)) {
          w.vifFd[PORT_BASE + p.vlan] = p.fd;
          w.vifIo[PORT_BASE + p.vlan] = p.io;
        }
        pollRebuild(w);
        const seq = ringSeq(a, o);
        if (seq !== 0) batchReply(w, seq, 0, p.vlan, 0, 0);
        break;
      }
      case OP_NH_ADD: {
        const n = w.nhRec;
        ringGetNhAdd(a, o, n);
        reqNhAdd(r, n.id, n.type, n.vif, n.dmac, n.flags, n.sip, n.dip, n.vrf);
        break;
      }
      case OP_RT_ADD: {
        const t = w.rtRec;
        ringGetRt(a, o, t);
        reqRtAdd(r, t.vrf, t.ip, t.nh, t.flags, t.label, t.hasMac ? t.mac : null);
        break;
      }
      case OP_MPLS_ADD:
        reqMplsAdd(r, ringGetMapKey(a, o), ringGetMapNh(a, o));
        break;
      case OP_VXLAN_ADD:
        reqVxlanAdd(r, ringGetMapKey(a, o), ringGetMapNh(a, o));
        break;
      case OP_RT_DEL:
        ringGetRt(a, o, w.rtRec);
        reqRtDelete(r, w.rtRec.vrf, w.rtRec.ip);
        break;
      case OP_BRIDGE_ADD: {
        const b = w.bridgeRec;
        ringGetBridgeAdd(a, o, b);
        reqBridgeAdd(r, b.vrf, b.mac, b.vif, b.nh, b.label);
        break;
      }
      case OP_VIF_FAT:
        reqVifFatFlow(r, ringGetVifFatIdx(a, o), ringGetVifFatRules(a, o));
        break;
      case OP_STOP:
        ring.pop();
        return false;
      default:
        break; // unknown op: skipped
    }
    ring.pop();
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------
// rx

/** Read the vifs poll() found ready and run their frames through the datapath. */
function rxPoll(w: DpWorker): void {
  const bad = w.pollErr | w.pollHup | w.pollNval;
  for (let k = 1; k < w.nfds; k++) {
    const ev = w.revents[k];
    if (ev === 0) continue;
    const v = w.fdVif[k];
    if (v >= PORT_BASE) rxPort(w, v - PORT_BASE, w.fds[k], ev);
    else if (w.vifIo[v] === VIF_IO_PACKET) rxPacket(w, v, w.fds[k], ev);
    else if (ev & bad) vifDown(w, v, ev & w.pollNval ? 'EBADF' : 'EBADFD');
    else rxTap(w, v, w.fds[k]);
  }
}

function rxTap(w: DpWorker, v: number, fd: number): void {
  let n: number;
  try {
    n = w.nat.readBatch(fd, w.rxSlab, SLOT, BURST, w.rxLens);
  } catch (e) {
    vifDown(w, v, (e as NodeJS.ErrnoException).code ?? 'EIO');
    return;
  }
  for (let f = 0; f < n; f++) dpRx(w.r, v, w.rxSlab, f * SLOT, w.rxLens[f]);
}

/**
 * A VM NIC of the emulated ESXi switch is readable: its frames, tagged with the port's VLAN, enter the
 * datapath on the trunk vif. Read 4 bytes into each slot, so the tag goes in front without a copy. A
 * port whose TAP failed goes silent until the agent unplugs it.
 */
function rxPort(w: DpWorker, vlan: number, fd: number, ev: number): void {
  const trunk = w.dvs.trunkOf[vlan];
  const packet = w.vifIo[PORT_BASE + vlan] === VIF_IO_PACKET;
  let bad = ev & (w.pollErr | w.pollHup | w.pollNval);
  if (packet && bad !== 0 && (ev & w.pollNval) === 0) {
    // A packet socket's error (the guest's link went down): taken (which clears it), the socket stays.
    w.nat.sockError(fd);
    if ((ev & w.pollIn) === 0) return;
    bad = 0;
  }
  let slab = w.portSlab;
  let lens = w.rxLens;
  let n = 0;
  try {
    if (bad !== 0 || trunk < 0) {
      bad = 1;
    } else if (packet) {
      // A qemu guest's tap, read as attached interfaces are (its offloads completed, TSO cut).
      if (w.portPktSlab === undefined) {
        w.portPktSlab = new Uint8Array(PKT_BURST * SLOT + 4);
        w.pktStage ??= new Uint8Array(PACKET_STAGE_BYTES);
      }
      slab = w.portPktSlab;
      lens = w.pktLens;
      n = w.nat.packetReadBatch(fd, slab.subarray(4), SLOT, PKT_BURST, lens, w.pktStage as Uint8Array, w.portPktStats);
    } else {
      n = w.nat.readBatch(fd, slab.subarray(4), SLOT, BURST, lens);
    }
  } catch {
    if (packet) return; // a packet socket's read error (ENETDOWN): it works again once the link is up
    bad = 1;
  }
  if (bad !== 0) {
    // The VM's NIC is gone (its namespace deleted, its fd closed): the port leaves the poll set and the
    // switch (frames for its VLAN are counted as for no port) until the agent unplugs it.
    w.vifFd[PORT_BASE + vlan] = -1;
    w.dvs.set(vlan, -1, -1);
    w.pollDirty = true;
    return;
  }
  for (let f = 0; f < n; f++) {
    const off = w.dvs.tag(slab, f * SLOT, lens[f], vlan);
    dpRx(w.r, trunk, slab, off, lens[f] + 4);
  }
}

/**
 * A packet socket is readable or reports an error. Its errors (ENETDOWN when the interface goes down
 * or is deleted) go to the agent, which knows whether the interface still exists; the socket stays.
 */
function rxPacket(w: DpWorker, v: number, fd: number, ev: number): void {
  const { nat, r } = w;
  if (ev & w.pollNval) {
    vifDown(w, v, 'EBADF');
    return;
  }
  if (ev & (w.pollErr | w.pollHup)) {
    const code = nat.sockError(fd);
    if (code !== '') w.port.postMessage({ type: 'vifError', idx: v, code } satisfies DpWorkerMsg);
    if ((ev & w.pollIn) === 0) return;
  }
  if (w.pktSlab === undefined) {
    w.pktSlab = new Uint8Array(PKT_BURST * SLOT);
    w.pktStage = new Uint8Array(PACKET_STAGE_BYTES);
  }
  const slab = w.pktSlab;
  const stats = w.pktStats;
  let n: number;
  try {
    n = nat.packetReadBatch(fd, slab, SLOT, PKT_BURST, w.pktLens, w.pktStage as Uint8Array, stats);
  } catch (e) {
    w.port.postMessage({ type: 'vifError', idx: v, code: (e as NodeJS.ErrnoException).code ?? 'EIO' } satisfies DpWorkerMsg);
    return;
  }
  // Frames the offload step could not take (a GSO type other than TCP/IPv4, bad offsets, no room).
  const dropped = stats[PS_DROPPED] - w.pktDropped;
  if (dropped > 0) {
    w.pktDropped = stats[PS_DROPPED];
    r.drops[VP_DROP_INTERFACE_RX_DISCARD] += dropped;
    r.vifs.stats[v * VIFS_LEN + VIFS_RX_ERRORS] += dropped;
  }
  // Frames the kernel dropped before the datapath saw them (a full ring or receive buffer): the vif's
  // RX errors, not a dropstats label (the module gets every frame of its vif; no such loss exists there).
  const lost = stats[PS_SOCK_DROPS] - w.pktSockDrops;
  if (lost > 0) {
    w.pktSockDrops = stats[PS_SOCK_DROPS];
    r.vifs.stats[v * VIFS_LEN + VIFS_RX_ERRORS] += lost;
  }
  for (let f = 0; f < n; f++) dpRx(r, v, slab, f * SLOT, w.pktLens[f]);
}

/** Tunnel destinations whose MAC the datapath learned or saw change since the last report, to the agent. */
function tunnelReport(w: DpWorker): void {
  const t = w.r.rt.tunnels;
  for (let k = 0; k < t.length; k++) {
    const nh = t[k];
    const key = macKey(nh.dmac, 0);
    if (key === 0 || w.tunnelMacs.get(nh.id) === key) continue;
    w.tunnelMacs.set(nh.id, key);
    w.port.postMessage({ type: 'tunnel', id: nh.id, mac: Array.from(nh.dmac) } satisfies DpWorkerMsg);
  }
}

/** Offload counters go to the agent about once a second (for `vrouter --info`'s offload line). */
function offloadReport(w: DpWorker, now: number): void {
  if (w.pktSlab === undefined || now - w.offloadReported < 1000) return;
  w.offloadReported = now;
  w.port.postMessage({ type: 'offload', stats: Array.from(w.pktStats) } satisfies DpWorkerMsg);
}

// ---------------------------------------------------------------------------------------------------

function run(d: DpWorkerData): void {
  const nat = loadNative();
  const port = parentPort as NonNullable<typeof parentPort>;
  if (d.cpu >= 0) nat.setAffinity(d.cpu);
  const w = workerNew(d, nat, port);
  port.postMessage({ type: 'ready', cpu: nat.getCpu() } satisfies DpWorkerMsg);
  for (;;) {
    const ready = nat.poll(w.fds, w.nfds, w.pollIn, w.revents, POLL_MS);
    if (ready > 0) {
      if (w.revents[0] !== 0) nat.eventfdDrain(w.wakeFd);
      rxPoll(w);
    }
    if (!ringApply(w)) break;
    routerDrainWork(w.r);
    if (w.r.fabricVif >= 0) {
      fabricTick(w.r);
      tunnelReport(w);
    }
    txFlush(w);
    batchPost(w);
    if (w.pollDirty) {
      w.pollDirty = false;
      pollRebuild(w);
    }
    offloadReport(w, performance.now());
  }
  txFlush(w);
  batchPost(w);
  port.postMessage({ type: 'stopped' } satisfies DpWorkerMsg);
}

if (parentPort) {
  try {
    run(workerData as DpWorkerData);
  } catch (e) {
    const err = e as Error;
    parentPort.postMessage({ type: 'error', message: err.message, stack: err.stack } satisfies DpWorkerMsg);
  }
}
