/**
 * A host of the datapath core without an OS: the clock is set by hand (`now`, `advance`), traps are
 * collected with the time they were raised, transmitted frames are collected (or only counted by the
 * vif stats), and the random source is seeded. The offline replay (cli/replay-run.ts: the clock is the
 * capture's) and the tests (test/helpers/test-host.ts) run the core on it; the datapath thread
 * (io/dp-worker.ts) is the host with an OS. Like OVS's netdev-dummy and time/warp.
 *
 * It lives in src/dp because it does no OS work (no I/O, no timers, no node:* module) and depends only on
 * the core's HostOs seam; src/lib stays below dp. State: the instance's, owned by its one thread.
 * @module
 */
import { xorshift32 } from '../lib/xorshift';
import type { HostOs } from './router';

/** A pkt0 frame the datapath handed to the agent, copied, and the host's clock when it did. */
export interface ManualTrap {
  /** monoMs() when the trap was raised. */
  at: number;
  frame: Uint8Array;
}

export interface ManualHostOptions {
  /** The clock's start, ms (0). */
  now?: number;
  /** Seed of random32 (1). */
  seed?: number;
  /** Keep a copy of each transmitted frame in `sent` (true); off, transmits are only the vifs' counters. */
  keepSent?: boolean;
}

export class ManualHost implements HostOs {
  /** The clock, ms: set it, or `advance` it. */
  now: number;
  /** Traps not yet taken, oldest first. */
  readonly traps: ManualTrap[] = [];
  /** Transmitted frames (keepSent), oldest first. */
  readonly sent: { vif: number; data: Uint8Array }[] = [];
  readonly random32: () => number;
  private readonly keepSent: boolean;

  constructor(o: ManualHostOptions = {}) {
    this.now = o.now ?? 0;
    this.random32 = xorshift32(o.seed ?? 1);
    this.keepSent = o.keepSent ?? true;
  }

  monoMs(): number {
    return this.now;
  }

  tx(vif: number, buf: Uint8Array, off: number, len: number): void {
    if (this.keepSent) this.sent.push({ vif, data: buf.slice(off, off + len) });
  }

  trap(buf: Uint8Array, off: number, len: number): void {
    this.traps.push({ at: this.now, frame: buf.slice(off, off + len) });
  }

  /** Move the clock forward by `ms`. */
  advance(ms: number): void {
    this.now += ms;
  }
}
