/**
 * vifs on interfaces the emulator attaches to by packet socket (a guest's tap, a veth): `vif --add` and
 * `vif --delete` on a running instance, an interface that vanishes (the vif goes down, counted; its
 * flows age out) and one that comes back (re-attached when the topology names it), and the qemu guests.
 * The agent's side: it programs the node and the datapath and owns the sockets' fds.
 * @module
 */
import type { DpProgrammer } from '../agent/dp-channel';
import { UserError } from '../errors';
import { ComputeNode, HostFd, VIF_FIRST_VM, VifInfo } from '../agent/compute-node';
import { Topology, runtimeVm } from '../agent/topology';
import type { VmSpec } from '../lib/topology-types';
import type { DpThread } from '../io/dp-thread';
import { Testbed, ifIndex, linkExists } from '../io/testbed';
import { VIF_IO_PACKET } from '../io/ring';
import { parseArgs } from './args';

export const VIF_ADD_USAGE = 'vrouter-emu vif --add IFNAME --type virtual --vm NAME [--ip A --mac M --network N]';
export const VIF_DELETE_USAGE = 'vrouter-emu vif --delete N|vif0/N|IFNAME';

export class Attachments {
  /** The packet socket of each attached vif, by vif index. */
  private readonly fds = new Map<number, number>();
  /** vifs whose interface vanished and is being detached (so one vanishing is handled once). */
  private readonly detaching = new Set<number>();

  constructor(
    private readonly bed: Testbed,
    private readonly node: ComputeNode,
    private readonly dp: DpThread,
    private readonly topo: Topology,
    private readonly log: (s: string) => void,
    initial: Map<string, HostFd>,
    /** What programs the VMs' vifs, nexthops and routes (the datapath thread, or a mirror of it). */
    private readonly prog: DpProgrammer = dp,
  ) {
    for (const v of node.vifs) {
      const hf = v.host ? initial.get(v.host.name) : undefined;
      if (hf && hf.io === VIF_IO_PACKET) this.fds.set(v.idx, hf.fd);
    }
  }

  /** `vif --add IFNAME --type virtual --vm NAME [--ip A --mac M --network N]`. @returns what was done. */
  add(args: string[]): string {
    const p = parseArgs(args, {
      '--add': { value: true }, '--type': { value: true }, '--vm': { value: true }, '--ip': { value: true },
      '--mac': { value: true }, '--network': { value: true },
    }, VIF_ADD_USAGE);
    const ifname = p.opts.get('--add')?.[0] as string;
    const type = p.opts.get('--type')?.[0] ?? 'virtual';
    if (type !== 'virtual') throw new UserError(`vif --add: --type ${type}: only "virtual" interfaces (VM NICs) can be added`);
    const name = p.opts.get('--vm')?.[0];
    if (!name) throw new UserError(`vif --add: --vm NAME is required (a VM of the topology, or a new one with --ip and --mac); usage: ${VIF_ADD_USAGE}`);
    const vm = this.spec(name, ifname, p.opts.get('--ip')?.[0], p.opts.get('--mac')?.[0], p.opts.get('--network')?.[0]);
    const problem = this.node.addable(vm);
    if (problem) throw new UserError(`vif --add: ${problem}`);
    const fd = this.bed.attach(ifname, `vif --add ${ifname}`);
    const v = this.node.addVm(this.prog, vm, { fd, io: VIF_IO_PACKET });
    this.fds.set(v.idx, fd);
    const line = `vif0/${v.idx} added on ${ifname}: VM ${vm.name} ${vm.ipStr} ${vm.macStr} in ${vm.network}`;
    this.log(`vrouter-emu: ${line}`);
    return line;
  }

