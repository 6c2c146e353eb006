/*
 * A TPACKET_V2 receive ring on a packet socket: the kernel copies each frame into a shared slot in the
 * sender's softirq and marks it ready, and the reader walks the slots without a system call. Measured
 * against recvmmsg by bench:attach (BENCHMARKS.md). V2, not V3: a V3 block reaches the reader only when
 * it is full or its timer retires it (>= 1 ms), which put ~0.8 ms on every frame at low rates (ping
 * RTT 1.9 ms against 0.3 ms); a V2 slot is the reader's as soon as it is written.
 *
 * A slot holds a frame up to the 1500-byte MTU, with its virtio-net header before it
 * (PACKET_VNET_HDR, set before the ring; kernels 4.9 and later fill it in rings, older ones keep
 * recvmmsg). A larger frame (a guest's TSO super-frame) is also queued whole on the socket
 * (PACKET_COPY_THRESH): its slot says TP_STATUS_COPY and the reader receives it with recv().
 *
 * A ring is registered by fd in a small table, so that the datapath thread finds it from the fd it
 * polls and close() unmaps it. A read holds the table's read lock; pring_close() takes the write lock,
 * so the main thread cannot unmap a ring the datapath thread is walking.
 */
#ifndef VROUTER_PKTRING_H
#define VROUTER_PKTRING_H

#include <stddef.h>
#include <stdint.h>

/* Geometry: 39 slots of 1664 bytes in each of 64 blocks of 64 KiB (2496 slots, 4 MiB per ring). A slot
 * holds a 1518-byte frame with its headers. Not 2048: slots at a power-of-two stride put every slot's
 * header in the same few cache sets, and a small ring keeps the slots in cache and the TLB. */
#define PRING_FRAME_SIZE 1664u
#define PRING_BLOCK_SIZE (64u << 10)
#define PRING_BLOCK_NR 64u
#define PRING_FRAMES_PER_BLOCK (PRING_BLOCK_SIZE / PRING_FRAME_SIZE)
#define PRING_FRAME_NR (PRING_FRAMES_PER_BLOCK * PRING_BLOCK_NR)

/* What the reader does with one frame: vnet points at its virtio-net header, directly followed by the
 * frame's `len` bytes (writable); vnet NULL means the frame did not fit its slot and waits whole in the
 * socket's queue (the take function receives it). Returns the slots used, or -1 to stop before this
 * frame (no room); the frame is then read again by the next call. */
typedef int (*pring_take_fn)(void *ctx, uint8_t *vnet, size_t len);

/* Whether this kernel fills the virtio-net header in rings (4.9 and later). */
int pring_supported(void);

/* Set up and register a ring on fd (PACKET_VNET_HDR already set, not yet bound). Returns 0 or an errno
 * value; on failure the socket is left without a ring. */
int pring_setup(int fd);

/*
 * Hand the ring's frames to take() until it returns -1, the slots reach max, or the next slot is not
 * ready. Frames the kernel truncated without a queued copy and our own transmissions (PACKET_OUTGOING,
 * kernels without PACKET_IGNORE_OUTGOING) are skipped and counted in *truncated and *outgoing. Returns
 * the slots used, or -1 when fd has no ring.
 */
int pring_read(int fd, pring_take_fn take, void *ctx, int max, double *truncated, double *outgoing);

/* Unmap and forget fd's ring, if it has one (before close(fd)). */
void pring_close(int fd);

#endif
