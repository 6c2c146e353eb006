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
  /** virtual_network_properties.vxlan_network_identifier (`vxlan_network_identifier`), 0 when not given. */
  vxlanId: number;
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
  /** The compute node the host runs on (`node`; '' when the topology has no `nodes`). */
  node: string;
}

export type HostKind = 'netns' | 'qemu' | 'attach';

export interface VmSpec extends HostSpec {
  /** virtual_machine_interface_fat_flow_protocols: (protocol, port). */
  fatFlow: [number, number][];
  /** Floating IPs of the VM's interface, each in a router-external network. */
  floatingIps: { ip: number; ipStr: string; network: string }[];
}

// ---------------------------------------------------------------------------------------------------
// Several compute nodes (the overlay). A topology with `nodes` describes a cluster: every node reads the
// same file and derives, for itself, the remote routes, tunnel nexthops, MPLS labels and VNIs (see
// agent/overlay.ts). Without `nodes` the topology is one isolated compute node, as before.

/** The encapsulations of R2.22 (global-vrouter-config encapsulation_priorities, DEFAULT.tunnel_type). */
export type Encap = 'MPLSoGRE' | 'MPLSoUDP' | 'VXLAN';
export const ENCAPS: readonly Encap[] = ['MPLSoGRE', 'MPLSoUDP', 'VXLAN'];

/** A compute node of the cluster: its fabric (underlay) address and interface, what it decapsulates. */
export interface NodeSpec {
  name: string;
  /** vhost0's address (the router-id) as a number, its text, and the fabric prefix length. */
  fabricIp: number;
  fabricIpStr: string;
  prefixLen: number;
  /** The NIC vif0/0 attaches to (packet socket): "eth1" unless given. */
  fabricInterface: string;
  /** Encapsulations this node supports (the peer's list the sender picks from), in the file's order. */
  encapsulations: Encap[];
}

/**
 * A bare-metal host behind a VXLAN VTEP that no emulator runs (the Linux kernel's vxlan device): its
 * overlay address and MAC in `network`, and the VTEP's fabric address. The testbed creates the VTEP
 * namespace (vxlan device + bridge) and the host's namespace.
 */
export interface BareMetalSpec {
  name: string;
  ip: number;
  ipStr: string;
  mac: Uint8Array;
  macStr: string;
  network: string;
  mtu: number;
  /** The host's namespace (default bms-NAME) and the VTEP's (default vtep-NAME). */
  namespace: string;
  vtepNamespace: string;
  vtepIp: number;
  vtepIpStr: string;
}

/**
 * `route_source: "bgp"` and the `bgp` section: each node's agent runs a gobgpd speaker that peers with
 * the reflector(s) (the control node's place in 2.22).
 */
export interface BgpSpec {
  /** The cluster's autonomous system (Contrail's global-system-config autonomous_system, 64512 by default). */
  as: number;
  /** The route reflectors' fabric addresses (the testbed runs the first). */
  reflectors: number[];
  reflectorsStr: string[];
  /** Graceful-restart time in seconds: how long routes stay (stale) after the session to a reflector drops. */
  restartTime: number;
  /** BGP hold time in seconds. */
  holdTime: number;
  /** The port of each node's gobgpd API on 127.0.0.1. */
  apiPort: number;
}
