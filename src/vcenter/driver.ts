/**
 * The vCenter driver's VIF plumbing (the 2.22 Nova compute driver for vCenter, as far as the network
 * goes): for each port, a VLAN from the pool, a distributed port group with that VLAN in vCenter, the VM
 * on the ESXi host with its NIC on that port group, and the port added to the vRouter agent with its
 * VLAN. Nova's calls, one by one:
 *
 *   spawn        VLAN (the lowest free one of the pool that no port group in vCenter has) → port
 *                group → VM on the host → agent port                 (undone in reverse if a step fails)
 *   destroy      agent port → VM → port group → VLAN released
 *   plug_vifs    the port group, the VM on the host and the agent port made again if missing (the
 *                VLAN kept): what nova-compute does for every instance when it starts, and after a
 *                vRouter restart (the emulated ESXi host lives in the vRouter's process)
 *   unplug_vifs  the agent port removed; VM, port group and VLAN kept
 *
 * The ESXi host and the agent are reached over the emulator's control socket (`esxi`, `port` tools);
 * vCenter over the vSphere API. Operations run one at a time (the pool and vCenter see no races).
 * @module
 */
import { randomUUID } from 'crypto';
import { UserError } from '../errors';
import { controlCall } from '../cli/control';
import { DriverInstance, DriverState } from './driver-state';
import type { MoRef, VSphere } from './vsphere';

/** The longest a control-socket call may take (the ESXi host sets up a namespace). */
const CONTROL_MS = 30_000;

/** What the driver talks to. */
export interface DriverDeps {
  vs: VSphere;
  dvs: MoRef;
  dvsName: string;
  /** The emulator's control socket. */
  socket: string;
  state: DriverState;
  log: (s: string) => void;
}

/**
 * The port group of a port: one per port, named as 2.x's Contrail ESX driver named them,
 * `<network>-<instance>-<port uuid>` (docs/facts-vcenter-2.22.md a3).
 */
export function portgroupName(network: string, instance: string, portUuid: string): string {
  return `${network}-${instance}-${portUuid}`;
}

/** A locally administered MAC from the port's UUID (its last five bytes after 02). */
export function portMac(portUuid: string): string {
  const h = portUuid.replace(/-/g, '').slice(-10);
  return ['02', h.slice(0, 2), h.slice(2, 4), h.slice(4, 6), h.slice(6, 8), h.slice(8, 10)].join(':');
}