  /** The VM to put on IFNAME: the topology's VM NAME (not on a vif now), or a new one from the options. */
  private spec(name: string, ifname: string, ip?: string, mac?: string, network?: string): VmSpec {
    const known = this.topo.vms.find((v) => v.name === name);
    if (known) {
      if (ip !== undefined || mac !== undefined || network !== undefined) {
        throw new UserError(`vif --add: VM ${name} is in the topology (${known.ipStr}, ${known.macStr}, ${known.network}); leave out --ip, --mac and --network`);
      }
      if (known.kind === 'netns') throw new UserError(`vif --add: VM ${name} is a namespace VM whose TAP this instance owns; give another --vm name`);
      return { ...known, kind: 'attach', tap: ifname };
    }
    if (ip === undefined || mac === undefined) {
      throw new UserError(`vif --add: VM ${name} is not in the topology: give its --ip and its NIC's --mac (frames towards it carry that MAC)`);
    }
    const nets = this.topo.networks;
    const nw = network ?? (nets.length === 1 ? nets[0].name : undefined);
    if (nw === undefined) throw new UserError(`vif --add: --network is needed (one of ${nets.map((n) => n.name).join(', ')})`);
    const n = nets.find((x) => x.name === nw);
    if (!n) throw new UserError(`vif --add: --network ${nw}: no such network (the networks are ${nets.map((x) => x.name).join(', ')})`);
    // Validated as a topology VM is (address in the subnet, MAC syntax), then checked against this node.
    return runtimeVm(n, { name, ip, mac, attach: ifname }, 'vif --add');
  }

  /** `vif --delete N|vif0/N|IFNAME`: detach, leave the interface as it was. */
  async remove(args: string[]): Promise<string> {
    const p = parseArgs(args, { '--delete': { value: true } }, VIF_DELETE_USAGE);
    const target = p.opts.get('--delete')?.[0] as string;
    const m = /^(?:vif0\/)?(\d+)$/.exec(target);
    const v: VifInfo | undefined = m ? this.node.vif(Number(m[1])) : this.node.vifs.find((x) => x.os === target);
    if (!v) throw new UserError(`vif --delete: no vif ${target} (see vrouter-emu vif --list)`);
    if (v.parent !== undefined) throw new UserError(`vif --delete: vif0/${v.idx} is a vCenter port's VLAN sub-interface; remove it with vrouter-emu port --delete UUID (see port --list), or vcenter-driver unplug-vifs`);
    if (!v.host || v.host.kind === 'netns' || v.idx < VIF_FIRST_VM) {
      throw new UserError(`vif --delete: vif0/${v.idx} (${v.os}) is not an attached interface; only interfaces added with vif --add or "attach"/"qemu" VMs can be deleted`);
    }
    this.node.removeVm(this.prog, v.idx);
    await this.dp.vifDelete(v.idx);
    const fd = this.fds.get(v.idx); // none when its interface had vanished
    this.fds.delete(v.idx);
    if (fd !== undefined) this.bed.closeFd(fd);
    this.bed.detach(v.os);
    const line = `vif0/${v.idx} (${v.os}, VM ${v.host?.name}) deleted; ${v.os} left as it was found`;
    this.log(`vrouter-emu: ${line}`);
    return line;
  }

  /** A packet socket reported an error: when its interface is gone, the vif goes down. */
  onVifError(idx: number, code: string): void {
    const v = this.node.vif(idx);
    const att = this.bed.state.attached?.find((a) => a.ifname === v?.os);
    if (!v || !att || this.detaching.has(idx)) return;
    if (ifIndex(v.os) === att.ifindex) return; // down, not gone: the socket works again once it is up
    this.detaching.add(idx);
    v.up = false;
    this.log(`vrouter-emu: vif0/${idx} (${v.os}) went away (${code}); marked down, its flows age out`);
    void this.dp.vifDetach(idx).then(() => {
      const fd = this.fds.get(idx);
      this.fds.delete(idx);
      if (fd !== undefined) this.bed.closeFd(fd);
      this.bed.detach(v.os);
      this.detaching.delete(idx);
    });
  }

  /** Once a second: re-attach the topology's attached VMs whose interface came back. */
  tick(): void {
    for (const v of this.node.vifs) {
      if (v.up || this.detaching.has(v.idx) || this.fds.has(v.idx) || !v.host || v.host.kind === 'netns') continue;
      if (!this.topo.vms.some((x) => x.name === v.host?.name) || !linkExists(v.os)) continue;
      try {
        const fd = this.bed.attach(v.os, `VM ${v.host.name}`);
        this.fds.set(v.idx, fd);
        this.dp.vifAttach(v.idx, fd, VIF_IO_PACKET);
        v.up = true;
        this.log(`vrouter-emu: vif0/${v.idx} (${v.os}) is back; re-attached`);
      } catch (e) {
        this.log(`vrouter-emu: vif0/${v.idx} (${v.os}) is back but could not be attached: ${(e as Error).message}`);
      }
    }
  }
}
