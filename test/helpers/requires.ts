/**
 * What a test needs from the host (root, tools on the PATH), declared where the test is registered:
 *
 *   e2e({ root: true, tools: ['ip', 'iperf3'] }).serial('a TCP transfer …', async (t) => { … });
 *
 * With the needs met, `e2e` is ava's `test`. Otherwise the test is registered with `test.skip` and the
 * reason in its title ("… — skipped: needs iperf3 (Debian package iperf3)"), so a run reports it as
 * skipped, never as passed. Under CI (CI=true) nothing may skip: the test is registered as one that
 * fails with a message naming what is missing and the Debian package that provides it.
 *
 * Tools map to packages through scripts/system-deps.json (the one list .ci/run and the preflight read).
 * A tool is looked up on the PATH once (no process is spawned per test).
 */
import test, { type ExecutionContext } from 'ava';
import { type Needs, inCI, unmet } from './host-needs';

export type { Needs } from './host-needs';
export { describeTool, inCI, isRoot, missingTools, onPath, toolPackage, unmet } from './host-needs';

type Impl = (t: ExecutionContext) => void | Promise<void>;
/** What `e2e` returns: `test` itself, or a registrar that skips (or, in CI, fails) with the reason. */
export interface Registrar {
  (title: string, impl: Impl): void;
  serial(title: string, impl: Impl): void;
}

/** The registrar for a test with these needs: `test` when they are met, else skip (or fail in CI) with the reason. */
export function e2e(needs: Needs): Registrar {
  const why = unmet(needs);
  if (why.length === 0) return test;
  const reason = `needs ${why.join(', ')}`;
  if (inCI) {
    const fail = (serial: boolean) => (title: string): void => {
      const impl = (t: ExecutionContext): void => t.fail(`CI=true and this test cannot run: it ${reason}; install the packages (see scripts/system-deps.json) and run as root`);
      if (serial) test.serial(title, impl);
      else test(title, impl);
    };
    return Object.assign(fail(false), { serial: fail(true) });
  }
  const skip = (title: string, impl: Impl): void => test.skip(`${title} — skipped: ${reason}`, impl);
  return Object.assign(skip, { serial: skip });
}
