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
import { performance } from 'perf_hooks';
import { createDatapath, dpRx } from '../dp/datapath';
import { flowReqNew, flowSet, routerDrainWork, FlowResp } from '../dp/flow';
import { VIFS_RX_ERRORS, VIFS_TX_ERRORS, VIFS_LEN, vifAdd, vifDelete, vifSetFatFlow } from '../dp/interface';
import { VP_DROP_INTERFACE_RX_DISCARD, VP_DROP_INTERFACE_TX_DISCARD } from '../dp/defs';
import { bridgeAdd, nhAdd, rtAdd, rtDelete } from '../dp/nexthop';
import { DpConfig, HostOs, RouterShared } from '../dp/router';
import type { ModuleParams } from '../params/module-params';
import { PACKET_STAGE_BYTES, PS_COUNT_LEN, PS_DROPPED, PS_SOCK_DROPS, loadNative } from './native';
import { xorshift32 } from '../lib/xorshift';
import {
  OP_BRIDGE_ADD,
  OP_FLOW_SET,
  OP_NH_ADD,
  OP_RT_ADD,
  OP_RT_DEL,
  OP_STOP,
  OP_VIF_ADD,
  OP_VIF_ATTACH,
  OP_VIF_DEL,
  OP_VIF_DETACH,
  OP_VIF_FAT,
  Ring,
  VIF_IO_PACKET,
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
  | { type: 'batch'; resps: Int32Array; traps: Uint8Array; trapLens: Int32Array }
  | { type: 'vifDown'; idx: number; code: string }
  /** A packet-socket vif's socket reported an error (ENETDOWN: its interface went down or away). */
  | { type: 'vifError'; idx: number; code: string }
  /** Offload work on packet-socket vifs since the last report: checksums completed, TSO frames, segments. */
  | { type: 'offload'; stats: number[] }
  | { type: 'stopped' }
  | { type: 'error'; message: string; stack?: string };

const BURST = 64; // frames read from one TAP per poll round
const PKT_BURST = 256; // slots for one packet socket per poll round (TSO frames take several)
const MAX_VIFS = 4352;

function run(d: DpWorkerData): void {
  const nat = loadNative();
  const port = parentPort as NonNullable<typeof parentPort>;
  if (d.cpu >= 0) nat.setAffinity(d.cpu);
  const maxMtu = 9216;
  const SLOT = maxMtu + 32;

  // tx: per-vif batches, flushed at the end of each burst (a TAP write runs the receiver's stack in
  // this thread, so one syscall per frame is the cost that matters; batching saves the JS↔C crossings).
  const txSlab: (Uint8Array | undefined)[] = [];
  const txOffs: (Int32Array | undefined)[] = [];
  const txLens: (Int32Array | undefined)[] = [];
  const txCount = new Int32Array(MAX_VIFS);
  const vifFd = new Int32Array(MAX_VIFS).fill(-1);
  const vifIo = new Uint8Array(MAX_VIFS); // VIF_IO_*
  const pending: number[] = []; // vifs with frames to write

  // traps: concatenated frames, posted once per burst
  let trapBuf = new Uint8Array(1 << 16);
  let trapLen = 0;
  const trapLens: number[] = [];
  const resps: number[] = [];

  const host: HostOs = {
    monoMs: () => performance.now(),
    random32: xorshift32(d.seed >>> 0 || (Math.random() * 0x100000000) >>> 0),
    tx(vif: number, buf: Uint8Array, off: number, len: number): void {
      let slab = txSlab[vif];
      if (slab === undefined) {
        slab = txSlab[vif] = new Uint8Array(BURST * SLOT);
        txOffs[vif] = new Int32Array(BURST);
        txLens[vif] = new Int32Array(BURST);
      }
      let n = txCount[vif];
      if (n === BURST) {
        flushVif(vif);
        n = 0;
      }
      if (n === 0) pending.push(vif);
      const o = n * SLOT;
      slab.set(buf.subarray(off, off + Math.min(len, SLOT)), o);
      (txOffs[vif] as Int32Array)[n] = o;
      (txLens[vif] as Int32Array)[n] = Math.min(len, SLOT);
      txCount[vif] = n + 1;
    },
    trap(buf: Uint8Array, off: number, len: number): void {
      if (trapLen + len > trapBuf.length) {
        const b = new Uint8Array(Math.max(trapBuf.length * 2, trapLen + len));
        b.set(trapBuf.subarray(0, trapLen));
        trapBuf = b;
      }
      trapBuf.set(buf.subarray(off, off + len), trapLen);
      trapLen += len;
      trapLens.push(len);
    },
  };

  const r = createDatapath(host, d.params, d.cfg, d.shared);
  const ring = new Ring(d.ring);
  const rxSlab = new Uint8Array(BURST * SLOT);
  const rxLens = new Int32Array(BURST);
  // Packet sockets: their own slab (TSO frames become many segments) and staging area, made on first use.
  let pktSlab: Uint8Array | undefined;
  let pktStage: Uint8Array | undefined;
  const pktLens = new Int32Array(PKT_BURST);
  const pktStats = new Float64Array(PS_COUNT_LEN);
  let pktDropped = 0;
  let pktSockDrops = 0;
  let offloadReported = 0;
  const fds = new Int32Array(MAX_VIFS + 1);
  const fdVif = new Int32Array(MAX_VIFS + 1);
  const revents = new Int32Array(MAX_VIFS + 1);
  let nfds = 1;
  fds[0] = d.wakeFd;
  const req = flowReqNew();
  const resp: FlowResp = { err: 0, index: -1, bytes: 0, packets: 0 };
  const { POLLIN, POLLERR, POLLHUP, POLLNVAL } = nat.constants;

  function rebuildPollSet(): void {
    nfds = 1;
    for (let v = 0; v < MAX_VIFS; v++) {
      if (vifFd[v] >= 0 && r.vifs.vifs[v]?.up) {
        fds[nfds] = vifFd[v];
        fdVif[nfds] = v;
        nfds++;
      }
    }
  }

  let pollDirty = false;

  /** The TAP is gone (deleted, or its namespace): the vif goes down for good and leaves the poll set. */
  function vifDown(v: number, code: string): void {
    const vif = r.vifs.vifs[v];
    if (vif === undefined || !vif.up) return;
    vif.up = false;
    r.vifs.stats[v * VIFS_LEN + VIFS_RX_ERRORS]++;
    pollDirty = true; // rebuilt after the rx loop, which is walking the current set
    port.postMessage({ type: 'vifDown', idx: v, code } satisfies DpWorkerMsg);
  }

  function flushVif(v: number): void {
    const n = txCount[v];
    txCount[v] = 0;
    if (n === 0 || vifFd[v] < 0) return;
    let w = 0;
    try {
      w = vifIo[v] === VIF_IO_PACKET
        ? nat.packetWriteBatch(vifFd[v], txSlab[v] as Uint8Array, txOffs[v] as Int32Array, txLens[v] as Int32Array, n)
        : nat.writeBatch(vifFd[v], txSlab[v] as Uint8Array, txOffs[v] as Int32Array, txLens[v] as Int32Array, n);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      // EBADFD: the TAP was deleted under its fd. Anything else (EIO: the VM took its link down; ENETDOWN
      // on a packet socket, whose interface the agent checks on the error it reads) loses these frames
      // but keeps the vif.
      if (vifIo[v] !== VIF_IO_PACKET && (code === 'EBADFD' || code === 'EBADF' || code === 'ENODEV')) vifDown(v, code);
    }
    if (w < n) {
      r.vifs.stats[v * VIFS_LEN + VIFS_TX_ERRORS] += n - w;
      r.drops[VP_DROP_INTERFACE_TX_DISCARD] += n - w;
    }
  }

  function flushTx(): void {
    for (let k = 0; k < pending.length; k++) flushVif(pending[k]);
    pending.length = 0;
  }

  /** Apply the agent's requests. @returns false on OP_STOP. */
  function drainRing(): boolean {
    const a = ring.i32;
    for (let o = ring.peek(); o >= 0; o = ring.peek()) {
      const op = a[o];
      if (op === OP_FLOW_SET) {
        req.index = a[o + 2];
        req.rindex = a[o + 3];
        req.action = a[o + 4];
        req.flags = a[o + 5];
        req.k0 = a[o + 6];
        req.k1 = a[o + 7];
        req.k2 = a[o + 8];
        req.k3 = a[o + 9];
        req.proto = a[o + 10];
        req.vrf = a[o + 11];
        req.dvrf = a[o + 12];
        req.mirId = a[o + 13];
        req.secMirId = a[o + 14];
        req.ecmpNhIndex = a[o + 15];
        req.srcNhIndex = a[o + 16];
        req.dropReason = a[o + 17];
        flowSet(r, req, resp);
        resps.push(a[o + 1], resp.err, resp.index, resp.bytes, resp.packets);
      } else if (op === OP_VIF_ADD) {
        const idx = a[o + 2];
        vifAdd(r.vifs, {
          idx, type: a[o + 4], name: '', vrf: a[o + 5], nh: a[o + 6], flags: a[o + 7], mtu: a[o + 8],
          mac: Uint8Array.from(a.subarray(o + 9, o + 15)), up: true,
        });
        vifFd[idx] = a[o + 3];
        vifIo[idx] = a[o + 15];
        rebuildPollSet();
      } else if (op === OP_VIF_ATTACH) {
        const idx = a[o + 2];
        const vif = r.vifs.vifs[idx];
        if (vif !== undefined) {
          vif.up = true;
          vifFd[idx] = a[o + 3];
          vifIo[idx] = a[o + 4];
          rebuildPollSet();
        }
      } else if (op === OP_VIF_DEL || op === OP_VIF_DETACH) {
        const idx = a[o + 2];
        flushVif(idx); // what was queued for it goes out first (or is counted)
        if (op === OP_VIF_DEL) vifDelete(r.vifs, idx);
        else {
          const vif = r.vifs.vifs[idx];
          // Counted as a TAP's vanishing is: one RX error.
          if (vif !== undefined && vif.up) r.vifs.stats[idx * VIFS_LEN + VIFS_RX_ERRORS]++;
          if (vif !== undefined) vif.up = false;
        }
        vifFd[idx] = -1;
        txCount[idx] = 0;
        rebuildPollSet();
        // The agent closes the fd once it has this: nothing here uses it any more.
        if (a[o + 1] !== 0) resps.push(a[o + 1], 0, idx, 0, 0);
      } else if (op === OP_NH_ADD) {
        nhAdd(r.rt, { id: a[o + 2], type: a[o + 3], vif: a[o + 4], dmac: Uint8Array.from(a.subarray(o + 5, o + 11)) });
      } else if (op === OP_RT_ADD) {
        rtAdd(r.rt, a[o + 2], a[o + 3], { nh: a[o + 4], flags: a[o + 5] });
      } else if (op === OP_RT_DEL) {
        rtDelete(r.rt, a[o + 2], a[o + 3]);
      } else if (op === OP_BRIDGE_ADD) {
        bridgeAdd(r.rt, a[o + 2], Uint8Array.from(a.subarray(o + 3, o + 9)), a[o + 9]);
      } else if (op === OP_VIF_FAT) {
        r.fatFlowVifs += vifSetFatFlow(r.vifs, a[o + 2], a.subarray(o + 4, o + 4 + a[o + 3]));
      } else if (op === OP_STOP) {
        ring.pop();
        return false;
      }
      ring.pop();
    }
    return true;
  }

  function post(): void {
    if (resps.length === 0 && trapLens.length === 0) return;
    const msg: DpWorkerMsg = {
      type: 'batch',
      resps: Int32Array.from(resps),
      traps: trapBuf.slice(0, trapLen),
      trapLens: Int32Array.from(trapLens),
    };
    resps.length = 0;
    trapLens.length = 0;
    trapLen = 0;
    port.postMessage(msg, [msg.resps.buffer as ArrayBuffer, msg.traps.buffer as ArrayBuffer, msg.trapLens.buffer as ArrayBuffer]);
  }

  /**
   * A packet socket is readable or reports an error. Its errors (ENETDOWN when the interface goes down
   * or is deleted) go to the agent, which knows whether the interface still exists; the socket stays.
   */
  function rxPacket(v: number, fd: number, ev: number): void {
    if (ev & POLLNVAL) {
      vifDown(v, 'EBADF');
      return;
    }
    if (ev & (POLLERR | POLLHUP)) {
      const code = nat.sockError(fd);
      if (code !== '') port.postMessage({ type: 'vifError', idx: v, code } satisfies DpWorkerMsg);
      if ((ev & POLLIN) === 0) return;
    }
    if (pktSlab === undefined) {
      pktSlab = new Uint8Array(PKT_BURST * SLOT);
      pktStage = new Uint8Array(PACKET_STAGE_BYTES);
    }
    let n: number;
    try {
      n = nat.packetReadBatch(fd, pktSlab, SLOT, PKT_BURST, pktLens, pktStage as Uint8Array, pktStats);
    } catch (e) {
      port.postMessage({ type: 'vifError', idx: v, code: (e as NodeJS.ErrnoException).code ?? 'EIO' } satisfies DpWorkerMsg);
      return;
    }
    // Frames the offload step could not take (a GSO type other than TCP/IPv4, bad offsets, no room).
    const dropped = pktStats[PS_DROPPED] - pktDropped;
    if (dropped > 0) {
      pktDropped = pktStats[PS_DROPPED];
      r.drops[VP_DROP_INTERFACE_RX_DISCARD] += dropped;
      r.vifs.stats[v * VIFS_LEN + VIFS_RX_ERRORS] += dropped;
    }
    // Frames the kernel dropped before the datapath saw them (a full ring or receive buffer): the vif's
    // RX errors, not a dropstats label (the module gets every frame of its vif; no such loss exists there).
    const lost = pktStats[PS_SOCK_DROPS] - pktSockDrops;
    if (lost > 0) {
      pktSockDrops = pktStats[PS_SOCK_DROPS];
      r.vifs.stats[v * VIFS_LEN + VIFS_RX_ERRORS] += lost;
    }
    for (let f = 0; f < n; f++) dpRx(r, v, pktSlab, f * SLOT, pktLens[f]);
  }

  /** Offload counters go to the agent about once a second (for `vrouter --info`'s offload line). */
  function reportOffload(now: number): void {
    if (pktSlab === undefined || now - offloadReported < 1000) return;
    offloadReported = now;
    port.postMessage({ type: 'offload', stats: Array.from(pktStats) } satisfies DpWorkerMsg);
  }

  port.postMessage({ type: 'ready', cpu: nat.getCpu() } satisfies DpWorkerMsg);
  for (;;) {
    const ready = nat.poll(fds, nfds, POLLIN, revents, 50);
    if (ready > 0) {
      if (revents[0] !== 0) nat.eventfdDrain(d.wakeFd);
      for (let k = 1; k < nfds; k++) {
        const ev = revents[k];
        if (ev === 0) continue;
        const v = fdVif[k];
        if (ev & (POLLERR | POLLHUP | POLLNVAL) && vifIo[v] !== VIF_IO_PACKET) {
          vifDown(v, ev & POLLNVAL ? 'EBADF' : 'EBADFD');
          continue;
        }
        if (vifIo[v] === VIF_IO_PACKET) {
          rxPacket(v, fds[k], ev);
          continue;
        }
        let n: number;
        try {
          n = nat.readBatch(fds[k], rxSlab, SLOT, BURST, rxLens);
        } catch (e) {
          vifDown(v, (e as NodeJS.ErrnoException).code ?? 'EIO');
          continue;
        }
        for (let f = 0; f < n; f++) dpRx(r, v, rxSlab, f * SLOT, rxLens[f]);
      }
    }
    if (!drainRing()) break;
    routerDrainWork(r);
    flushTx();
    post();
    if (pollDirty) {
      pollDirty = false;
      rebuildPollSet();
    }
    reportOffload(performance.now());
  }
  flushTx();
  post();
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
