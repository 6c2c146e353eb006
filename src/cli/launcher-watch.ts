/**
 * `npx vrouter-emu start` under a process supervisor: a SIGTERM sent to the `npx` process does not reach
 * the node running the compute node (npm's exec wrapper exits and leaves its `sh -c` child running, or
 * takes it down without a signal node can catch), so the namespaces would stay. When started by npm
 * (npm sets `npm_command`), the instance watches the npm process above it and stops as on SIGTERM when
 * that process is gone or the instance is re-parented. Linux /proc only; elsewhere it does nothing.
 * @module
 */
import * as fs from 'fs';

const SHELLS = new Set(['sh', 'dash', 'bash', 'zsh']);

/** The process's parent pid and command name from /proc/PID/stat, or undefined when it is gone. */
function procStat(pid: number): { ppid: number; comm: string } | undefined {
  let s: string;
  try {
    s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ')'.
  const close = s.lastIndexOf(')');
  const comm = s.slice(s.indexOf('(') + 1, close);
  const ppid = Number(s.slice(close + 2).split(' ')[1]);
  return { ppid, comm };
}

/** The npm process that launched this one through its shell, if any. */
export function findLauncher(env: NodeJS.ProcessEnv = process.env): number | undefined {
  if (!env.npm_command) return undefined;
  let pid = process.ppid;
  for (let hops = 0; hops < 4 && pid > 1; hops++) {
    const st = procStat(pid);
    if (!st) return undefined;
    if (st.comm.startsWith('npm') || st.comm === 'npx' || st.comm === 'node') return pid;
    if (!SHELLS.has(st.comm)) return undefined;
    pid = st.ppid;
  }
  return undefined;
}

/** Call `onGone` once when the launching npm process exits. @returns a function that stops watching. */
export function watchLauncher(onGone: () => void, everyMs = 250): () => void {
  const launcher = findLauncher();
  if (launcher === undefined) return () => undefined;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (procStat(launcher) === undefined || process.ppid !== parent) {
      clearInterval(timer);
      onGone();
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
