/**
 * What the host has: root, tools on the PATH, and the Debian package of each tool
 * (scripts/system-deps.json). No ava here, so a plain Node script (a preflight, a runner's summary) can
 * use it too; tests use it through ./requires.
 */
import * as fs from 'fs';
import * as path from 'path';

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

