/**
 * `vrouter-emu platform check [--root DIR] [--json]`: which 2.22 platform this host is (release files,
 * kernel), the verdict against the profiles of platforms/, host facts (systeminformation) and the
 * kernel probes. `--root` reads another system's release files (fixtures); the probes and host facts are
 * then not run, since they would describe this host.
 * @module
 */
import { UserError } from '../errors';
import { readOsRelease, OsRelease } from '../platform/release';
import { Profile, Verdict, loadProfiles, verdictFor } from '../platform/profiles';
import { Probe, runProbes } from '../platform/probes';
import { Parsed, opt } from './args';

export const PLATFORM_USAGE = 'vrouter-emu platform check [--root DIR] [--json]';
export const PLATFORM_OPTS = { '--root': { value: true }, '--json': {} };

export interface HostFacts {
  arch: string;
  cpus: number;
  memoryGiB: number;
  virtual: boolean;
  virtualHost: string;
}

export interface PlatformReport {
  os: OsRelease;
  verdict: Verdict['verdict'];
  why: string;
  profile?: Pick<Profile, 'id' | 'name' | 'release_notes' | 'kernels' | 'openstack' | 'notes' | 'needs' | 'node' | 'addon'>;
  host?: HostFacts;
  probes?: Probe[];
  ok: boolean;
}

/** Architecture, CPUs, memory and virtualization, from systeminformation (which reads these right). */
async function hostFacts(): Promise<HostFacts | undefined> {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const si = require('systeminformation') as typeof import('systeminformation');
    const [o, c, m, s] = await Promise.all([si.osInfo(), si.cpu(), si.mem(), si.system()]);
    return { arch: o.arch, cpus: c.cores, memoryGiB: Math.round((m.total / 2 ** 30) * 10) / 10, virtual: s.virtual, virtualHost: s.virtualHost ?? '' };
  } catch {
    return undefined;
  }
}

/** The whole check. `root` '/' probes this host; another root only identifies its release files. */
export async function platformReport(root: string): Promise<PlatformReport> {
  const os = readOsRelease(root);
  const v = verdictFor(os, loadProfiles());
  const p = v.profile;
  const r: PlatformReport = {
    os, verdict: v.verdict, why: v.why, ok: v.verdict !== 'unsupported',
    profile: p && { id: p.id, name: p.name, release_notes: p.release_notes, kernels: p.kernels, openstack: p.openstack, notes: p.notes, needs: p.needs, node: p.node, addon: p.addon },
  };
  if (root === '/') {
    r.host = await hostFacts();
    r.probes = runProbes();
    r.ok = r.ok && r.probes.every((x) => x.ok);
  }
  return r;
}

export function platformText(r: PlatformReport, out: (s: string) => void): void {
  out(`Platform: ${r.os.pretty} (${r.os.distro} ${r.os.release}), kernel ${r.os.kernel}${r.os.sources.length ? ` [${r.os.sources.join(', ')}]` : ''}\n`);
  out(`Verdict:  ${r.verdict}: ${r.why}\n`);
  if (r.profile) {
    out(`Profile:  ${r.profile.id}: ${r.profile.name}\n`);
    if (r.profile.kernels.length) out(`  kernels of the release notes: ${r.profile.kernels.join(', ')}\n`);
    if (r.profile.openstack.length) out(`  OpenStack: ${r.profile.openstack.join(', ')}\n`);
    for (const n of r.profile.notes) out(`  note: ${n}\n`);
    out(`  Node: ${r.profile.node.runtime}\n  addon: ${r.profile.addon}\n`);
  }
  if (r.host) out(`Host:     ${r.host.arch}, ${r.host.cpus} CPUs, ${r.host.memoryGiB} GiB, ${r.host.virtual ? `virtual machine${r.host.virtualHost ? ` (${r.host.virtualHost})` : ''}` : 'bare metal'}\n`);
  if (r.probes) {
    out('Probes:\n');
    for (const p of r.probes) out(`  ${p.ok ? 'ok  ' : 'FAIL'}  ${p.name.padEnd(20)} ${p.detail}\n`);
  } else {
    out('Probes:   not run (--root reads another system\'s release files; the probes would describe this host)\n');
  }
}

export async function cmdPlatform(p: Parsed): Promise<number> {
  if (p.positional[0] !== 'check' || p.positional.length !== 1) throw new UserError(`usage: ${PLATFORM_USAGE}`);
  const r = await platformReport(opt(p, '--root') ?? '/');
  if (p.flags.has('--json')) process.stdout.write(JSON.stringify(r) + '\n');
  else platformText(r, (s) => process.stdout.write(s));
  return r.ok ? 0 : 1;
}
