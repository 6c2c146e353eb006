/**
 * The agent's side of the datapath thread: starts io/dp-worker in a worker thread over the router's
 * shared memory, and is the agent's DpChannel to it. Requests go into a shared ring and ring an eventfd
 * once per event-loop turn; traps and replies come back in one message per burst.
 * @module
 */
import { Worker } from 'worker_threads';
import { FlowReq, FlowResp } from '../dp/flow';
import { DpConfig, RouterShared } from '../dp/router';
import type { DpChannel } from '../dp/flow';
import type { ModuleParams } from '../params/module-params';
import { distFile } from '../lib/package-root';
import type { DpWorkerData, DpWorkerMsg } from './dp-worker';
import { Native, loadNative } from './native';
import { VIF_TYPE_VIRTUAL_VLAN } from '../dp/interface';
import {
  OP_MPLS_ADD, OP_VIF_DEL, OP_VIF_DETACH, OP_VXLAN_ADD, RING_RECORD, ringPutPortSet, RING_REPLY, Ring, ringGetReply, ringPutBridgeAdd, ringPutFlowSet,
  ringPutMapAdd, ringPutNhAdd, ringPutRtAdd,
  ringPutRtDel, ringPutStop, ringPutVifAdd, ringPutVifAttach, ringPutVifFat, ringPutVifRelease, ringReplySeq, VIF_IO_TAP,
} from './ring';

export interface DpThreadOptions {
  params: ModuleParams;
  cfg: Partial<DpConfig>;
  shared: RouterShared;
  cpu?: number;
  seed?: number;
  onTraps: (frames: Uint8Array[]) => void;
  onVifDown: (idx: number, code: string) => void;
  /** A packet-socket vif's socket reported an error (the agent checks its interface). */
  onVifError?: (idx: number, code: string) => void;
  /** Offload counters of the packet-socket vifs (cumulative; see Native.packetReadBatch). */
  onOffload?: (stats: number[]) => void;
  /** The datapath learned (by ARP) the MAC of tunnel nexthop `id`'s destination. */
  onTunnel?: (id: number, mac: Uint8Array) => void;
  onError: (e: Error) => void;
}

export class DpThread implements DpChannel {
  private readonly nat: Native;
  private readonly ring = Ring.create(4096);
  private readonly wakeFd: number;
  private readonly worker: Worker;
  private seq = 0;
  private readonly waiting = new Map<number, (resp: FlowResp) => void>();
  /** Requests that did not fit in the ring yet (the datapath is behind), from backlogHead on. */
  private backlog: Int32Array[] = [];
  private backlogHead = 0;
  private pumpQueued = false;
  /** Where the record being written goes: the ring's words, or a backlog record (see begin()). */
  private rec: Int32Array;
  private signalQueued = false;
  private stopped: Promise<void> | undefined;
  private exited = false;
  private readonly ready: Promise<number>;

  constructor(private readonly o: DpThreadOptions) {
    this.nat = loadNative();
    this.wakeFd = this.nat.eventfdCreate();
    this.rec = this.ring.i32;
    const data: DpWorkerData = {
      params: o.params, cfg: o.cfg, shared: o.shared, ring: this.ring.sab, wakeFd: this.wakeFd,
      cpu: o.cpu ?? -1, seed: o.seed ?? 0,
    };
    this.worker = new Worker(distFile('dp-worker.cjs'), { workerData: data });
    let resolveReady: (cpu: number) => void = () => undefined;
    let rejectReady: (e: Error) => void = () => undefined;
    this.ready = new Promise<number>((res, rej) => {
      resolveReady = res;
      rejectReady = rej;
    });
    this.worker.on('message', (m: DpWorkerMsg) => {
      if (m.type === 'batch') this.onBatch(m.resps, m.traps, m.trapLens);
      else if (m.type === 'ready') resolveReady(m.cpu);
      else if (m.type === 'vifDown') o.onVifDown(m.idx, m.code);
      else if (m.type === 'vifError') o.onVifError?.(m.idx, m.code);
      else if (m.type === 'offload') o.onOffload?.(m.stats);
      else if (m.type === 'tunnel') o.onTunnel?.(m.id, Uint8Array.from(m.mac));
      else if (m.type === 'error') {
        const e = new Error(`datapath thread: ${m.message}`);
        e.stack = m.stack;
        rejectReady(e);
        o.onError(e);
      }
    });
    this.worker.on('error', (e) => {
      rejectReady(e);
      o.onError(e);
    });
    this.worker.once('exit', () => {
      this.exited = true;
      rejectReady(new Error('the datapath thread exited'));
      // Nothing will answer what is pending: each waiter gets EIO (acknowledgements just resolve).
      const pending = [...this.waiting.values()];
      this.waiting.clear();
      for (const cb of pending) cb({ err: -5, index: -1, bytes: 0, packets: 0 });
    });
  }

