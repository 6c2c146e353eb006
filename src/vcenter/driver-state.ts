/**
 * What the vCenter driver remembers across restarts: its VLAN pool and the instances it spawned (their
 * port, VLAN and port group). One JSON file, replaced atomically (written to a temporary file, synced,
 * renamed over, the directory synced), so a crash leaves the old state or the new one, never half.
 *
 * The pool hands out the lowest free VLAN of its range (1-4094 unless given), as the 2.x Contrail
 * VMware drivers did; a VLAN stays an instance's until it is
 * destroyed, so a restart of the driver (or of the vRouter) re-plugs every port on the VLAN it had.
 * @module
 */
import * as fs from 'fs';
import { UserError } from '../errors';
import { writeFileAtomic } from '../lib/atomic-file';
import { VLAN_MAX, VLAN_MIN } from '../esxi/dvswitch';

export interface DriverPort {
  /** The Neutron-style port UUID (the agent's VMI). */
  uuid: string;
  vlan: number;
  portgroup: string;
  mac: string;
}

export interface DriverInstance {
  name: string;
  /** The Nova instance UUID. */
  uuid: string;
  network: string;
  ip: string;
  port: DriverPort;
  /** Whether the port is plugged (plug_vifs) or not (unplug_vifs). */
  plugged: boolean;
  /** What the ESXi host runs: a namespace (default) or a qemu guest. */
  kind?: 'netns' | 'qemu';
}

export interface DriverStateData {
  version: 1;
  pool: { min: number; max: number };
  instances: DriverInstance[];
}

/** Parse "100-199" (or one VLAN). @throws UserError naming `what`. */
export function parseVlanRange(s: string, what: string): { min: number; max: number } {
  const m = /^(\d{1,4})(?:-(\d{1,4}))?$/.exec(s.trim());
  const min = m ? Number(m[1]) : NaN;
  const max = m ? Number(m[2] ?? m[1]) : NaN;
  if (!m || min < VLAN_MIN || max > VLAN_MAX || min > max) {
    throw new UserError(`${what} ${s}: expected a VLAN range FIRST-LAST within ${VLAN_MIN}-${VLAN_MAX}, e.g. 100-199`);
  }
  return { min, max };
}

export class DriverState {
  private constructor(readonly file: string, private data: DriverStateData) {}

  /**
   * Open the state file (created with `pool` when missing). A pool given that differs from the file's
   * is taken when every VLAN in use is inside it.
   * @throws UserError naming the file and the problem.
   */
  static open(file: string, pool: { min: number; max: number } | undefined): DriverState {
    let data: DriverStateData;
    let text: string | undefined;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new UserError(`${file}: ${(e as Error).message}`);
    }
    if (text === undefined) {
      data = { version: 1, pool: pool ?? { min: VLAN_MIN, max: VLAN_MAX }, instances: [] };
    } else {
      data = DriverState.check(file, text);
      if (pool) {
        const out = data.instances.find((i) => i.port.vlan < pool.min || i.port.vlan > pool.max);
        if (out) throw new UserError(`--vlan-pool ${pool.min}-${pool.max}: instance ${out.name} has VLAN ${out.port.vlan} outside it (${file}); destroy it first or keep the pool`);
        data.pool = pool;
      }
    }
    const st = new DriverState(file, data);
    st.save();
    return st;
  }

  private static check(file: string, text: string): DriverStateData {
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch (e) {
      throw new UserError(`${file}: not JSON (${(e as Error).message}); move it away to start with an empty state`);
    }
    const d = o as Partial<DriverStateData> | null;
    const okPool = d?.pool && Number.isInteger(d.pool.min) && Number.isInteger(d.pool.max) && d.pool.min >= VLAN_MIN && d.pool.max <= VLAN_MAX && d.pool.min <= d.pool.max;
    if (!d || d.version !== 1 || !okPool || !Array.isArray(d.instances)) {
      throw new UserError(`${file}: not a vcenter-driver state file (version 1, pool, instances); move it away to start with an empty state`);
    }
    const vlans = new Set<number>();
    for (const [k, i] of d.instances.entries()) {
      const ok = i && typeof i.name === 'string' && typeof i.uuid === 'string' && typeof i.network === 'string' && typeof i.ip === 'string' &&
        typeof i.plugged === 'boolean' && (i.kind === undefined || i.kind === 'netns' || i.kind === 'qemu') && i.port && typeof i.port.uuid === 'string' && Number.isInteger(i.port.vlan) && typeof i.port.portgroup === 'string' && typeof i.port.mac === 'string';
      if (!ok) throw new UserError(`${file}: instances[${k}] is malformed; move the file away to start with an empty state`);
      if (vlans.has(i.port.vlan)) throw new UserError(`${file}: VLAN ${i.port.vlan} is given to two instances (instances[${k}] ${i.name}); fix or move the file away`);
      vlans.add(i.port.vlan);
    }
    return d as DriverStateData;
  }

  get pool(): { min: number; max: number } {
    return this.data.pool;
  }

  instances(): DriverInstance[] {
    return this.data.instances;
  }

  get(name: string): DriverInstance | undefined {
    return this.data.instances.find((i) => i.name === name);
  }

  /**
   * The lowest VLAN of the pool that no instance has and `taken` (VLANs of port groups vCenter has
   * already, made by others) does not hold. @throws UserError when the pool is exhausted.
   */
  freeVlan(taken: Set<number> = new Set()): number {
    const used = new Set(this.data.instances.map((i) => i.port.vlan));
    for (let v = this.data.pool.min; v <= this.data.pool.max; v++) if (!used.has(v) && !taken.has(v)) return v;
    const n = this.data.pool.max - this.data.pool.min + 1;
    const others = [...taken].filter((v) => v >= this.data.pool.min && v <= this.data.pool.max && !used.has(v)).length;
    throw new UserError(`VLAN pool ${this.data.pool.min}-${this.data.pool.max} exhausted: of its ${n} VLANs, ${used.size} are given to instances and ${others} used by other port groups in vCenter; destroy an instance, or widen the pool (vcenter-driver serve --vlan-pool FIRST-LAST)`);
  }

  /** Record an instance (its VLAN is taken from now on) and save. */
  put(i: DriverInstance): void {
    this.data.instances = [...this.data.instances.filter((x) => x.name !== i.name), i].sort((a, b) => a.port.vlan - b.port.vlan);
    this.save();
  }

  /** Forget an instance (its VLAN is free again) and save. */
  remove(name: string): void {
    this.data.instances = this.data.instances.filter((x) => x.name !== name);
    this.save();
  }

  /** Replace the file atomically and durably (fsync of the file and of its directory). */
  private save(): void {
    writeFileAtomic(this.file, JSON.stringify(this.data, null, 1) + '\n', { mkdir: true, mode: 0o600, durable: true });
  }
}
