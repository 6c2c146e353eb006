/**
 * `start --mode vcenter` at run time: the emulated ESXi host's VMs (`esxi` tool) and the agent's ports
 * of vCenter VMs (`port` tool), which the vCenter driver (`vrouter-emu vcenter-driver`) drives over the
 * control socket, as the Nova driver drives vCenter and the agent.
 *
 * A port is the agent's VM interface for a vCenter VM: a VLAN sub-interface vif of the trunk vif, the
 * VLAN the port group's, in the port's network (InstanceService AddPort with vlan_id in 2.22; the
 * vRouter VM's trunk NIC is the parent). Its frames reach the vRouter through the ESXi switch, tagged.
 * @module
 */
import type { DpProgrammer } from '../agent/dp-channel';
import { ComputeNode, VifInfo } from '../agent/compute-node';
import { Topology, runtimeVm } from '../agent/topology';
import { EsxiHost } from '../esxi/host';
import { VLAN_MAX, VLAN_MIN } from '../esxi/dvswitch';
import type { DpThread } from '../io/dp-thread';
import { VIF_IO_TAP } from '../io/ring';
import type { VmSpec } from '../lib/topology-types';
import { UserError } from '../errors';
import type { MoRef, VSphere } from '../vcenter/vsphere';
import { parseArgs } from './args';

export const ESXI_USAGE = 'vrouter-emu esxi vm-create NAME --portgroup PG --network N --ip A --mac M [--kind netns|qemu] | esxi vm-delete NAME | esxi list';
export const PORT_USAGE = 'vrouter-emu port --add UUID --vm NAME --network N --ip A --mac M --vlan V | port --delete UUID | port --list';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class VcenterMode {
  /** The agent's ports: uuid → vif index. */
  private readonly ports = new Map<string, { vif: VifInfo; uuid: string }>();

  constructor(
    readonly esxi: EsxiHost,
    private readonly node: ComputeNode,
    private readonly dp: DpThread,
    private readonly prog: DpProgrammer,
    private readonly topo: Topology,
    private readonly log: (s: string) => void,
  ) {}

  /** A VM of network `network` with this address and MAC, validated as a topology's VM is. */
  private spec(name: string, network: string | undefined, ip: string | undefined, mac: string | undefined, what: string): VmSpec {
    if (!network || !ip || !mac) throw new UserError(`${what}: --network, --ip and --mac are required`);
    const n = this.topo.networks.find((x) => x.name === network);
    if (!n) throw new UserError(`${what}: --network ${network}: no such network (the networks are ${this.topo.networks.map((x) => x.name).join(', ')})`);
    return runtimeVm(n, { name, ip, mac, attach: 'eth0' }, what);
  }

  /** `esxi vm-create|vm-delete|list`. @returns the text to print. */
  async esxiTool(args: string[]): Promise<string> {
    const p = parseArgs(args, { '--portgroup': { value: true }, '--network': { value: true }, '--ip': { value: true }, '--mac': { value: true }, '--kind': { value: true } }, ESXI_USAGE);
    const [verb, name, ...rest] = p.positional;
    if (rest.length > 0) throw new UserError(`unexpected argument ${rest[0]}; usage: ${ESXI_USAGE}`);
    if (verb === 'list') {
      const rows = [...this.esxi.vms.values()].map((v) => `${v.name}\t${v.portgroup}\tVLAN ${v.vlan}\t${v.host.ipStr}\t${v.host.macStr}\t${v.guest ? `qemu pid ${v.guest.pid}` : `namespace ${v.host.namespace}`}`);
      return rows.length ? rows.join('\n') + '\n' : 'no VMs on this host\n';
    }
    if (!name) throw new UserError(`usage: ${ESXI_USAGE}`);
    if (verb === 'vm-delete') {
      const vm = await this.esxi.deleteVm(name);
      return `VM ${name} deleted (port group ${vm.portgroup}, VLAN ${vm.vlan})\n`;
    }
    if (verb !== 'vm-create') throw new UserError(`usage: ${ESXI_USAGE}`);
    const pg = p.opts.get('--portgroup')?.[0];
    if (!pg) throw new UserError(`esxi vm-create: --portgroup PG is required; usage: ${ESXI_USAGE}`);
    const s = this.spec(name, p.opts.get('--network')?.[0], p.opts.get('--ip')?.[0], p.opts.get('--mac')?.[0], 'esxi vm-create');
    const nw = this.topo.networks.find((x) => x.name === s.network) as Topology['networks'][number];
    const kind = p.opts.get('--kind')?.[0] ?? 'netns';
    if (kind !== 'netns' && kind !== 'qemu') throw new UserError(`esxi vm-create: --kind ${kind}: expected netns (a namespace, the default) or qemu (a guest)`);
    const vm = await this.esxi.createVm(name, pg, nw, s.ip, s.ipStr, s.mac, s.macStr, kind);
    return `VM ${name} powered on: NIC ${vm.host.tap} on port group ${pg} (VLAN ${vm.vlan}), ${vm.guest ? `qemu guest pid ${vm.guest.pid} (console: vrouter-emu vm console ${name})` : `namespace ${vm.host.namespace}`}\n`;
  }

  /** `port --add|--delete|--list`. @returns the text to print. */
  async portTool(args: string[]): Promise<string> {
    const p = parseArgs(args, {
      '--add': { value: true }, '--delete': { value: true }, '--list': {}, '--vm': { value: true }, '--network': { value: true },
      '--ip': { value: true }, '--mac': { value: true }, '--vlan': { value: true },
    }, PORT_USAGE);
    if (p.flags.has('--list')) {
      const rows = [...this.ports.values()].map(({ vif, uuid }) => `${uuid}\tvif0/${vif.idx}\tVLAN ${vif.vlan}\t${vif.vm?.name}\t${vif.vm?.ipStr}\t${vif.vm?.macStr}\t${vif.vm?.network}`);
      return rows.length ? rows.join('\n') + '\n' : 'no ports\n';
    }
    const del = p.opts.get('--delete')?.[0];
    if (del !== undefined) {
      const port = this.ports.get(del.toLowerCase());
      if (!port || this.node.vif(port.vif.idx) !== port.vif) throw new UserError(`port --delete: no port ${del} (see vrouter-emu port --list)`);
      this.node.removeVm(this.prog, port.vif.idx);
      await this.dp.vifDelete(port.vif.idx);
      this.ports.delete(port.uuid);
      const line = `port ${port.uuid} deleted: vif0/${port.vif.idx} (VLAN ${port.vif.vlan}, VM ${port.vif.vm?.name})`;
      this.log(`vrouter-emu: ${line}`);
      return line + '\n';
    }
    const uuid = p.opts.get('--add')?.[0]?.toLowerCase();
    if (!uuid) throw new UserError(`usage: ${PORT_USAGE}`);
    if (!UUID_RE.test(uuid)) throw new UserError(`port --add ${uuid}: expected the port's UUID (8-4-4-4-12 hex digits)`);
    if (this.ports.has(uuid)) throw new UserError(`port --add: port ${uuid} exists already (vif0/${this.ports.get(uuid)?.vif.idx}); delete it first`);
    const vlanS = p.opts.get('--vlan')?.[0];
    const vlan = Number(vlanS);
    if (vlanS === undefined || !Number.isInteger(vlan) || vlan < VLAN_MIN || vlan > VLAN_MAX) {
      throw new UserError(`port --add: --vlan ${vlanS ?? '(missing)'}: expected the port group's VLAN, ${VLAN_MIN}..${VLAN_MAX}`);
    }
    const taken = this.node.vifs.find((v) => v.parent !== undefined && v.vlan === vlan);
    if (taken) throw new UserError(`port --add: VLAN ${vlan} is vif0/${taken.idx}'s already (VM ${taken.vm?.name}); each port has a VLAN of its own`);
    const name = p.opts.get('--vm')?.[0];
    if (!name) throw new UserError(`port --add: --vm NAME is required; usage: ${PORT_USAGE}`);
    const vm = this.spec(name, p.opts.get('--network')?.[0], p.opts.get('--ip')?.[0], p.opts.get('--mac')?.[0], 'port --add');
    // The sub-interface's OS name: the port's, as the agent names vCenter ports (no TAP of its own).
    vm.tap = vcenterIfName(uuid);
    const problem = this.node.addable(vm);
    if (problem) throw new UserError(`port --add: ${problem}`);
    const vif = this.node.addVm(this.prog, vm, { fd: -1, io: VIF_IO_TAP }, vlan);
    this.ports.set(uuid, { vif, uuid });
    const line = `port ${uuid} added: vif0/${vif.idx} on vif0/${vif.parent} VLAN ${vlan}: VM ${vm.name} ${vm.ipStr} ${vm.macStr} in ${vm.network}`;
    this.log(`vrouter-emu: ${line}`);
    return line + '\n';
  }
}

