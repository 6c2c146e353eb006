/**
 * The platform profiles of `platforms/` (one per platform of the 2.22 release notes, plus `development`)
 * and the verdict for a host: supported (the release and a kernel the release notes name), compatible
 * (the release, another kernel), development (outside the matrix, a kernel the emulator runs on),
 * unsupported (neither).
 * @module
 */
import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';
import { packageRoot } from '../lib/package-root';
import type { OsRelease } from './release';

export interface Profile {
  id: string;
  name: string;
  release_notes: string;
  match: { distro?: string; release?: string; kernel_at_least?: string };
  kernels: string[];
  openstack: string[];
  vcenter?: string;
  notes: string[];
  needs: Record<string, unknown>;
  node: { runtime: string; newest_official: string };
  addon: string;
  vagrant: { machine: string; box: string; box_version?: string; stand_in?: boolean };
}

export type VerdictKind = 'supported' | 'compatible' | 'development' | 'unsupported';

export interface Verdict {
  verdict: VerdictKind;
  /** The profile the host matched (development for hosts outside the matrix; undefined when unsupported). */
  profile?: Profile;
  /** Why, in one sentence. */
  why: string;
}

export function profilesDir(): string {
  return path.join(packageRoot(), 'platforms');
}

/** Read every profile. @throws UserError naming a file that is not a valid profile. */
export function loadProfiles(dir = profilesDir()): Profile[] {
  const out: Profile[] = [];
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.json')).sort()) {
    const file = path.join(dir, f);
    let p: Profile;
    try {
      p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
    } catch (e) {
      throw new UserError(`${file}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof p.id !== 'string' || typeof p.match !== 'object' || !Array.isArray(p.kernels)) {
      throw new UserError(`${file}: a profile needs "id", "match" and "kernels"`);
    }
    out.push(p);
  }
  return out;
}

/** The kernel without its architecture suffix (the release notes write both 3.10.0-229.el7 and …el6.x86_64). */
function kernelBase(k: string): string {
  return k.replace(/\.(x86_64|i686|amd64)$/, '');
}

/** major.minor of a kernel or release string, as a number pair compared lexically. */
function versionAtLeast(v: string, min: string): boolean {
  const a = v.split(/[.-]/).map((x) => parseInt(x, 10));
  const b = min.split('.').map((x) => parseInt(x, 10));
  for (let i = 0; i < b.length; i++) {
    const x = Number.isNaN(a[i]) ? 0 : a[i] ?? 0;
    if (x !== b[i]) return x > b[i];
  }
  return true;
}

function releaseMatches(rel: OsRelease, want: { distro?: string; release?: string }): boolean {
  if (!want.distro || rel.distro !== want.distro || !want.release) return false;
  return rel.release === want.release || rel.release.startsWith(`${want.release}.`);
}

/** The verdict for a host identified as `rel`. */
export function verdictFor(rel: OsRelease, profiles: Profile[]): Verdict {
  const matrix = profiles.filter((p) => p.match.release !== undefined);
  const list = matrix.map((p) => p.name).join(', ');
  for (const p of matrix) {
    if (!releaseMatches(rel, p.match)) continue;
    if (p.kernels.some((k) => kernelBase(k) === kernelBase(rel.kernel))) {
      return { verdict: 'supported', profile: p, why: `${rel.pretty} with kernel ${rel.kernel} is a Contrail 2.22 platform (${p.release_notes.split(';')[0]})` };
    }
    return {
      verdict: 'compatible', profile: p,
      why: `${rel.pretty} is a Contrail 2.22 platform, but its kernel ${rel.kernel} is not the ${p.kernels.join(' or ')} the release notes name (the prebuilt vrouter.ko targets); the emulator runs the same way, a real node would have needed the DKMS module`,
    };
  }
  const dev = profiles.find((p) => p.match.kernel_at_least !== undefined);
  if (dev && versionAtLeast(rel.kernel, dev.match.kernel_at_least as string)) {
    return { verdict: 'development', profile: dev, why: `${rel.pretty} (kernel ${rel.kernel}) is outside the Contrail 2.22 matrix (${list}); the emulator runs here as a development host` };
  }
  return {
    verdict: 'unsupported',
    why: `${rel.pretty} with kernel ${rel.kernel} is not a Contrail 2.22 platform (${list}) and its kernel is older than the ${dev?.match.kernel_at_least ?? '3.10'} the emulator needs (setns, sendmmsg, network namespaces, veth)`,
  };
}
