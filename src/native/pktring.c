/* TPACKET_V2 and TPACKET_V3 receive rings on packet sockets: see pktring.h. */
#define _GNU_SOURCE
#include "pktring.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>

#define VNET_HLEN sizeof(struct virtio_net_hdr)

/* Where the kernel puts a frame's tp_vlan_tpid: right after its tp_vlan_tci (a __u16 in V2, a __u32 in
 * V3's hv1). Read by offset, so that headers older than 3.14 (which call these bytes tp_padding) build the
 * same reader; rings are only used on 4.9 and later, whose kernels fill them. */
#define V2_TPID_OFF (offsetof(struct tpacket2_hdr, tp_vlan_tci) + 2)
#define V3_TPID_OFF (offsetof(struct tpacket3_hdr, hv1.tp_vlan_tci) + 4)
#ifndef PKT_HEADERS_WITHOUT_TPID
typedef char pring_v2_tpid_offset[offsetof(struct tpacket2_hdr, tp_vlan_tpid) == V2_TPID_OFF ? 1 : -1];
typedef char pring_v3_tpid_offset[offsetof(struct tpacket3_hdr, hv1.tp_vlan_tpid) == V3_TPID_OFF ? 1 : -1];
#endif
#define PRING_MAX 64
#define PRING_MAP_LEN ((size_t)PRING_BLOCK_SIZE * PRING_BLOCK_NR)
#define PRING3_MAP_LEN ((size_t)PRING3_BLOCK_SIZE * PRING3_BLOCK_NR)

struct pring {
  int fd;        /* -1: free entry */
  int v3;        /* TPACKET_V3 (blocks), else TPACKET_V2 (slots) */
  uint8_t *map;  /* the ring's blocks */
  size_t maplen;
  unsigned cur;  /* V2: the next slot to read; V3: the block being read */
  uint8_t *next; /* V3: the next frame in the current block, when left > 0 */
  uint32_t left; /* V3: frames of the current block not yet read */
};

static struct pring rings[PRING_MAX];
static int rings_init;
static pthread_rwlock_t rings_lock = PTHREAD_RWLOCK_INITIALIZER;

int pring_supported(void)
{
  struct utsname u;
  int major = 0, minor = 0;
  if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2) return 0;
  return major > 4 || (major == 4 && minor >= 9);
}

/* The entry of fd, or NULL. Called with the lock held. */
static struct pring *find(int fd)
{
  int k;
  for (k = 0; rings_init && k < PRING_MAX; k++)
    if (rings[k].fd == fd) return &rings[k];
  return NULL;
}

/* A zero request frees a ring the socket has (and unmapped); its size is the version's. */
static void drop_ring(int fd, int v3)
{
  struct tpacket_req3 req;
  memset(&req, 0, sizeof req);
  (void)setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, v3 ? sizeof req : sizeof(struct tpacket_req));
}

/* Ask the kernel for the ring of the version: returns 0 or an errno value. */
static int request(int fd, int v3)
{
  int ver = v3 ? TPACKET_V3 : TPACKET_V2, one = 1;
  struct tpacket_req3 req;
  memset(&req, 0, sizeof req);
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &ver, sizeof ver) < 0) return errno;
  if (v3) {
    req.tp_block_size = PRING3_BLOCK_SIZE;
    req.tp_block_nr = PRING3_BLOCK_NR;
    req.tp_frame_size = PRING_FRAME_SIZE; /* V3 packs frames; the kernel only checks this fits */
    req.tp_frame_nr = PRING3_BLOCK_SIZE / PRING_FRAME_SIZE * PRING3_BLOCK_NR;
    req.tp_retire_blk_tov = PRING3_TIMEOUT_MS;
    if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) return errno;
    return 0;
  }
  /* A frame larger than its slot is queued whole as well (TP_STATUS_COPY), not only truncated. */
  if (setsockopt(fd, SOL_PACKET, PACKET_COPY_THRESH, &one, sizeof one) < 0) return errno;
  req.tp_block_size = PRING_BLOCK_SIZE;
  req.tp_block_nr = PRING_BLOCK_NR;
  req.tp_frame_size = PRING_FRAME_SIZE;
  req.tp_frame_nr = PRING_FRAME_NR;
  if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(struct tpacket_req)) < 0) return errno;
  return 0;
}

int pring_setup(int fd, int v3)
{
  size_t len = v3 ? PRING3_MAP_LEN : PRING_MAP_LEN;
  int k, e;
  void *map;
  struct pring *slot = NULL;

  e = request(fd, v3);
  if (e != 0) return e;
  map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED, fd, 0);
  if (map == MAP_FAILED) /* MAP_LOCKED needs RLIMIT_MEMLOCK room; the ring works without it */
    map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    e = errno;
    drop_ring(fd, v3);
    return e;
  }
  pthread_rwlock_wrlock(&rings_lock);
  if (!rings_init) {
    for (k = 0; k < PRING_MAX; k++) rings[k].fd = -1;
    rings_init = 1;
  }
  for (k = 0; k < PRING_MAX && slot == NULL; k++)
    if (rings[k].fd < 0) slot = &rings[k];
  if (slot != NULL) {
    memset(slot, 0, sizeof *slot);
    slot->fd = fd;
    slot->v3 = v3;
    slot->map = map;
    slot->maplen = len;
  }
  pthread_rwlock_unlock(&rings_lock);
  if (slot == NULL) {
    munmap(map, len);
    drop_ring(fd, v3);
    return ENOSPC;
  }
  return 0;
}

