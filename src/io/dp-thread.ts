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
import {
  OP_BRIDGE_ADD, OP_FLOW_SET, OP_NH_ADD, OP_RT_ADD, OP_RT_DEL, OP_STOP, OP_VIF_ADD, OP_VIF_ATTACH, OP_VIF_DEL, OP_VIF_DETACH, OP_VIF_FAT,
  RING_RECORD, Ring,
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
  onError: (e: Error) => void;
}

export class DpThread implements DpChannel {
  private readonly nat: Native;
  private readonly ring = Ring.create(4096);
  private readonly wakeFd: number;
  private readonly worker: Worker;
  private seq = 0;
  private readonly waiting = new Map<number, (resp: FlowResp) => void>();
  /** Requests that did not fit in the ring yet (the datapath is behind). */
  private readonly backlog: Int32Array[] = [];
  private signalQueued = false;
  private stopped: Promise<void> | undefined;
  private exited = false;
  private readonly ready: Promise<number>;

  constructor(private readonly o: DpThreadOptions) {
    this.nat = loadNative();
    this.wakeFd = this.nat.eventfdCreate();
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
    });
  }

  /** Resolves with the CPU the datapath thread runs on once it polls. */
  whenReady(): Promise<number> {
    return this.ready;
  }

  private onBatch(resps: Int32Array, traps: Uint8Array, lens: Int32Array): void {
    for (let k = 0; k + 5 <= resps.length; k += 5) {
      const cb = this.waiting.get(resps[k]);
      if (cb === undefined) continue;
      this.waiting.delete(resps[k]);
      cb({ err: resps[k + 1], index: resps[k + 2], bytes: resps[k + 3], packets: resps[k + 4] });
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

  private pumpBacklog(): void {
    if (this.exited) return;
    while (this.backlog.length > 0) {
      const o = this.ring.reserve();
      if (o < 0) break;
      this.ring.i32.set(this.backlog.shift() as Int32Array, o);
      this.ring.push();
    }
    this.signal();
  }

  /** Queue one request record (words after the op come from `fill`). */
  private send(rec: Int32Array): void {
    if (this.backlog.length === 0) {
      const o = this.ring.reserve();
      if (o >= 0) {
        this.ring.i32.set(rec, o);
        this.ring.push();
        this.signal();
        return;
      }
    }
    this.backlog.push(rec);
    // Retried when replies free ring space, and on the next turn in case none are due.
    setImmediate(() => this.pumpBacklog());
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
    const rec = new Int32Array(RING_RECORD);
    rec[0] = OP_FLOW_SET;
    rec[1] = seq;
    rec[2] = q.index;
    rec[3] = q.rindex;
    rec[4] = q.action;
    rec[5] = q.flags;
    rec[6] = q.k0;
    rec[7] = q.k1;
    rec[8] = q.k2;
    rec[9] = q.k3;
    rec[10] = q.proto;
    rec[11] = q.vrf;
    rec[12] = q.dvrf;
    rec[13] = q.mirId;
    rec[14] = q.secMirId;
    rec[15] = q.ecmpNhIndex;
    rec[16] = q.srcNhIndex;
    rec[17] = q.dropReason;
    this.waiting.set(seq, done);
    this.send(rec);
  }

  vifAdd(idx: number, fd: number, type: number, vrf: number, nh: number, flags: number, mtu: number, mac: Uint8Array, io: number): void {
    const rec = new Int32Array(RING_RECORD);
    rec.set([OP_VIF_ADD, 0, idx, fd, type, vrf, nh, flags, mtu]);
    rec.set(mac, 9);
    rec[15] = io;
    this.send(rec);
  }

  /** The vif's OS interface is back on a new fd: up again, counters kept. */
  vifAttach(idx: number, fd: number, io: number): void {
    this.send(Int32Array.from([OP_VIF_ATTACH, 0, idx, fd, io]));
  }

  /** The vif's OS interface is gone: down, and its fd released. Resolves once the datapath stopped using the fd. */
  vifDetach(idx: number): Promise<void> {
    return this.acked(OP_VIF_DETACH, idx);
  }

  /** Delete the vif. Resolves once the datapath stopped using its fd. */
  vifDelete(idx: number): Promise<void> {
    return this.acked(OP_VIF_DEL, idx);
  }

  private acked(op: number, idx: number): Promise<void> {
    if (this.exited) return Promise.resolve();
    const seq = ++this.seq;
    return new Promise<void>((resolve) => {
      this.waiting.set(seq, () => resolve());
      this.send(Int32Array.from([op, seq, idx]));
    });
  }

  nhAdd(id: number, type: number, vif: number, dmac: Uint8Array): void {
    const rec = new Int32Array(RING_RECORD);
    rec.set([OP_NH_ADD, 0, id, type, vif]);
    rec.set(dmac, 5);
    this.send(rec);
  }

  vifFatFlow(idx: number, rules: number[]): void {
    const rec = new Int32Array(RING_RECORD);
    // One record: at most MAX_FAT_FLOW_ENTRIES (28) rules, which the configuration parser enforces.
    if (rules.length > RING_RECORD - 4) throw new Error(`vif ${idx}: ${rules.length} fat-flow rules do not fit a record`);
    const n = rules.length;
    rec.set([OP_VIF_FAT, 0, idx, n]);
    rec.set(rules.slice(0, n), 4);
    this.send(rec);
  }

  rtAdd(vrf: number, ipWord: number, nh: number, flags: number): void {
    this.send(Int32Array.from([OP_RT_ADD, 0, vrf, ipWord | 0, nh, flags]));
  }

  rtDelete(vrf: number, ipWord: number): void {
    this.send(Int32Array.from([OP_RT_DEL, 0, vrf, ipWord | 0]));
  }

  bridgeAdd(vrf: number, mac: Uint8Array, vif: number): void {
    const rec = new Int32Array(RING_RECORD);
    rec.set([OP_BRIDGE_ADD, 0, vrf]);
    rec.set(mac, 3);
    rec[9] = vif;
    this.send(rec);
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
      this.send(Int32Array.from([OP_STOP]));
    });
    return this.stopped;
  }
}
