/**
 * The emulated ESXi host's distributed switch, as far as vCenter mode needs it (this is ESXi, not the
 * vRouter): every VM NIC is plugged into a port of its port group, which has a VLAN of its own; the
 * switch tags what the VM sends with that VLAN onto the trunk into the vRouter VM ("ContrailVM", whose
 * trunk NIC is a vif), and takes the tag off what comes back on the trunk before handing it to the port
 * of that VLAN.
 *
 * Why one port per VLAN: the Contrail 2.22 vCenter Nova driver gives every port a port group and a
 * VLAN of its own, so ESXi never switches two VMs locally — all their traffic goes through the vRouter,
 * where policy and flows apply. A frame on the trunk for a VLAN no port has is dropped here (ESXi drops
 * it), counted in `noPort`; a frame without a tag from the trunk is the native VLAN, which no port group
 * of this mode uses (`untagged`).
 *
 * The kernel this runs on has no 802.1Q devices and no VLAN-filtering bridge (nor tc's vlan action),
 * so the switch lives in the datapath thread's host (io/dp-worker.ts) as plain frame work: a VM's frame
 * is read 4 bytes into its slot so the tag is pushed without a copy of the payload.
 * @module
 */

export const ETH_P_8021Q = 0x8100;
export const VLAN_MIN = 1;
export const VLAN_MAX = 4094; // 0 means "no VLAN" and 4095 is reserved (802.1Q)

/** Switch counters, by index. */
export const DVS_TO_TRUNK = 0; // frames from VMs tagged onto the trunk
export const DVS_TO_PORT = 1; // frames from the trunk delivered to a VM's port
export const DVS_NO_PORT = 2; // from the trunk, tagged with a VLAN no port has
export const DVS_UNTAGGED = 3; // from the trunk without a tag (or too short for one)
export const DVS_COUNTERS = 4;

export class DvSwitch {
  /** The VM NIC fd of each VLAN's port, −1 none. */
  readonly portFd = new Int32Array(VLAN_MAX + 1).fill(-1);
  /** The trunk vif each VLAN's port tags onto. */
  readonly trunkOf = new Int32Array(VLAN_MAX + 1).fill(-1);
  readonly counters = new Float64Array(DVS_COUNTERS);

  /** Plug (fd ≥ 0) or unplug (fd −1) the port of `vlan`. @returns false for a VLAN outside 1..4094. */
  set(vlan: number, fd: number, trunk: number): boolean {
    if (!(vlan >= VLAN_MIN && vlan <= VLAN_MAX)) return false;
    this.portFd[vlan] = fd;
    this.trunkOf[vlan] = fd >= 0 ? trunk : -1;
    return true;
  }

  /**
   * A VM's frame of `len` bytes at `off + 4` (read there to leave room): the MACs move 4 bytes down and
   * the tag of `vlan` (priority 0) goes between them and the ethertype. @returns the tagged frame's offset.
   */
  tag(buf: Uint8Array, off: number, len: number, vlan: number): number {
    if (len >= 12) buf.copyWithin(off, off + 4, off + 16);
    buf[off + 12] = ETH_P_8021Q >> 8;
    buf[off + 13] = ETH_P_8021Q & 0xff;
    buf[off + 14] = (vlan >> 8) & 0x0f;
    buf[off + 15] = vlan & 0xff;
    this.counters[DVS_TO_TRUNK]++;
    return off;
  }

  /**
   * A frame from the trunk: the VLAN whose port takes it, or −1 (counted) when it has no tag or no port
   * has its VLAN. The caller sends the frame without its tag (bytes 12..15) to portFd[vlan].
   */
  vlanOf(buf: Uint8Array, off: number, len: number): number {
    if (len < 18 || buf[off + 12] !== ETH_P_8021Q >> 8 || buf[off + 13] !== (ETH_P_8021Q & 0xff)) {
      this.counters[DVS_UNTAGGED]++;
      return -1;
    }
    const vlan = ((buf[off + 14] & 0x0f) << 8) | buf[off + 15];
    if (vlan > VLAN_MAX || this.portFd[vlan] < 0) {
      this.counters[DVS_NO_PORT]++;
      return -1;
    }
    this.counters[DVS_TO_PORT]++;
    return vlan;
  }
}
