/*
 * Receive rings on packet sockets: the kernel copies each frame into memory shared with the reader in
 * the sender's softirq, and the reader walks it without a system call per batch. Two kinds, measured
 * against each other and against recvmmsg by bench:attach (BENCHMARKS.md):
 *
 * - TPACKET_V2 (the default): fixed slots, each the reader's as soon as the kernel has written it, so a
 *   frame waits no longer than on a TAP. The kernel wakes the reader for every frame, which costs the
 *   sender's CPU: at line rate the attached path forwards ~0.8x what a TAP vif does.
 * - TPACKET_V3: frames packed into blocks, a block handed over when full or when its timer retires it
 *   (>= 1 ms), one wake-up per block: ~0.9x a TAP vif at line rate, but at low rates every frame waits
 *   for the timer (a ping's RTT grows by ~1.6 ms).
 *
 * Each frame is preceded by its virtio-net header (PACKET_VNET_HDR, set before the ring; kernels 4.9 and
 * later fill it in rings, older ones keep recvmmsg). A V2 slot holds a frame up to the 1500-byte MTU;
 * a larger one (a guest's TSO super-frame) is also queued whole on the socket (PACKET_COPY_THRESH): its
 * slot says TP_STATUS_COPY and the reader receives it with recv(). A V3 block holds a 64 KiB frame.
 *
 * A ring is registered by fd in a small table, so that the datapath thread finds it from the fd it
 * polls and close() unmaps it. A read holds the table's read lock; pring_close() takes the write lock,
 * so the main thread cannot unmap a ring the datapath thread is walking.
 */
#ifndef VROUTER_PKTRING_H
#define VROUTER_PKTRING_H

#include <stddef.h>
#include <stdint.h>
#include <linux/if_packet.h>

/* V2 geometry: 39 slots of 1664 bytes in each of 64 blocks of 64 KiB (2496 slots, 4 MiB per ring). A
 * slot holds a 1518-byte frame with its headers. Not 2048: slots at a power-of-two stride put every
 * slot's header in the same few cache sets, and a small ring keeps the slots in cache and the TLB. */
#define PRING_FRAME_SIZE 1664u
#define PRING_BLOCK_SIZE (64u << 10)
#define PRING_BLOCK_NR 64u
#define PRING_FRAMES_PER_BLOCK (PRING_BLOCK_SIZE / PRING_FRAME_SIZE)
#define PRING_FRAME_NR (PRING_FRAMES_PER_BLOCK * PRING_BLOCK_NR)

/* V3 geometry: 64 blocks of 256 KiB (16 MiB per ring), retired 1 ms after their first frame. */
#define PRING3_BLOCK_SIZE (256u << 10)
#define PRING3_BLOCK_NR 64u
#define PRING3_TIMEOUT_MS 1u

/*
 * 802.1Q tags of received frames. The kernel takes the outer tag (802.1Q 0x8100 or 802.1ad 0x88a8) out
 * of every frame it receives -- in software when the driver did not (veth, tap), with or without a VLAN
 * device -- and keeps it beside the frame. A packet socket delivers the frame without it and reports the
 * tag in the frame's metadata: the ring's header (tpacket2_hdr, tpacket3_hdr's hv1) or the
 * PACKET_AUXDATA message of recvmsg (tpacket_auxdata), all with the same status bits. The reader puts it
 * back after the MAC addresses. A tag is carried here as one number, TPID << 16 | TCI (0: no tag; the
 * TPID of a tag is never 0). The TPID is reported from Linux 3.14 (TP_STATUS_VLAN_TPID_VALID); before
 * that, the field is padding and the tag is taken as 802.1Q. Kernels before 3.0 have no
 * TP_STATUS_VLAN_VALID: there a nonzero TCI is the tag (as libpcap reads it), and a priority-0 tag of
 * VLAN 0 cannot be told from none. Newer kernels zero the TCI of an untagged frame.
 */
#ifndef TP_STATUS_VLAN_VALID
#define TP_STATUS_VLAN_VALID (1 << 4)
#endif
#ifndef TP_STATUS_VLAN_TPID_VALID /* headers before 3.14: tp_vlan_tpid is named tp_padding there */
#define TP_STATUS_VLAN_TPID_VALID (1 << 6)
#define PKT_HEADERS_WITHOUT_TPID 1
#endif
#define PKT_VLAN_HLEN 4u
#define PKT_VLAN_TPID_DEFAULT 0x8100u

/* The tag as TPID << 16 | TCI from a frame's status, tp_vlan_tci and tp_vlan_tpid; 0 when it had none. */
static inline uint32_t pkt_vlan_of(uint32_t status, uint32_t tci, uint32_t tpid)
{
  if ((status & TP_STATUS_VLAN_VALID) == 0 && (tci & 0xffffu) == 0) return 0;
  if ((status & TP_STATUS_VLAN_TPID_VALID) == 0 || (tpid & 0xffffu) == 0) tpid = PKT_VLAN_TPID_DEFAULT;
  return ((tpid & 0xffffu) << 16) | (tci & 0xffffu);
}

/* What the reader does with one frame: vnet points at its virtio-net header, directly followed by the
 * frame's `len` bytes (writable), and vlan is the tag the kernel took out of it (pkt_vlan_of, 0 for
 * none); vnet NULL means the frame did not fit its slot and waits whole in the socket's queue (the take
 * function receives it, with its tag from PACKET_AUXDATA). Returns the slots used, or -1 to stop before
 * this frame (no room); the frame is then read again by the next call. */
typedef int (*pring_take_fn)(void *ctx, uint8_t *vnet, size_t len, uint32_t vlan);

/* Whether this kernel fills the virtio-net header in rings (4.9 and later). */
int pring_supported(void);

/* Set up and register a ring on fd (PACKET_VNET_HDR already set, not yet bound): TPACKET_V3 when v3,
 * else TPACKET_V2. Returns 0 or an errno value; on failure the socket is left without a ring. */
int pring_setup(int fd, int v3);

/*
 * Hand the ring's frames to take() until it returns -1, the slots reach max, or the next frame is not
 * ready. Frames the kernel truncated (without a queued copy) and our own transmissions (PACKET_OUTGOING,
 * kernels without PACKET_IGNORE_OUTGOING) are skipped and counted in *truncated and *outgoing. Returns
 * the slots used, or -1 when fd has no ring.
 */
int pring_read(int fd, pring_take_fn take, void *ctx, int max, double *truncated, double *outgoing);

/* Unmap and forget fd's ring, if it has one (before close(fd)). */
void pring_close(int fd);

#endif
