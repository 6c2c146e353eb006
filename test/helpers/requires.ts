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
import * as fs from 'fs';
import * as path from 'path';

export interface Needs {
  /** Namespaces, TAP devices, packet sockets. */
  root?: boolean;
  /** Commands the test runs (looked up on the PATH). */
  tools?: string[];
}

type Impl = (t: ExecutionContext) => void | Promise<void>;
/** What `e2e` returns: `test` itself, or a registrar that skips (or, in CI, fails) with the reason. */
export interface Registrar {
  (title: string, impl: Impl): void;
  serial(title: string, impl: Impl): void;
}

export const isRoot = process.getuid?.() === 0;
export const inCI = process.env.CI === 'true';

interface DepEntry {
  command: string;
  package: string;
  for: string;
}
const DEPS_FILE = path.join(__dirname, '..', '..', 'scripts', 'system-deps.json');
let deps: Map<string, DepEntry> | undefined;
function depsByCommand(): Map<string, DepEntry> {
  if (!deps) {
    const j = JSON.parse(fs.readFileSync(DEPS_FILE, 'utf8')) as { build?: DepEntry[]; tools?: DepEntry[] };
    deps = new Map([...(j.build ?? []), ...(j.tools ?? [])].map((e) => [e.command, e]));
  }
  return deps;
}

/** The Debian package that provides `cmd` (scripts/system-deps.json), or undefined if it is not listed. */
export function toolPackage(cmd: string): string | undefined {
  return depsByCommand().get(cmd)?.package;
}

const found = new Map<string, boolean>();
/** Whether `cmd` is an executable file in a directory of $PATH (looked up once per command). */
export function onPath(cmd: string): boolean {
  let ok = found.get(cmd);
  if (ok === undefined) {
    ok = (process.env.PATH ?? '').split(path.delimiter).some((d) => {
      if (!d) return false;
      try {
        fs.accessSync(path.join(d, cmd), fs.constants.X_OK);
        return fs.statSync(path.join(d, cmd)).isFile();
      } catch {
        return false;
      }
    });
    found.set(cmd, ok);
  }
  return ok;
}

/** The tools of `tools` that are not on the PATH, in the order given. */
export function missingTools(tools: readonly string[]): string[] {
  return tools.filter((c) => !onPath(c));
}

/** "iperf3 (Debian package iperf3)": a tool and where it comes from. */
export function describeTool(cmd: string): string {
  const p = toolPackage(cmd);
  return p ? `${cmd} (Debian package ${p})` : `${cmd} (not in scripts/system-deps.json)`;
}

/** Why `needs` are not met here: one phrase per missing thing ([] when the test can run). */
export function unmet(needs: Needs): string[] {
  const why: string[] = [];
  if (needs.root && !isRoot) why.push('root (namespaces, TAP devices)');
  for (const c of missingTools(needs.tools ?? [])) why.push(describeTool(c));
  return why;
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
