/**
 * The project's own Node-API addon (src/native/vrouter_native.c, built by node-gyp at `npm install`
 * into build/Release/vrouter_native.node): TAP devices, batched non-blocking read/write, poll, eventfd,
 * per-thread CPU affinity and network namespace. Everything is synchronous; only `poll` blocks.
 *
 * Syscall failures throw a {@link NativeError}: `code` is the errno name ('EAGAIN', 'EBUSY', 'EBADFD';
 * 'E<n>' when the name is not in the addon's table), `errno` the positive errno number, `syscall` the
 * call ('TUNSETIFF', 'read', ...). Bad arguments throw a TypeError (RangeError for a frame outside its
 * buffer or a number out of range).
 *
 * The module keeps no global state and loads in any worker thread; fds are process-wide, so a fd opened
 * in one thread may be used or closed in another.
 * @module
 */
import * as fs from 'fs';
import { createRequire } from 'module';
import * as path from 'path';
import { UserError } from '../errors';
import { packageRoot } from '../lib/package-root';

/** The Error the addon throws when a syscall fails. */
export interface NativeError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

export interface NativeConstants {
  readonly IFF_TAP: number;
  readonly IFF_NO_PI: number;
  readonly IFF_MULTI_QUEUE: number;
  readonly IFF_VNET_HDR: number;
  readonly POLLIN: number;
  readonly POLLOUT: number;
  readonly POLLERR: number;
  readonly POLLHUP: number;
  readonly POLLNVAL: number;
  readonly CLONE_NEWNET: number;
}

export interface Native {
  /**
   * Open /dev/net/tun (O_RDWR|O_NONBLOCK|O_CLOEXEC) and attach it with TUNSETIFF to the interface
   * `name` ('' lets the kernel choose; at most 15 bytes) with `flags` (IFF_TAP|IFF_NO_PI, ...).
   * Returns the fd and the interface's actual name. A non-persistent TAP goes away with its last fd.
   */
  tapOpen(name: string, flags: number): { fd: number; name: string };
  /** TUNGETFEATURES: the IFF_* flags the kernel's tun driver supports. */
  tunFeatures(): number;
  /**
   * read() frames, one per syscall, into `buf` at k*slotSize and their lengths into lens[k], until
   * EAGAIN, end of file or `maxFrames` frames. Returns the count. Another error is thrown when no
   * frame was read yet, else the count is returned and the next call throws it.
   */
  readBatch(fd: number, buf: Uint8Array, slotSize: number, maxFrames: number, lens: Int32Array): number;
  /**
   * write() frames buf[offs[k], offs[k]+lens[k]) for k < n. Returns how many were written: on EAGAIN
   * it stops (the caller drops the rest); another error is thrown when nothing was written yet, else
   * the count is returned. All frames are bounds-checked before anything is written.
   */
  writeBatch(fd: number, buf: Uint8Array, offs: Int32Array, lens: Int32Array, n: number): number;
  /** One write() of buf[off, off+len): the bytes written, or -1 on EAGAIN. */
  writeFrame(fd: number, buf: Uint8Array, off: number, len: number): number;
  /**
   * poll(2) on fds[0..n) all with `events`; revents[k] gets each fd's revents. Returns poll's result
   * (0 on timeout, and on EINTR with all revents 0). timeoutMs -1 waits forever.
   */
  poll(fds: Int32Array, n: number, events: number, revents: Int32Array, timeoutMs: number): number;
  /** eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC). */
  eventfdCreate(): number;
  /** Add 1 to the eventfd's counter (a saturated counter, EAGAIN, is ignored). */
  eventfdSignal(fd: number): void;
  /** Read and reset the eventfd's counter: 0 when it was 0. */
  eventfdDrain(fd: number): number;
  close(fd: number): void;
  /** Pin the calling thread (not the process) to one CPU. */
  setAffinity(cpu: number): void;
  /** Take `cpu` out of the affinity of every thread of the process that has another CPU; how many moved. */
  avoidCpu(cpu: number): number;
  /** sched_getcpu(): the CPU the calling thread runs on now. */
  getCpu(): number;
  /**
   * Move the calling thread into the namespace file at `path` (e.g. /run/netns/NAME) with setns(2);
   * nstype CLONE_NEWNET for a network namespace (works from a worker thread; sockets and TAPs the
   * thread creates afterwards belong to that namespace).
   */
  setns(path: string, nstype: number): void;
  /**
   * A packet socket (AF_PACKET, SOCK_RAW, all protocols, non-blocking) bound to the interface `ifname`,
   * with PACKET_VNET_HDR (so guest offloads are visible), PACKET_AUXDATA (the VLAN tag the kernel took
   * out of a frame, for frames received by recvmsg), PACKET_IGNORE_OUTGOING where the kernel has it,
   * PACKET_QDISC_BYPASS, a 4 MiB receive buffer, and, on kernels 4.9 and later, the receive ring `want`
   * names: 'ring' (TPACKET_V2, 2496 slots of 1664 bytes; a larger frame, e.g. TSO, is received from the
   * buffer) or 'ring-v3' (TPACKET_V3, 64 blocks of 256 KiB, a block handed over when full or after 1 ms).
   * Otherwise the buffer is read by recvmmsg (`io: 'recvmmsg'`). close() unmaps the ring.
   */
  packetOpen(ifname: string, want: PacketIo): { fd: number; ifindex: number; io: PacketIo };
  /**
   * Frames from a packet socket (its ring, or recvmmsg()) into `buf` slots as readBatch does, completing
   * partial checksums and cutting TCP/IPv4 TSO frames into segments (several slots), and putting back the
   * outer VLAN tag (802.1Q or 802.1ad) the kernel takes out of every frame it receives: 4 bytes after the
   * MAC addresses, in each segment too, so frames come out as they were on the wire (a frame that does
   * not fit `slotSize` with its tag is dropped and counted, never cut). `stage` is scratch
   * of at least PACKET_STAGE_BYTES (recvmmsg only); `stats` (Float64Array(PS_COUNT_LEN)) accumulates:
   * checksums completed, TSO frames, segments made, frames dropped (other GSO types, bad offload
   * offsets, truncated by the ring), own transmissions seen, frames the kernel dropped on the socket (a
   * full ring or receive buffer: PACKET_STATISTICS).
   */
  packetReadBatch(fd: number, buf: Uint8Array, slotSize: number, maxFrames: number, lens: Int32Array, stage: Uint8Array, stats: Float64Array): number;
  /** sendmmsg() frames to a packet socket as writeBatch writes them (EAGAIN or ENOBUFS stop it). */
  packetWriteBatch(fd: number, buf: Uint8Array, offs: Int32Array, lens: Int32Array, n: number): number;
  /** The socket's pending error (SO_ERROR, read and cleared) as an errno name, or ''. */
  sockError(fd: number): string;
  readonly constants: NativeConstants;
}