/* The u16 at byte off of a ring's frame header. */
static uint16_t hdr_u16(const void *h, size_t off)
{
  uint16_t v;
  memcpy(&v, (const uint8_t *)h + off, sizeof v);
  return v;
}

/* One frame given to take(), or skipped and counted. Returns take's result (0 when skipped). */
static int one_frame(int fd, const struct sockaddr_ll *sll, uint32_t status, uint32_t vlan, uint8_t *frame,
                     uint32_t mac, uint32_t snaplen, uint32_t len, pring_take_fn take, void *ctx,
                     double *truncated, double *outgoing)
{
  if (sll->sll_pkttype == PACKET_OUTGOING) {
    (*outgoing)++; /* our own transmission: its queued copy, if any, is read and dropped */
    if (status & TP_STATUS_COPY) (void)recv(fd, NULL, 0, MSG_DONTWAIT | MSG_TRUNC);
    return 0;
  }
  if (status & TP_STATUS_COPY) return take(ctx, NULL, len, vlan); /* received whole from the socket's queue */
  if (snaplen < len || mac < VNET_HLEN) {
    (*truncated)++; /* larger than a slot or block, and no copy could be queued */
    return 0;
  }
  return take(ctx, frame + mac - VNET_HLEN, VNET_HLEN + snaplen, vlan);
}

/* V2: the slot ring r reads next. */
static struct tpacket2_hdr *next_slot(const struct pring *r)
{
  return (struct tpacket2_hdr *)(r->map + (size_t)(r->cur / PRING_FRAMES_PER_BLOCK) * PRING_BLOCK_SIZE +
                                 (size_t)(r->cur % PRING_FRAMES_PER_BLOCK) * PRING_FRAME_SIZE);
}

static int read_v2(struct pring *r, pring_take_fn take, void *ctx, int max, double *truncated, double *outgoing)
{
  int count = 0, used;
  while (count < max) {
    struct tpacket2_hdr *h = next_slot(r);
    uint32_t status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
    if ((status & TP_STATUS_USER) == 0) break;
    used = one_frame(r->fd, (const struct sockaddr_ll *)((uint8_t *)h + TPACKET_ALIGN(sizeof *h)), status,
                     pkt_vlan_of(status, h->tp_vlan_tci, hdr_u16(h, V2_TPID_OFF)), (uint8_t *)h, h->tp_mac,
                     h->tp_snaplen, h->tp_len, take, ctx, truncated, outgoing);
    if (used < 0) break; /* no room: this frame is read next time */
    count += used;
    __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    r->cur = (r->cur + 1) % PRING_FRAME_NR;
  }
  return count;
}

/* V3: give the current block back to the kernel and move to the next. */
static void release_block(struct pring *r)
{
  struct tpacket_block_desc *b = (struct tpacket_block_desc *)(r->map + (size_t)r->cur * PRING3_BLOCK_SIZE);
  __atomic_store_n(&b->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
  r->cur = (r->cur + 1) % PRING3_BLOCK_NR;
  r->next = NULL;
  r->left = 0;
}

static int read_v3(struct pring *r, pring_take_fn take, void *ctx, int max, double *truncated, double *outgoing)
{
  int count = 0, used;
  while (count < max) {
    struct tpacket3_hdr *h;
    if (r->left == 0) {
      struct tpacket_block_desc *b = (struct tpacket_block_desc *)(r->map + (size_t)r->cur * PRING3_BLOCK_SIZE);
      if ((__atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0) break;
      r->left = b->hdr.bh1.num_pkts;
      r->next = (uint8_t *)b + b->hdr.bh1.offset_to_first_pkt;
      if (r->left == 0) {
        release_block(r);
        continue;
      }
    }
    h = (struct tpacket3_hdr *)r->next;
    used = one_frame(r->fd, (const struct sockaddr_ll *)((uint8_t *)h + TPACKET_ALIGN(sizeof *h)), h->tp_status,
                     pkt_vlan_of(h->tp_status, h->hv1.tp_vlan_tci, hdr_u16(h, V3_TPID_OFF)), (uint8_t *)h,
                     h->tp_mac, h->tp_snaplen, h->tp_len, take, ctx, truncated, outgoing);
    if (used < 0) break; /* no room: this frame is read next time */
    count += used;
    r->next = (uint8_t *)h + h->tp_next_offset;
    if (--r->left == 0) release_block(r);
  }
  return count;
}

int pring_read(int fd, pring_take_fn take, void *ctx, int max, double *truncated, double *outgoing)
{
  struct pring *r;
  int count;
  pthread_rwlock_rdlock(&rings_lock);
  r = find(fd);
  count = r == NULL ? -1
          : r->v3   ? read_v3(r, take, ctx, max, truncated, outgoing)
                    : read_v2(r, take, ctx, max, truncated, outgoing);
  pthread_rwlock_unlock(&rings_lock);
  return count;
}

void pring_close(int fd)
{
  struct pring *r;
  pthread_rwlock_wrlock(&rings_lock);
  r = find(fd);
  if (r != NULL) {
    munmap(r->map, r->maplen);
    r->fd = -1;
    r->map = NULL;
  }
  pthread_rwlock_unlock(&rings_lock);
}
