/*
 * Guest offloads on frames read from a packet socket with PACKET_VNET_HDR: what a VM NIC hands the host
 * with checksum offload (a partial TCP/UDP checksum: the pseudo-header sum, to be completed from
 * csum_start) and with TSO (one TCP super-frame up to 64 KiB, to be cut into gso_size segments). The
 * vRouter module completes and segments such packets itself; the emulator does it here, before the
 * flow engine sees the frame, so flows, NAT and the receiver all see ordinary frames.
 */
#ifndef VROUTER_OFFLOAD_H
#define VROUTER_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <linux/virtio_net.h>

/* Ones'-complement sum of p[0, len) added to sum (not folded). */
uint32_t offload_csum_add(const uint8_t *p, size_t len, uint32_t sum);

/*
 * Complete the partial checksum that h describes (VIRTIO_NET_HDR_F_NEEDS_CSUM) in frame f[0, len).
 * Returns 0, or -1 when csum_start/csum_offset lie outside the frame (the frame is left as it was).
 */
int offload_complete_csum(uint8_t *f, size_t len, const struct virtio_net_hdr *h);

/*
 * Cut a TCP/IPv4 GSO super-frame f[0, len) (Ethernet, optionally one 802.1Q tag) into segments of at most
 * h->gso_size payload bytes, written to out + k*slot with their lengths in lens[k], for k < max_segs:
 * headers copied, IPv4 total length, id (+k) and header checksum, TCP sequence number, flags (FIN and
 * PSH only on the last segment, CWR only on the first) and full TCP checksum set for each. A nonzero
 * vlan (TPID << 16 | TCI: the tag the kernel took out of the received frame) is inserted as a 4-byte
 * 802.1Q header after the MAC addresses of every segment; f itself and h's offsets are without it.
 * Returns the number of segments, or -1 when the frame is not TCP/IPv4, its headers are truncated,
 * gso_size is 0, a segment (with its tag) would not fit a slot, or more than max_segs segments would be
 * needed.
 */
int offload_tcp4_segment(const uint8_t *f, size_t len, const struct virtio_net_hdr *h, uint32_t vlan,
                         uint8_t *out, size_t slot, int max_segs, int32_t *lens);

#endif
