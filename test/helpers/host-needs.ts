/**
 * What the host has: root, tools on the PATH, and the Debian package of each tool
 * (scripts/system-deps.json), through scripts/preflight.cjs. No ava here; tests use it through ./requires.
 */

/** What a test needs from the host. */
export interface Needs {
  /** Namespaces, TAP devices, packet sockets. */
  root?: boolean;
  /** Commands the test runs (looked up on the PATH). */
  tools?: string[];
}

export const isRoot = process.getuid?.() === 0;
export const inCI = process.env.CI === 'true';

interface DepEntry {
  command: string;
  package: string;
  for: string;
}
// The PATH lookup and the package list are the preflight's (npm test runs it first), so that the
// preflight and the tests agree on what this host has.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const preflight = require('../../scripts/preflight.cjs') as {
  which(cmd: string): string | null;
  deps: { build: DepEntry[]; tools: DepEntry[] };
};
const byCommand = new Map([...preflight.deps.build, ...preflight.deps.tools].map((e) => [e.command, e]));

/** The Debian package that provides `cmd` (scripts/system-deps.json), or undefined if it is not listed. */
export function toolPackage(cmd: string): string | undefined {
  return byCommand.get(cmd)?.package;
}

const found = new Map<string, boolean>();
/** Whether `cmd` is an executable file in a directory of $PATH (looked up once per command). */
export function onPath(cmd: string): boolean {
  let ok = found.get(cmd);
  if (ok === undefined) {
    ok = preflight.which(cmd) !== null;
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

