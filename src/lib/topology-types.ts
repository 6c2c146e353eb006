/**
 * The shapes of the testbed's networks and hosts (VMs and outside hosts): what the agent configures and
 * what src/io creates (namespaces, TAPs, qemu guests, attached interfaces). Plain data, no behaviour; the
 * topology file is read and validated into these by agent/topology.ts, which also holds the Contrail
 * objects (policies, global-vrouter-config) around them.
 * @module
 */

export interface Network {
  name: string;
  /** default-domain:admin:NAME (or the name, when it is an fq-name already). */
  fqName: string;
  /** Network address as a number (a<<24|…), prefix length, gateway as a number. */
  net: number;
  prefixLen: number;
  gateway: number;
  subnet: string;
  gatewayStr: string;
  /** router_external: floating IPs come from this network. */
  routerExternal: boolean;
  /** The policies attached (network_policy_refs), fq-names in sequence order. */
  policies: string[];
}

/** A namespace host with one interface: a VM, or an outside host of a router-external network. */
export interface HostSpec {
  name: string;
  ip: number;
  ipStr: string;
  mac: Uint8Array;
  macStr: string;
  network: string;
  mtu: number;
  /**
   * What the VM is: `netns`, a namespace whose eth0 is a TAP the emulator owns; `qemu`, a guest the
   * emulator boots with its NIC on a tap the vif attaches to; `attach`, an existing interface (a guest's
   * tap, a veth) the vif attaches to by packet socket.
   */
  kind: HostKind;
  /** The namespace that is the VM ('' for qemu and attach). */
  namespace: string;
  /** Whether the namespace exists already (never created or deleted by the emulator). */
  nsExisting: boolean;
  /** The vif's OS interface: the TAP (Contrail style, tapXXXXXXXX-XX), or the attached interface. */
  tap: string;
  /** qemu guests: what the guest runs once its network is up (a busybox sh script), and its memory in MiB. */
  guest?: { run: string; memoryMb: number };
}

export type HostKind = 'netns' | 'qemu' | 'attach';

export interface VmSpec extends HostSpec {
  /** virtual_machine_interface_fat_flow_protocols: (protocol, port). */
  fatFlow: [number, number][];
  /** Floating IPs of the VM's interface, each in a router-external network. */
  floatingIps: { ip: number; ipStr: string; network: string }[];
}
