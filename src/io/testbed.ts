/**
 * The OS side of the testbed: a network namespace per VM whose eth0 is the kernel side of a TAP the
 * emulator holds, configured through rtnetlink; and the record of everything created, so that a clean
 * exit removes it and the next start can remove what a crashed run left behind.
 * @module
 */
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { Worker } from 'worker_threads';
import { UserError } from '../errors';
import { distFile } from '../lib/package-root';
import type { HostSpec, Network } from '../agent/topology';
import { loadNative } from './native';
import type { NetnsJob } from './netns-worker';

export const RUN_DIR = '/run/vrouter-emu';

/** What one running instance created (written to its state file as it goes). */
export interface TestbedState {
  pid: number;
  socket: string;
  namespaces: string[];
  taps: string[];
}

/**
 * Every instance registers what it creates under one directory, whatever its --socket, so that the next
 * start finds a crashed run's leftovers even when that run used another socket (a test's private one).
 */
export const INSTANCES_DIR = `${RUN_DIR}/instances`;

export function statePath(pid: number): string {
  return `${INSTANCES_DIR}/${pid}.json`;
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `ip …` for a VM's set-up: a failure is a UserError naming the VM and the command. */
function ipFor(vm: string, args: string[]): string {
  try {
    return ip(args);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    const why = err.code === 'ENOENT' ? 'the ip command (iproute2) is not installed' : (err.stderr ?? err.message).trim();
    throw new UserError(`setting up VM ${vm}: ip ${args.join(' ')} failed: ${why}`);
  }
}

export function nsExists(name: string): boolean {
  return fs.existsSync(`/run/netns/${name}`);
}

export function linkExists(name: string): boolean {
  return fs.existsSync(`/sys/class/net/${name}`);
}

/** Whether `pid` is a live vrouter-emu (not gone, not a zombie, not a reused pid). */
function pidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return false;
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('vrouter-emu');
  } catch {
    return false;
  }
}

/** Remove what one dead instance created. @returns one line per object removed or left. */
function cleanInstance(st: TestbedState): string[] {
  const done: string[] = [];
  for (const ns of st.namespaces ?? []) {
    if (nsExists(ns)) {
      try {
        ip(['netns', 'del', ns]);
        done.push(`removed namespace ${ns} left by pid ${st.pid}`);
      } catch (e) {
        done.push(`could not remove namespace ${ns} left by pid ${st.pid} (${(e as Error).message.trim()}); remove it with: ip netns del ${ns}`);
      }
    }
  }
  for (const t of st.taps ?? []) {
    if (linkExists(t)) {
      try {
        ip(['link', 'del', t]);
        done.push(`removed interface ${t} left by pid ${st.pid}`);
      } catch {
        done.push(`could not remove interface ${t} left by pid ${st.pid}; remove it with: ip link del ${t}`);
      }
    }
  }
  if (typeof st.socket === 'string' && fs.existsSync(st.socket)) fs.rmSync(st.socket, { force: true });
  return done;
}

/**
 * Find what earlier runs that did not exit cleanly left behind (state files naming dead pids, whatever
 * socket they used) and remove it. @returns a description of what was removed, one line each.
 * @throws UserError when a live instance uses this socket.
 */
