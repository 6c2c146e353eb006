/**
 * The emulated ESXi host of vCenter mode (management side; the frame side is dvswitch.ts): it runs the
 * VMs vCenter puts on it — namespaces whose eth0 is a TAP plugged into a port of the distributed
 * switch, or qemu guests whose NIC's tap is — and takes each port's VLAN from the port group's configuration in vCenter, as a real host
 * takes its DVS configuration from vCenter. It knows nothing of the vRouter: the vRouter VM's trunk NIC
 * is the one vif it tags onto.
 * @module
 */
import { UserError } from '../errors';
import { tapName } from '../agent/topology';
import type { HostSpec, Network } from '../lib/topology-types';
import type { Testbed } from '../io/testbed';
import { VLAN_MAX, VLAN_MIN } from './dvswitch';

/** Where the host reads a port group's VLAN: vCenter (the vSphere API). */
export interface PortgroupVlans {
  /** The VLAN of port group `name`. @throws UserError naming it when vCenter has no such port group. */
  vlanOf(name: string): Promise<number>;
}

/** How the host plugs a port into the switch (the datapath thread that runs it); `io` how to read `fd`. */
export interface SwitchPorts {
  portSet(vlan: number, fd: number, trunk: number, io?: number): Promise<void>;
}

/** Boots qemu guests (io/guest.ts): the host's VMs of kind "qemu". */
export interface GuestRunner {
  start(host: HostSpec, nw: Network): { pid: number; stop(): Promise<void> };
}

export interface EsxiVm {
  name: string;
  portgroup: string;
  vlan: number;
  host: HostSpec;
  fd: number;
  /** A qemu guest's process, or undefined for a namespace VM. */
  guest?: { pid: number; stop(): Promise<void> };
}

/** The namespace of an ESXi VM: its name under the host's prefix. */
export function esxiNamespace(prefix: string, vm: string): string {
  return `${prefix}${vm}`;
}

export class EsxiHost {
  readonly vms = new Map<string, EsxiVm>();
  private readonly byVlan = new Map<number, string>();
  private readonly creating = new Set<string>();

  /**
   * @param prefix namespaces are PREFIX+name (two hosts side by side use two prefixes)
   * @param trunk the vif the switch's ports tag onto (the vRouter VM's trunk NIC)
   */
  constructor(
    private readonly bed: Testbed,
    private readonly ports: SwitchPorts,
    private readonly vcenter: PortgroupVlans,
    readonly trunk: number,
    readonly prefix: string,
    private readonly log: (s: string) => void,
    private readonly guests?: GuestRunner,
  ) {}

  /**
   * Power on VM `name` with its NIC on port group `portgroup` (its VLAN read from vCenter), configured
   * as the guest would be: `ip` in `nw`, `mac`. A `qemu` VM is a guest booted on a tap (the switch
   * port reads it by packet socket). Nothing is left behind when a step fails.
   * @throws UserError naming the problem.
   */
  async createVm(name: string, portgroup: string, nw: Network, ip: number, ipStr: string, mac: Uint8Array, macStr: string, kind: 'netns' | 'qemu' = 'netns'): Promise<EsxiVm> {
    if (kind === 'qemu' && !this.guests) throw new UserError('esxi: this host cannot boot qemu guests');
    if (this.vms.has(name) || this.creating.has(name)) throw new UserError(`esxi: VM ${name} exists already on this host (port group ${this.vms.get(name)?.portgroup ?? portgroup})`);
    // The name, then the VLAN, are reserved before each wait: two requests at once cannot both take them.
    this.creating.add(name);
    try {
      return await this.create(name, portgroup, nw, ip, ipStr, mac, macStr, kind);
    } finally {
      this.creating.delete(name);
    }
  }

  private async create(name: string, portgroup: string, nw: Network, ip: number, ipStr: string, mac: Uint8Array, macStr: string, kind: 'netns' | 'qemu'): Promise<EsxiVm> {
    const vlan = await this.vcenter.vlanOf(portgroup);
    if (!(vlan >= VLAN_MIN && vlan <= VLAN_MAX)) {
      throw new UserError(`esxi: port group ${portgroup} has VLAN ${vlan}: a VM port needs a VLAN in ${VLAN_MIN}..${VLAN_MAX} (0 is untagged, 4095 a trunk)`);
    }
    const other = this.byVlan.get(vlan);
    if (other !== undefined) {
      throw new UserError(`esxi: VLAN ${vlan} (port group ${portgroup}) is VM ${other}'s already: each port group of this mode has one port; give the VM a port group of its own`);
    }
    this.byVlan.set(vlan, name);
    try {
      return await this.plug(name, portgroup, vlan, nw, ip, ipStr, mac, macStr, kind);
    } catch (e) {
      this.byVlan.delete(vlan);
      throw e;
    }
  }

  private async plug(name: string, portgroup: string, vlan: number, nw: Network, ip: number, ipStr: string, mac: Uint8Array, macStr: string, kind: 'netns' | 'qemu'): Promise<EsxiVm> {
    const host: HostSpec = {
      name, ip, ipStr, mac, macStr, network: nw.name, mtu: 1500, kind, namespace: kind === 'netns' ? esxiNamespace(this.prefix, name) : '',
      nsExisting: false, tap: tapName(`${this.prefix}${name}`), node: '', guest: kind === 'qemu' ? { run: '', memoryMb: 256 } : undefined,
    };
    const hif = await this.bed.addVm(host, nw).catch((e: Error) => {
      this.bed.removeVm(host, -1);
      throw e;
    });
    await this.ports.portSet(vlan, hif.fd, this.trunk, hif.io);
    const vm: EsxiVm = { name, portgroup, vlan, host, fd: hif.fd };
    if (kind === 'qemu') {
      try {
        vm.guest = (this.guests as GuestRunner).start(host, nw);
      } catch (e) {
        await this.ports.portSet(vlan, -1, this.trunk);
        this.bed.removeVm(host, hif.fd);
        throw e;
      }
    }
    this.vms.set(name, vm);
    this.log(`vrouter-emu: esxi: VM ${name} powered on, NIC ${host.tap} on port group ${portgroup} (VLAN ${vlan}), ${vm.guest ? `qemu pid ${vm.guest.pid}` : `namespace ${host.namespace}`}`);
    return vm;
  }

  /** Power off and delete VM `name`: its port unplugged, its namespace removed. @throws UserError when there is none. */
  async deleteVm(name: string): Promise<EsxiVm> {
    const vm = this.vms.get(name);
    if (!vm) throw new UserError(`esxi: no VM ${name} on this host (the VMs are: ${[...this.vms.keys()].join(', ') || 'none'})`);
    if (vm.guest) await vm.guest.stop();
    await this.ports.portSet(vm.vlan, -1, this.trunk);
    this.vms.delete(name);
    this.byVlan.delete(vm.vlan);
    for (const p of this.bed.removeVm(vm.host, vm.fd)) this.log(`vrouter-emu: esxi: ${p}`);
    this.log(`vrouter-emu: esxi: VM ${name} deleted (port group ${vm.portgroup}, VLAN ${vm.vlan})`);
    return vm;
  }
}