export class VcenterDriver {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly d: DriverDeps) {}

  /** Run `op` after the ones before it. */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(op, op);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** A tool on the emulator, with a deadline. @returns its output. */
  private async tool(argv: string[]): Promise<string> {
    let out = '';
    await controlCall(this.d.socket, argv, (s) => (out += s), CONTROL_MS);
    return out.trim();
  }

  list(): DriverInstance[] {
    return this.d.state.instances();
  }

  /** The port group of `i` in vCenter: its key, or undefined when there is none. */
  private async portgroupKey(i: DriverInstance): Promise<{ key: string; vlan: number | null } | undefined> {
    const pg = (await this.d.vs.listPortgroups(this.d.dvs)).find((x) => x.name === i.port.portgroup);
    return pg ? { key: pg.key, vlan: pg.vlanId } : undefined;
  }

  private addPort(i: DriverInstance): Promise<string> {
    return this.tool(['port', '--add', i.port.uuid, '--vm', i.name, '--network', i.network, '--ip', i.ip, '--mac', i.port.mac, '--vlan', String(i.port.vlan)]);
  }

  /** spawn: a new instance NAME in `network` at `ip`. @returns what was done. @throws UserError (nothing left half-made). */
  spawn(name: string, network: string, ip: string, kind: 'netns' | 'qemu' = 'netns'): Promise<DriverInstance> {
    return this.serial(async () => {
      if (this.d.state.get(name)) throw new UserError(`spawn ${name}: instance ${name} exists (VLAN ${this.d.state.get(name)?.port.vlan}); destroy it first`);
      const portUuid = randomUUID();
      // As 2.x's drivers seeded their VLAN map: the VLANs of the port groups already in vCenter are taken.
      const taken = new Set<number>();
      for (const pg of await this.d.vs.listPortgroups(this.d.dvs)) if (pg.vlanId !== null) taken.add(pg.vlanId);
      const i: DriverInstance = {
        name, uuid: randomUUID(), network, ip, plugged: true, kind,
        port: { uuid: portUuid, vlan: this.d.state.freeVlan(taken), portgroup: portgroupName(network, name, portUuid), mac: portMac(portUuid) },
      };
      // Each undo is queued before its step: a step that failed late (its answer past the deadline) may
      // still have happened, and undoing what did not happen is ignored.
      const undo: (() => Promise<unknown>)[] = [];
      try {
        const key = await this.d.vs.createPortgroup(this.d.dvs, i.port.portgroup, i.port.vlan);
        undo.push(() => this.d.vs.destroyPortgroup(key));
        // The VLAN is the instance's from the moment its port group exists: recorded before the next step.
        this.d.state.put(i);
        undo.push(async () => this.d.state.remove(name));
        undo.push(() => this.tool(['esxi', 'vm-delete', name]).catch(ignore(/no VM/)));
        await this.tool(['esxi', 'vm-create', name, '--portgroup', i.port.portgroup, '--network', network, '--ip', ip, '--mac', i.port.mac, '--kind', kind]).catch((e: Error) => {
          if (/exists already/.test(e.message)) undo.pop(); // someone else's VM of that name: not ours to delete
          throw e;
        });
        undo.push(() => this.tool(['port', '--delete', i.port.uuid]).catch(ignore(/no port/)));
        await this.addPort(i);
      } catch (e) {
        for (const u of undo.reverse()) await u().catch((x: Error) => this.d.log(`vcenter-driver: spawn ${name}: rolling back: ${x.message}`));
        throw e instanceof UserError ? new UserError(`spawn ${name}: ${e.message}`) : e;
      }
      this.d.log(`vcenter-driver: spawned ${name}: port ${i.port.uuid} VLAN ${i.port.vlan} port group ${i.port.portgroup}, ${ip} ${i.port.mac} in ${network}`);
      return i;
    });
  }

  /** destroy: the agent port, the VM, the port group, the VLAN. Steps already undone are skipped. */
  destroy(name: string): Promise<DriverInstance> {
    return this.serial(async () => {
      const i = this.need(name, 'destroy');
      await this.tool(['port', '--delete', i.port.uuid]).catch(ignore(/no port/));
      await this.tool(['esxi', 'vm-delete', name]).catch(ignore(/no VM/));
      const pg = await this.portgroupKey(i);
      if (pg) await this.d.vs.destroyPortgroup(pg.key);
      this.d.state.remove(name);
      this.d.log(`vcenter-driver: destroyed ${name} (VLAN ${i.port.vlan} free again)`);
      return i;
    });
  }

  /** plug_vifs: the port group (with the instance's VLAN) and the agent port, each made if missing. */
  plugVifs(name: string): Promise<string[]> {
    return this.serial(async () => {
      const i = this.need(name, 'plug_vifs');
      const done: string[] = [];
      const pg = await this.portgroupKey(i);
      if (!pg) {
        await this.d.vs.createPortgroup(this.d.dvs, i.port.portgroup, i.port.vlan);
        done.push(`port group ${i.port.portgroup} made again with VLAN ${i.port.vlan}`);
      } else if (pg.vlan !== i.port.vlan) {
        throw new UserError(`plug_vifs ${name}: port group ${i.port.portgroup} has VLAN ${pg.vlan} in vCenter, the driver gave VLAN ${i.port.vlan}; someone changed it: destroy and spawn again`);
      }
      // The emulated ESXi host runs in the vRouter's process: after a restart of it, its VMs are gone too.
      const vms = await this.tool(['esxi', 'list']);
      if (!vms.split('\n').some((l) => l.split('\t')[0] === i.name)) {
        await this.tool(['esxi', 'vm-create', name, '--portgroup', i.port.portgroup, '--network', i.network, '--ip', i.ip, '--mac', i.port.mac, '--kind', i.kind ?? 'netns']);
        done.push(`VM ${name} powered on again on port group ${i.port.portgroup}`);
      }
      const ports = await this.tool(['port', '--list']);
      if (!ports.split('\n').some((l) => l.startsWith(i.port.uuid))) {
        await this.addPort(i);
        done.push(`agent port ${i.port.uuid} added on VLAN ${i.port.vlan}`);
      }
      if (!i.plugged) this.d.state.put({ ...i, plugged: true });
      return done;
    });
  }

  /** unplug_vifs: the agent port removed (its frames then drop on the trunk); VM, port group and VLAN kept. */
  unplugVifs(name: string): Promise<void> {
    return this.serial(async () => {
      const i = this.need(name, 'unplug_vifs');
      await this.tool(['port', '--delete', i.port.uuid]).catch(ignore(/no port/));
      this.d.state.put({ ...i, plugged: false });
    });
  }

  /** At start: every plugged instance's port group and agent port made again if missing (nova-compute's init_host). */
  async replugAll(): Promise<string[]> {
    const out: string[] = [];
    for (const i of this.d.state.instances().filter((x) => x.plugged)) {
      try {
        for (const l of await this.plugVifs(i.name)) out.push(`${i.name}: ${l}`);
      } catch (e) {
        out.push(`${i.name}: ${(e as Error).message}`);
      }
    }
    return out;
  }

  private need(name: string, what: string): DriverInstance {
    const i = this.d.state.get(name);
    if (!i) throw new UserError(`${what} ${name}: no such instance (the instances are: ${this.d.state.instances().map((x) => x.name).join(', ') || 'none'})`);
    return i;
  }
}

/** A catch handler that ignores UserErrors matching `re` (a step already undone) and rethrows the rest. */
function ignore(re: RegExp): (e: Error) => string {
  return (e) => {
    if (e instanceof UserError && re.test(e.message)) return '';
    throw e;
  };
}