/** How a packet socket is read: a TPACKET_V2 ring, a TPACKET_V3 ring, or recvmmsg() batches. */
export type PacketIo = 'ring' | 'ring-v3' | 'recvmmsg';
export const PACKET_IOS: readonly PacketIo[] = ['ring', 'ring-v3', 'recvmmsg'];

/** Bytes of packetReadBatch's `stage`: 16 frames of 64 KiB with their headers. */
export const PACKET_STAGE_BYTES = 16 * (10 + 65536 + 32);
/** Slots packetReadBatch keeps free before reading more (one TSO frame's segments). */
export const PACKET_SEG_ROOM = 46;
/** Indices of packetReadBatch's stats. */
export const PS_CSUM = 0;
export const PS_GSO_FRAMES = 1;
export const PS_GSO_SEGS = 2;
export const PS_DROPPED = 3;
export const PS_OUTGOING = 4;
export const PS_SOCK_DROPS = 5;
export const PS_COUNT_LEN = 6;

/** Whether `e` is an error thrown by a failed syscall in the addon (optionally with this code). */
export function isNativeError(e: unknown, code?: string): e is NativeError {
  return (
    e instanceof Error &&
    typeof (e as Partial<NativeError>).code === 'string' &&
    typeof (e as Partial<NativeError>).syscall === 'string' &&
    (code === undefined || (e as NativeError).code === code)
  );
}

const ADDON = path.join('build', 'Release', 'vrouter_native.node');

let cached: Native | undefined;

/** Where loadNative looks for the addon. */
export function nativeAddonPath(): string {
  return path.join(packageRoot(), ADDON);
}

/** Load (once per thread) the addon build/Release/vrouter_native.node of the package. */
export function loadNative(): Native {
  if (cached) return cached;
  const file = nativeAddonPath();
  if (!fs.existsSync(file)) {
    throw new UserError(
      `the native addon is missing: ${file} does not exist; run \`npm install\` in the package ` +
        `directory (it builds the addon with node-gyp; needs python3, make and a C compiler)`,
    );
  }
  // createRequire keeps esbuild from trying to bundle the .node file.
  const req = createRequire(__filename);
  cached = req(file) as Native;
  return cached;
}
