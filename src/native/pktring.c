/* TPACKET_V2 receive rings on packet sockets: see pktring.h. */
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
#define PRING_MAX 64
#define PRING_MAP_LEN ((size_t)PRING_BLOCK_SIZE * PRING_BLOCK_NR)

struct pring {
  int fd;       /* -1: free entry */
  uint8_t *map; /* PRING_BLOCK_NR blocks of PRING_FRAMES_PER_BLOCK slots */
  unsigned cur; /* the next slot to read */
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

/* A zero request frees a ring the socket has (and unmapped). */
static void drop_ring(int fd)
{
  struct tpacket_req req;
  memset(&req, 0, sizeof req);
  (void)setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req);
}

int pring_setup(int fd)
{
  struct tpacket_req req;
  int v2 = TPACKET_V2, one = 1, k, e;
  void *map;
  struct pring *slot = NULL;

  memset(&req, 0, sizeof req);
  req.tp_block_size = PRING_BLOCK_SIZE;
  req.tp_block_nr = PRING_BLOCK_NR;
  req.tp_frame_size = PRING_FRAME_SIZE;
  req.tp_frame_nr = PRING_FRAME_NR;
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2) < 0) return errno;
  /* A frame larger than its slot is queued whole as well (TP_STATUS_COPY), not only truncated. */
  if (setsockopt(fd, SOL_PACKET, PACKET_COPY_THRESH, &one, sizeof one) < 0) return errno;
  if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) return errno;
  map = mmap(NULL, PRING_MAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED, fd, 0);
  if (map == MAP_FAILED) /* MAP_LOCKED needs RLIMIT_MEMLOCK room; the ring works without it */
    map = mmap(NULL, PRING_MAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    e = errno;
    drop_ring(fd);
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
    slot->fd = fd;
    slot->map = map;
    slot->cur = 0;
  }
  pthread_rwlock_unlock(&rings_lock);
  if (slot == NULL) {
    munmap(map, PRING_MAP_LEN);
    drop_ring(fd);
    return ENOSPC;
  }
  return 0;
}

int pring_read(int fd, pring_take_fn take, void *ctx, int max, double *truncated, double *outgoing)
{
  struct pring *r;
  int count = 0;

  pthread_rwlock_rdlock(&rings_lock);
  r = find(fd);
  if (r == NULL) {
    pthread_rwlock_unlock(&rings_lock);
    return -1;
  }
  while (count < max) {
    struct tpacket2_hdr *h = (struct tpacket2_hdr *)(r->map + (size_t)(r->cur / PRING_FRAMES_PER_BLOCK) * PRING_BLOCK_SIZE +
                                                     (size_t)(r->cur % PRING_FRAMES_PER_BLOCK) * PRING_FRAME_SIZE);
    uint32_t status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
    const struct sockaddr_ll *sll;
    int used = 0;
    if ((status & TP_STATUS_USER) == 0) break;
    sll = (const struct sockaddr_ll *)((uint8_t *)h + TPACKET_ALIGN(sizeof(struct tpacket2_hdr)));
    if (sll->sll_pkttype == PACKET_OUTGOING) {
      (*outgoing)++; /* our own transmission: its queued copy, if any, is read and dropped */
      if (status & TP_STATUS_COPY) (void)recv(fd, NULL, 0, MSG_DONTWAIT | MSG_TRUNC);
    } else if (status & TP_STATUS_COPY) {
      used = take(ctx, NULL, h->tp_len); /* received whole from the socket's queue */
    } else if (h->tp_snaplen < h->tp_len || h->tp_mac < VNET_HLEN) {
      (*truncated)++; /* larger than a slot, and no copy could be queued */
    } else {
      used = take(ctx, (uint8_t *)h + h->tp_mac - VNET_HLEN, VNET_HLEN + h->tp_snaplen);
    }
    if (used < 0) break; /* no room: this frame is read next time */
    count += used;
    __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    r->cur = (r->cur + 1) % PRING_FRAME_NR;
  }
  pthread_rwlock_unlock(&rings_lock);
  return count;
}

void pring_close(int fd)
{
  struct pring *r;
  pthread_rwlock_wrlock(&rings_lock);
  r = find(fd);
  if (r != NULL) {
    munmap(r->map, PRING_MAP_LEN);
    r->fd = -1;
    r->map = NULL;
  }
  pthread_rwlock_unlock(&rings_lock);
}
