/**
 * Timers and a clock driven by hand (ExportTimers of src/collector/exporter.ts): nothing fires until the
 * test advances the clock, so what a test asserts about time does not depend on the machine's load.
 */
import type { ExportTimers } from '../../src/collector/exporter';

interface Pending {
  at: number;
  fn: () => void;
  every: number;
  cancelled: boolean;
}

export class ManualTimers implements ExportTimers {
  private t: number;
  private pending: Pending[] = [];
  /** The delays asked for with `after`, in order. */
  readonly delays: number[] = [];

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  readonly now = (): number => this.t;

  after(ms: number, fn: () => void): { cancel(): void } {
    this.delays.push(ms);
    return this.add(ms, fn, 0);
  }

  every(ms: number, fn: () => void): { cancel(): void } {
    return this.add(ms, fn, ms);
  }

  /** Timers waiting to fire (not cancelled), one-shot ones only when `oneShot`. */
  waiting(oneShot = false): number {
    return this.pending.filter((p) => !p.cancelled && (!oneShot || p.every === 0)).length;
  }

  /** Move the clock by `ms`, firing what falls due in time order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.pending.filter((p) => !p.cancelled && p.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.t = Math.max(this.t, due.at);
      if (due.every > 0) due.at += due.every;
      else due.cancelled = true;
      due.fn();
    }
    this.pending = this.pending.filter((p) => !p.cancelled);
    this.t = end;
  }

  private add(ms: number, fn: () => void, every: number): { cancel(): void } {
    const p: Pending = { at: this.t + ms, fn, every, cancelled: false };
    this.pending.push(p);
    return { cancel: () => (p.cancelled = true) };
  }
}