export function cleanLeftovers(socket: string): string[] {
  let files: string[];
  try {
    files = fs.readdirSync(INSTANCES_DIR).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const done: string[] = [];
  for (const f of files) {
    const sp = path.join(INSTANCES_DIR, f);
    let st: TestbedState;
    try {
      st = JSON.parse(fs.readFileSync(sp, 'utf8')) as TestbedState;
      if (typeof st.pid !== 'number') throw new Error('no pid');
    } catch {
      fs.rmSync(sp, { force: true });
      done.push(`removed an unreadable state file ${sp}`);
      continue;
    }
    if (st.pid !== process.pid && pidAlive(st.pid)) {
      if (st.socket === socket) {
        throw new UserError(`an instance (pid ${st.pid}) is running with socket ${socket}; stop it, or give another --socket PATH`);
      }
      continue;
    }
    done.push(...cleanInstance(st));
    fs.rmSync(sp, { force: true });
  }
  return done;
}

/** A host interface the testbed made: the TAP's fd and its host. */
export interface HostIf {
  host: HostSpec;
  fd: number;
}

/** Creates and removes the OS objects of the testbed. */
export class Testbed {
  readonly state: TestbedState;
  private readonly fds: number[] = [];

  constructor(readonly socket: string) {
    this.state = { pid: process.pid, socket, namespaces: [], taps: [] };
    fs.mkdirSync(path.dirname(socket), { recursive: true, mode: 0o700 });
    fs.mkdirSync(INSTANCES_DIR, { recursive: true, mode: 0o700 });
  }

  private save(): void {
    fs.writeFileSync(statePath(this.state.pid), JSON.stringify(this.state) + '\n', { mode: 0o600 });
  }

  /** Check every name before anything is created. @throws UserError naming the first one taken. */
  checkFree(vms: HostSpec[]): void {
    for (const v of vms) {
      if (v.attach && !nsExists(v.namespace)) {
        throw new UserError(`namespace ${v.namespace} (VM ${v.name}) does not exist; create it with: ip netns add ${v.namespace}`);
      }
      if (v.attach && fs.existsSync(`/run/netns/${v.namespace}`)) {
        let hasEth0 = false;
        try {
          ip(['-n', v.namespace, 'link', 'show', 'eth0']);
          hasEth0 = true;
        } catch {
          // no eth0 there: good
        }
        if (hasEth0) {
          throw new UserError(`namespace ${v.namespace} (VM ${v.name}) already has an eth0; remove it with: ip -n ${v.namespace} link del eth0`);
        }
      }
      if (!v.attach && nsExists(v.namespace)) {
        throw new UserError(
          `namespace ${v.namespace} (VM ${v.name}) already exists; remove it with: ip netns del ${v.namespace}, or attach the VM to it with "namespace": "${v.namespace}" in a topology`,
        );
      }
      if (linkExists(v.tap)) throw new UserError(`interface ${v.tap} (VM ${v.name}) already exists; remove it with: ip link del ${v.tap}`);
    }
  }

  /** Create a host (a VM or an outside host): its namespace (unless attached), its TAP, moved in as eth0 and configured. */
  async addVm(v: HostSpec, nw: Network): Promise<HostIf> {
    const nat = loadNative();
    if (!v.attach) {
      ipFor(v.name, ['netns', 'add', v.namespace]);
      this.state.namespaces.push(v.namespace);
      this.save();
    }
    let fd: number;
    try {
      fd = nat.tapOpen(v.tap, nat.constants.IFF_TAP | nat.constants.IFF_NO_PI).fd;
    } catch (e) {
      throw new UserError(`setting up VM ${v.name}: cannot create TAP ${v.tap}: ${(e as Error).message}`);
    }
    this.fds.push(fd);
    this.state.taps.push(v.tap);
    this.save();
    // Into the VM's namespace (rtnetlink IFLA_NET_NS_FD), then configured from inside it.
    const { createRtNetlink } = require('netlink') as typeof import('netlink');
    const rt = createRtNetlink();
    const nsFd = fs.openSync(`/run/netns/${v.namespace}`, 'r');
    try {
      const link = (await rt.getLinks()).find((l) => l.attrs.ifname === v.tap);
      if (!link || link.data.index === undefined) throw new Error(`${v.tap} vanished after it was created`);
      await rt.setLink({ index: link.data.index }, { netNsFd: nsFd });
    } catch (e) {
      throw new UserError(`setting up VM ${v.name}: cannot move ${v.tap} into namespace ${v.namespace}: ${(e as Error).message}`);
    } finally {
      fs.closeSync(nsFd);
      rt.socket.close();
    }
    const job: NetnsJob = {
      nsPath: `/run/netns/${v.namespace}`, ifname: v.tap, newName: 'eth0', mac: Array.from(v.mac), mtu: v.mtu,
      ip: v.ipStr.split('.').map(Number), prefixLen: nw.prefixLen, gateway: nw.gatewayStr.split('.').map(Number),
    };
    await new Promise<void>((resolve, reject) => {
      const w = new Worker(distFile('netns-worker.cjs'), { workerData: job });
      const fail = (why: string): void => reject(new UserError(`setting up VM ${v.name}: configuring eth0 in namespace ${v.namespace} failed: ${why}`));
      w.once('message', (m: { ok: boolean; message?: string }) => (m.ok ? resolve() : fail(m.message ?? 'unknown error')));
      w.once('error', (e) => fail(e.message));
      w.once('exit', (code) => code !== 0 && fail(`its thread exited with ${code}`));
    });
    return { host: v, fd };
  }

  /** Close the TAPs (they vanish with their fd) and delete the namespaces this run created. */
  teardown(): string[] {
    const problems: string[] = [];
    const nat = loadNative();
    for (const fd of this.fds.splice(0)) {
      try {
        nat.close(fd);
      } catch {
        // already gone
      }
    }
    for (const ns of this.state.namespaces.splice(0)) {
      try {
        ip(['netns', 'del', ns]);
      } catch (e) {
        problems.push(`could not remove namespace ${ns}: ${(e as Error).message.trim()}; remove it with: ip netns del ${ns}`);
      }
    }
    for (const t of this.state.taps.splice(0)) {
      if (linkExists(t)) {
        try {
          ip(['link', 'del', t]);
        } catch {
          problems.push(`could not remove ${t}; remove it with: ip link del ${t}`);
        }
      }
    }
    fs.rmSync(statePath(this.state.pid), { force: true });
    return problems;
  }
}
