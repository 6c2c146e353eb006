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

/* What the reader does with one frame: vnet points at its virtio-net header, directly followed by the
 * frame's `len` bytes (writable); vnet NULL means the frame did not fit its slot and waits whole in the
 * socket's queue (the take function receives it). Returns the slots used, or -1 to stop before this
 * frame (no room); the frame is then read again by the next call. */
typedef int (*pring_take_fn)(void *ctx, uint8_t *vnet, size_t len);

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