  /** Resolves with the CPU the datapath thread runs on once it polls. */
  whenReady(): Promise<number> {
    return this.ready;
  }

  private onBatch(resps: Int32Array, traps: Uint8Array, lens: Int32Array): void {
    for (let k = 0; k + RING_REPLY <= resps.length; k += RING_REPLY) {
      const seq = ringReplySeq(resps, k);
      const cb = this.waiting.get(seq);
      if (cb === undefined) continue;
      this.waiting.delete(seq);
      cb(ringGetReply(resps, k, { err: 0, index: -1, bytes: 0, packets: 0 }));
    }
    if (lens.length > 0) {
      const frames: Uint8Array[] = [];
      let off = 0;
      for (let k = 0; k < lens.length; k++) {
        frames.push(traps.subarray(off, off + lens[k]));
        off += lens[k];
      }
      this.o.onTraps(frames);
    }
    this.pumpBacklog();
  }

  /**
   * Move backlog records into the ring while it has room. A burst (thousands of routes learned at once)
   * can queue thousands: they are taken from a head index (no shift() per record), and one retry is
   * queued at a time — on the next turn after progress, after a millisecond when the ring stayed full.
   */
  private pumpBacklog(): void {
    if (this.exited) return;
    const start = this.backlogHead;
    while (this.backlogHead < this.backlog.length) {
      const o = this.ring.reserve();
      if (o < 0) break;
      this.ring.i32.set(this.backlog[this.backlogHead++], o);
      this.ring.push();
    }
    if (this.backlogHead === this.backlog.length) {
      this.backlog = [];
      this.backlogHead = 0;
    } else {
      this.queuePump(this.backlogHead > start);
    }
    this.signal();
  }