/** A session with vCenter and the distributed switch of this ESXi host. */
export interface VcenterConn {
  vs: VSphere;
  dvs: MoRef;
  dvsName: string;
}

/** Log in to vCenter and find the distributed switch. @throws UserError naming what is wrong. */
export async function vcenterConnect(url: string, dvsName: string): Promise<VcenterConn> {
  const { VSphere } = await import('../vcenter/vsphere');
  const vs = await VSphere.connect(url);
  try {
    return { vs, dvs: await vs.findDvs(dvsName), dvsName };
  } catch (e) {
    await vs.logout();
    throw e;
  }
}

/** The ESXi host reads a port group's VLAN from vCenter (its defaultPortConfig). */
export function vcenterVlans(c: VcenterConn): { vlanOf(name: string): Promise<number> } {
  return {
    vlanOf: async (name) => {
      const pg = (await c.vs.listPortgroups(c.dvs)).find((x) => x.name === name);
      if (!pg) throw new UserError(`esxi: vCenter has no port group ${name} on ${c.dvsName}; create it first (vrouter-emu vcenter-driver spawn does)`);
      if (pg.vlanId === null) throw new UserError(`esxi: port group ${name} is a trunk or private-VLAN port group: a VM port needs one VLAN`);
      return pg.vlanId;
    },
  };
}

/** vCenter mode's topology: its networks and outside hosts; its VMs are the driver's to spawn. */
export function vcenterTopology(topo: Topology): Topology {
  return { ...topo, vms: [] };
}

/** The trunk vif's OS name and MAC: the vRouter VM's NIC on the trunk port group (a VMware OUI). */
export const TRUNK_IFNAME = 'trunk0';
export const TRUNK_MAC = Uint8Array.from([0x00, 0x50, 0x56, 0x00, 0x00, 0x01]);

/** The OS name `vif --list` shows for a vCenter port's sub-interface. */
export function vcenterIfName(uuid: string): string {
  return `vmi-${uuid.slice(0, 11)}`;
}
