/**
 * Which distro and release a host (or a fixture directory) is, from its release files, parsed here
 * because `systeminformation` misreads three of the five 2.22 platforms (CentOS 6 has no os-release;
 * CentOS 7's os-release drops the minor release; Ubuntu 12.04's PRETTY_NAME swaps release and codename).
 * Order of trust: centos-release / redhat-release (they carry the minor release), then os-release, then
 * lsb-release; Ubuntu's point release comes from os-release VERSION or lsb DISTRIB_DESCRIPTION.
 * @module
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface OsRelease {
  /** Lower-case distro id: ubuntu, centos, rhel, debian, … ('unknown' when nothing says). */
  distro: string;
  /** The release as precise as the files give it: 14.04.2, 12.04.4, 6.5, 7.1, 7.1.1503, 12. */
  release: string;
  /** A human name, e.g. "CentOS release 6.5 (Final)". */
  pretty: string;
  /** The running kernel (uname -r; under --root, ROOT/proc/sys/kernel/osrelease when present). */
  kernel: string;
  /** The files the answer came from, relative to the root. */
  sources: string[];
}

function read(root: string, rel: string): string | undefined {
  try {
    return fs.readFileSync(path.join(root, rel), 'utf8');
  } catch {
    return undefined;
  }
}

/** KEY=value lines (os-release, lsb-release): quotes removed, comments and other lines skipped. */
export function parseKeyValues(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const kv = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!kv) continue;
    let v = kv[2].trim();
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    m.set(kv[1], v.replace(/\\(["'\\$`])/g, '$1'));
  }
  return m;
}

/** Identify the distro under `root` ('/' for this host). */
export function readOsRelease(root = '/'): OsRelease {
  const sources: string[] = [];
  const kernelFile = read(root, 'proc/sys/kernel/osrelease');
  const kernel = (root === '/' ? os.release() : kernelFile?.trim()) || os.release();

  // CentOS and RHEL: the one-line release files carry the minor release.
  const centos = read(root, 'etc/centos-release');
  if (centos) {
    const m = /CentOS(?: Linux)? release (\d+)\.(\d+)(?:\.(\d+))?/.exec(centos);
    if (m) {
      sources.push('etc/centos-release');
      return { distro: 'centos', release: `${m[1]}.${m[2]}`, pretty: centos.trim(), kernel, sources };
    }
  }
  const redhat = read(root, 'etc/redhat-release');
  if (redhat) {
    const rh = /Red Hat Enterprise Linux.* release (\d+)(?:\.(\d+))?/.exec(redhat);
    const co = /CentOS(?: Linux)? release (\d+)\.(\d+)/.exec(redhat);
    if (rh) {
      sources.push('etc/redhat-release');
      return { distro: 'rhel', release: rh[2] === undefined ? rh[1] : `${rh[1]}.${rh[2]}`, pretty: redhat.trim(), kernel, sources };
    }
    if (co) {
      sources.push('etc/redhat-release');
      return { distro: 'centos', release: `${co[1]}.${co[2]}`, pretty: redhat.trim(), kernel, sources };
    }
  }

  const osr = read(root, 'etc/os-release') ?? read(root, 'usr/lib/os-release');
  const lsbText = read(root, 'etc/lsb-release');
  const o = osr ? parseKeyValues(osr) : new Map<string, string>();
  const lsb = lsbText ? parseKeyValues(lsbText) : new Map<string, string>();
  if (osr) sources.push(read(root, 'etc/os-release') ? 'etc/os-release' : 'usr/lib/os-release');
  if (lsbText && lsb.has('DISTRIB_ID')) sources.push('etc/lsb-release');
  const distro = (o.get('ID') ?? lsb.get('DISTRIB_ID') ?? 'unknown').toLowerCase();
  let release = o.get('VERSION_ID') ?? lsb.get('DISTRIB_RELEASE') ?? '';
  // Ubuntu point releases: "14.04.2 LTS, Trusty Tahr" (os-release VERSION), "Ubuntu 14.04.2 LTS" (lsb).
  for (const s of [o.get('VERSION'), lsb.get('DISTRIB_DESCRIPTION')]) {
    const m = s ? /(\d+\.\d+\.\d+)/.exec(s) : null;
    if (m && m[1].startsWith(release)) {
      release = m[1];
      break;
    }
  }
  // Debian's os-release says 12; debian_version says 12.x.
  if (distro === 'debian') {
    const dv = read(root, 'etc/debian_version')?.trim();
    if (dv && /^\d+\.\d+$/.test(dv) && dv.startsWith(release)) {
      release = dv;
      sources.push('etc/debian_version');
    }
  }
  const pretty = o.get('PRETTY_NAME') ?? lsb.get('DISTRIB_DESCRIPTION') ?? (distro === 'unknown' ? 'unknown distro' : `${distro} ${release}`);
  return { distro, release: release || 'unknown', pretty, kernel, sources };
}
