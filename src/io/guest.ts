/**
 * qemu guests, the `"kind": "qemu"` VMs: a small Debian kernel + busybox initramfs (built and cached by
 * scripts/guest-image.sh) booted with its virtio NIC on the persistent tap the vif is attached to. The
 * guest's address, gateway and script travel on the kernel command line; its serial console goes to a log
 * file per VM. TCG when the host's KVM is kvm-pvm (a stock guest kernel hangs on it) or absent.
 * @module
 */
import * as fs from 'fs';
import * as path from 'path';
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { UserError } from '../errors';
import { packageRoot } from '../lib/package-root';
import type { HostSpec, Network } from '../lib/topology-types';

export const GUEST_CACHE = '/var/cache/vrouter-emu/guest';
const QBOOT = '/usr/share/qemu/qboot.rom';
/** x86 COMMAND_LINE_SIZE is 2048; what the script may take of it once encoded. */
const MAX_RUN_BASE64 = 1500;

export interface GuestImage {
  vmlinux: string;
  initrd: string;
  version: string;
}

/** The cached guest image, built first (a minute at most, Debian packages) when missing. */
export function guestImage(log: (s: string) => void): GuestImage {
  const dir = GUEST_CACHE;
  const have = (): boolean => ['vmlinux', 'initramfs.gz', 'VERSION'].every((f) => fs.existsSync(path.join(dir, f)));
  if (!have()) {
    log(`vrouter-emu: building the qemu guest image into ${dir} (scripts/guest-image.sh, once)`);
    try {
      execFileSync('bash', [path.join(packageRoot(), 'scripts', 'guest-image.sh'), dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      const err = (e as { stderr?: Buffer }).stderr?.toString().trim().split('\n').pop() ?? (e as Error).message;
      throw new UserError(`the qemu guest image could not be built (${err}); run: sudo bash scripts/guest-image.sh`);
    }
  }
  return {
    vmlinux: path.join(dir, 'vmlinux'),
    initrd: path.join(dir, 'initramfs.gz'),
    version: fs.readFileSync(path.join(dir, 'VERSION'), 'utf8').trim(),
  };
}

/** 'kvm' on a host with working KVM; 'tcg' when /dev/kvm is missing or is kvm-pvm. */
export function guestAccel(): 'kvm' | 'tcg' {
  if (fs.existsSync('/sys/module/kvm_pvm')) return 'tcg';
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
    return 'kvm';
  } catch {
    return 'tcg';
  }
}

/** Check what booting guests needs, before anything is created. @throws UserError naming what is missing. */
export function guestCheck(vms: HostSpec[]): void {
  const qemu = vms.filter((v) => v.kind === 'qemu');
  if (qemu.length === 0) return;
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new UserError(`VM ${qemu[0].name} is a qemu guest but qemu-system-x86_64 is not installed; install it with: apt-get install -y --no-install-recommends qemu-system-x86`);
  }
  for (const v of qemu) {
    const b64 = Buffer.from(v.guest?.run ?? '').toString('base64');
    if (b64.length > MAX_RUN_BASE64) {
      throw new UserError(`VM ${v.name}: its "run" script is ${b64.length} bytes once encoded for the kernel command line; keep it under ${MAX_RUN_BASE64} (about ${Math.floor((MAX_RUN_BASE64 * 3) / 4)} characters)`);
    }
  }
}

/** One running guest. */
export class Guest {
  private exited = false;
  private readonly done: Promise<void>;

  private constructor(readonly name: string, readonly proc: ChildProcess, readonly consoleLog: string) {
    this.done = new Promise<void>((resolve) => {
      proc.once('exit', () => {
        this.exited = true;
        resolve();
      });
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  /** Boot `vm` on its tap (which must exist and be up); the console goes to `consoleLog`. */
  static start(vm: HostSpec, nw: Network, img: GuestImage, consoleLog: string): Guest {
    fs.mkdirSync(path.dirname(consoleLog), { recursive: true });
    const fd = fs.openSync(consoleLog, 'w', 0o644);
    const accel = guestAccel();
    const append = [
      'console=ttyS0', 'quiet', 'panic=-1', 'ipv6.disable=1', `vmname=${vm.name}`, `vmip=${vm.ipStr}/${nw.prefixLen}`,
      `gw=${nw.gatewayStr}`, `vmmtu=${vm.mtu}`,
    ];
    const run = vm.guest?.run ?? '';
    if (run !== '') append.push(`vrun=${Buffer.from(run).toString('base64')}`);
    const args = [
      '-accel', accel, '-cpu', accel === 'kvm' ? 'host' : 'max', '-m', String(vm.guest?.memoryMb ?? 256),
      '-display', 'none', '-monitor', 'none', '-no-reboot', '-nodefaults', '-serial', 'stdio',
      ...(fs.existsSync(QBOOT) ? ['-bios', QBOOT] : []),
      '-kernel', img.vmlinux, '-initrd', img.initrd, '-append', append.join(' '),
      // The virtio NIC keeps the guest's offloads (vnet_hdr): the vif completes partial checksums and
      // cuts TSO frames, as the vRouter module does for a VM's tap.
      '-netdev', `tap,id=n0,ifname=${vm.tap},script=no,downscript=no`,
      '-device', `virtio-net-pci,netdev=n0,mac=${vm.macStr}`,
    ];
    const proc = spawn('qemu-system-x86_64', args, { stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    return new Guest(vm.name, proc, consoleLog);
  }

  /** Stop the guest (SIGTERM, SIGKILL after 2 s); resolves once qemu has exited. */
  async stop(): Promise<void> {
    if (this.exited) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 2000);
    await this.done;
    clearTimeout(t);
  }
}