  private queuePump(soon: boolean): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    const go = (): void => {
      this.pumpQueued = false;
      this.pumpBacklog();
    };
    if (soon) setImmediate(go);
    else setTimeout(go, 1);
  }

  /**
   * Start a record: @returns its offset in `this.rec`, which is the ring itself when it has room and
   * no backlog (requests keep their order), else a fresh record for the backlog. Finish with commit().
   */
  private begin(): number {
    if (this.backlogHead === this.backlog.length) {
      const o = this.ring.reserve();
      if (o >= 0) {
        this.rec = this.ring.i32;
        return o;
      }
    }
    this.rec = new Int32Array(RING_RECORD);
    return 0;
  }

  /** Publish the record begin() started. */
  private commit(): void {
    if (this.rec === this.ring.i32) {
      this.ring.push();
      this.signal();
      return;
    }
    this.backlog.push(this.rec);
    this.rec = this.ring.i32;
    // Retried when replies free ring space, and on the next turn in case none are due.
    this.queuePump(true);
  }

  /** Ring the datapath's eventfd once per event-loop turn. */
  private signal(): void {
    if (this.signalQueued) return;
    this.signalQueued = true;
    setImmediate(() => {
      this.signalQueued = false;
      this.nat.eventfdSignal(this.wakeFd);
    });
  }

  flowSet(q: FlowReq, done: (resp: FlowResp) => void): void {
    const seq = ++this.seq;
    this.waiting.set(seq, done);
    ringPutFlowSet(this.rec, this.begin(), seq, q);
    this.commit();
  }

  vifAdd(idx: number, fd: number, type: number, vrf: number, nh: number, flags: number, mtu: number, mac: Uint8Array, io: number, ip = 0): void {
    ringPutVifAdd(this.rec, this.begin(), idx, fd, type, vrf, nh, flags, mtu, mac, io, ip);
    this.commit();
  }

  subVifAdd(idx: number, parent: number, vlan: number, ovlan: number, vrf: number, nh: number, flags: number, mtu: number, mac: Uint8Array): void {
    ringPutVifAdd(this.rec, this.begin(), idx, -1, VIF_TYPE_VIRTUAL_VLAN, vrf, nh, flags, mtu, mac, VIF_IO_TAP, 0, parent, vlan, ovlan);
    this.commit();
  }

  /**
   * Plug the emulated ESXi switch's port of `vlan`: the VM NIC's `fd` (a TAP, or with `io` VIF_IO_PACKET
   * a packet socket on a qemu guest's tap), tagged onto trunk vif `trunk` (fd −1 unplugs). Resolves once the datapath thread uses the new fd (or stopped using the old one).
   */
  portSet(vlan: number, fd: number, trunk: number, io = VIF_IO_TAP): Promise<void> {
    if (this.exited) return Promise.resolve();
    const seq = ++this.seq;
    return new Promise<void>((resolve) => {
      this.waiting.set(seq, () => resolve());
      ringPutPortSet(this.rec, this.begin(), seq, vlan, fd, trunk, io);
      this.commit();
    });
  }

  /** The vif's OS interface is back on a new fd: up again, counters kept. */
  vifAttach(idx: number, fd: number, io: number): void {
    ringPutVifAttach(this.rec, this.begin(), idx, fd, io);
    this.commit();
  }

  /** The vif's OS interface is gone: down, and its fd released. Resolves once the datapath stopped using the fd. */
  vifDetach(idx: number): Promise<void> {
    return this.acked(OP_VIF_DETACH, idx);
  }

  /** Delete the vif. Resolves once the datapath stopped using its fd. */
  vifDelete(idx: number): Promise<void> {
    return this.acked(OP_VIF_DEL, idx);
  }

  private acked(op: typeof OP_VIF_DEL | typeof OP_VIF_DETACH, idx: number): Promise<void> {
    if (this.exited) return Promise.resolve();
    const seq = ++this.seq;
    return new Promise<void>((resolve) => {
      this.waiting.set(seq, () => resolve());
      ringPutVifRelease(this.rec, this.begin(), op, seq, idx);
      this.commit();
    });
  }

  nhAdd(id: number, type: number, vif: number, dmac: Uint8Array, flags = 0, sip = 0, dip = 0, vrf = 0): void {
    ringPutNhAdd(this.rec, this.begin(), id, type, vif, dmac, flags, sip, dip, vrf);
    this.commit();
  }

  mplsAdd(label: number, nh: number): void {
    ringPutMapAdd(this.rec, this.begin(), OP_MPLS_ADD, label, nh);
    this.commit();
  }

  vxlanAdd(vni: number, nh: number): void {
    ringPutMapAdd(this.rec, this.begin(), OP_VXLAN_ADD, vni, nh);
    this.commit();
  }

  /** @throws RangeError if the rules do not fit one record (more than MAX_FAT_FLOW_ENTRIES, which the configuration parser refuses). */
  vifFatFlow(idx: number, rules: number[]): void {
    const o = this.begin();
    ringPutVifFat(this.rec, o, idx, rules); // throws before anything is published
    this.commit();
  }

  rtAdd(vrf: number, ipWord: number, nh: number, flags: number, label = -1, mac: Uint8Array | null = null): void {
    ringPutRtAdd(this.rec, this.begin(), vrf, ipWord | 0, nh, flags, label, mac);
    this.commit();
  }

  rtDelete(vrf: number, ipWord: number): void {
    ringPutRtDel(this.rec, this.begin(), vrf, ipWord | 0);
    this.commit();
  }

  bridgeAdd(vrf: number, mac: Uint8Array, vif: number, nh = -1, label = -1): void {
    ringPutBridgeAdd(this.rec, this.begin(), vrf, mac, vif, nh, label);
    this.commit();
  }

  /** Stop the datapath thread (it finishes the burst, flushes, and exits); resolves once it is gone. */
  stop(): Promise<void> {
    if (this.stopped) return this.stopped;
    this.stopped = new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(grace);
        try {
          this.nat.close(this.wakeFd);
        } catch {
          // already closed
        }
        resolve();
      };
      // A wedged datapath still goes: terminated after a grace period.
      const grace = setTimeout(() => void this.worker.terminate().then(done, done), 2000);
      if (this.exited) {
        done();
        return;
      }
      this.worker.once('exit', done);
      this.worker.on('message', (m: DpWorkerMsg) => {
        if (m.type === 'stopped') void this.worker.terminate();
      });
      ringPutStop(this.rec, this.begin());
      this.commit();
    });
    return this.stopped;
  }
}
