/**
 * Waiting for a condition, not for a time: the machine is shared and loaded, so a fixed sleep is either
 * too short (flaky) or too long (slow). `waitFor` polls `cond` until it holds, and fails naming what it
 * waited for when `timeoutMs` passes.
 */
import { spawnSync } from 'child_process';

export interface WaitOptions {
  /** Give up after this long (ms); default 10 s. */
  timeoutMs?: number;
  /** Poll this often (ms); default 50. */
  intervalMs?: number;
  /** What is waited for, for the failure message. */
  what?: string;
}

/** Resolve once `cond()` is true; reject with "timed out after N ms waiting for WHAT" otherwise. */
export async function waitFor(cond: () => boolean | Promise<boolean>, o: WaitOptions = {}): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const intervalMs = o.intervalMs ?? 50;
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() >= end) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  if (await cond()) return;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${o.what ?? 'the condition'}`);
}

/** Whether something listens on `port` (TCP, or a bound UDP socket) inside namespace `ns` (ss in the namespace). */
export function listens(ns: string, port: number, proto: 'tcp' | 'udp' = 'tcp'): boolean {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'ss', '-Hn', proto === 'tcp' ? '-lt' : '-lu', `sport = :${port}`], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '';
}

/** Wait until a server listens on `port` in `ns`. */
export function waitListening(ns: string, port: number, proto: 'tcp' | 'udp' = 'tcp', timeoutMs = 10_000): Promise<void> {
  return waitFor(() => listens(ns, port, proto), { timeoutMs, what: `${proto} port ${port} to listen in ${ns}` });
}

/** `waitFor` as a boolean, for `t.true(await until(cond), detail)` where the detail says more than a timeout. */
export function until(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, intervalMs = 50): Promise<boolean> {
  return waitFor(cond, { timeoutMs, intervalMs }).then(() => true, () => false);
}
