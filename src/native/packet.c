/*
 * packet: AF_PACKET sockets for a vif on an interface the emulator does not own (a guest's tap, a veth):
 * open and bind, receive through a ring (pktring.c) or recvmmsg(), complete partial checksums and cut
 * TSO frames (offload.c), put back the 802.1Q tag the kernel took out of a received frame (pktring.h),
 * send with sendmmsg(). The only state is pkt_sock_drops' tick counter.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#include "napi-util.h"
#include "offload.h"
#include "packet.h"
#include "pktring.h"

#ifndef PACKET_VNET_HDR
#define PACKET_VNET_HDR 15
#endif
#ifndef PACKET_QDISC_BYPASS
#define PACKET_QDISC_BYPASS 20
#endif
#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

/* Where the kernel puts tpacket_auxdata's tp_vlan_tpid: after tp_vlan_tci (tp_padding in headers
 * before 3.14, which the kernels of that time leave 0). */
#define AUX_TPID_OFF (offsetof(struct tpacket_auxdata, tp_vlan_tci) + 2)
#ifndef PKT_HEADERS_WITHOUT_TPID
typedef char pkt_aux_tpid_offset[offsetof(struct tpacket_auxdata, tp_vlan_tpid) == AUX_TPID_OFF ? 1 : -1];
#endif
/* Room for the PACKET_AUXDATA control message of one received frame. */
#define PKT_CTL_LEN CMSG_SPACE(sizeof(struct tpacket_auxdata))

/* ---------------------------------------------------------------------------------------------- */
/* Packet sockets: a vif on an interface the emulator does not own (a guest's tap, a veth) */

#define VNET_HLEN ((int)sizeof(struct virtio_net_hdr))
/* One received frame at most: a 64 KiB GSO super-frame with its Ethernet and VLAN headers. */
#define PKT_STAGE (VNET_HLEN + 65536 + 32)
#define PKT_VLEN 16
/* Room kept for the segments of one TSO frame (64 KiB at an MSS of 1448 is 46 segments). */
#define PKT_SEG_ROOM 46

/* Indices of the stats array of packetReadBatch. */
enum { PS_CSUM = 0, PS_GSO_FRAMES, PS_GSO_SEGS, PS_DROPPED, PS_OUTGOING, PS_SOCK_DROPS, PS_COUNT };

/* packetOpen(ifname, want): { fd, ifindex, io } -- AF_PACKET/SOCK_RAW bound to ifname, non-blocking;
 * io is "ring" (a TPACKET_V2 receive ring) or "ring-v3" (TPACKET_V3) when wanted and the kernel is 4.9+,
 * else "recvmmsg" (wanted, or an older kernel, or a ring that could not be set up). */
napi_value js_packet_open(napi_env env, napi_callback_info info)
{
  napi_value argv[2], result, v;
  char name[256], want[16];
  size_t nlen, wlen;
  int fd, rc, e, one = 1, rcvbuf = 4 << 20, ring;
  unsigned int ifindex;
  struct sockaddr_ll sll;

  if (get_args(env, info, 2, argv, "packetOpen")) return NULL;
  rc = arg_string(env, argv[1], "want", want, sizeof want, &wlen);
  if (rc < 0) return NULL;
  if (rc > 0 || (strcmp(want, "ring") != 0 && strcmp(want, "ring-v3") != 0 && strcmp(want, "recvmmsg") != 0)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "want must be \"ring\", \"ring-v3\" or \"recvmmsg\"");
    return NULL;
  }
  rc = arg_string(env, argv[0], "ifname", name, sizeof name, &nlen);
  if (rc < 0) return NULL;
  if (rc > 0 || nlen == 0 || nlen >= IFNAMSIZ) {
    throw_errno_note(env, EINVAL, "if_nametoindex", name, "interface names have 1 to 15 bytes");
    return NULL;
  }
  ifindex = if_nametoindex(name);
  if (ifindex == 0) {
    throw_errno(env, errno, "if_nametoindex", name);
    return NULL;
  }
  /* Protocol 0 receives nothing until bind(), so no frame of another interface slips in. */
  fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket", "AF_PACKET");
    return NULL;
  }
  /* The virtio-net header tells where a partial checksum starts and the MSS of a TSO frame. */
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) {
    e = errno;
    close(fd);
    throw_errno(env, e, "setsockopt", "PACKET_VNET_HDR");
    return NULL;
  }
  /* The tag the kernel takes out of a received frame comes in a control message of recvmsg(). */
  if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) < 0) {
    e = errno;
    close(fd);
    throw_errno(env, e, "setsockopt", "PACKET_AUXDATA");
    return NULL;
  }
  /* Optional: kernels before 4.20 lack it, and packetReadBatch drops PACKET_OUTGOING frames itself;
   * the qdisc bypass (3.14+) only saves time; a bigger receive buffer absorbs bursts (root only). */
  (void)setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
  (void)setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
  ring = strcmp(want, "recvmmsg") != 0 && pring_supported() && pring_setup(fd, strcmp(want, "ring-v3") == 0) == 0;
  /* With a ring, the buffer holds the frames too large for a slot (TP_STATUS_COPY). */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = (int)ifindex;
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
    e = errno;
    pring_close(fd);
    close(fd);
    throw_errno(env, e, "bind", name);
    return NULL;
  }
  if (napi_create_object(env, &result) != napi_ok || napi_create_int32(env, fd, &v) != napi_ok ||
      napi_set_named_property(env, result, "fd", v) != napi_ok ||
      napi_create_uint32(env, ifindex, &v) != napi_ok ||
      napi_set_named_property(env, result, "ifindex", v) != napi_ok ||
      napi_create_string_utf8(env, ring ? want : "recvmmsg", NAPI_AUTO_LENGTH, &v) != napi_ok ||
      napi_set_named_property(env, result, "io", v) != napi_ok) {
    pring_close(fd);
    close(fd);
    napi_failed(env, "building the packetOpen result");
    return NULL;
  }
  return result;
}

/* The tag of a frame received by recvmsg(): from its PACKET_AUXDATA message (pkt_vlan_of), 0 for none. */
static uint32_t pkt_aux_vlan(struct msghdr *m)
{
  struct cmsghdr *c;
  for (c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
    if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA &&
        c->cmsg_len >= CMSG_LEN(sizeof(struct tpacket_auxdata))) {
      const uint8_t *d = (const uint8_t *)CMSG_DATA(c);
      struct tpacket_auxdata aux;
      uint16_t tpid;
      memcpy(&aux, d, sizeof aux);
      memcpy(&tpid, d + AUX_TPID_OFF, sizeof tpid);
      return pkt_vlan_of(aux.tp_status, aux.tp_vlan_tci, tpid);
    }
  }
  return 0;
}

/* Copy the frame f[0, flen) to out with the tag vlan (TPID << 16 | TCI, nonzero) after its MAC addresses. */
static void pkt_copy_tagged(uint8_t *out, const uint8_t *f, size_t flen, uint32_t vlan)
{
  memcpy(out, f, 2 * ETH_ALEN);
  out[12] = (uint8_t)(vlan >> 24);
  out[13] = (uint8_t)(vlan >> 16);
  out[14] = (uint8_t)(vlan >> 8);
  out[15] = (uint8_t)vlan;
  memcpy(out + 2 * ETH_ALEN + PKT_VLAN_HLEN, f + 2 * ETH_ALEN, flen - 2 * ETH_ALEN);
}

/* Copy or segment one received frame into the output slots, with the tag vlan the kernel took out of it
 * put back (0: none); returns the slots used. The virtio-net header's offsets are those of the frame as
 * received, so checksums are completed and TSO frames cut first, and the tag goes in as the frame is
 * copied to its slot (each segment gets it). */
static int pkt_take(uint8_t *stage, size_t rlen, uint32_t vlan, uint8_t *out, size_t slot, int room, int32_t *lens,
                    double *stats)
{
  struct virtio_net_hdr h;
  uint8_t *f = stage + VNET_HLEN;
  size_t flen, tag = vlan != 0 ? PKT_VLAN_HLEN : 0;
  int n;
  if (rlen <= (size_t)VNET_HLEN || (tag != 0 && rlen < (size_t)VNET_HLEN + 2 * ETH_ALEN)) {
    stats[PS_DROPPED]++;
    return 0;
  }
  memcpy(&h, stage, sizeof h);
  flen = rlen - (size_t)VNET_HLEN;
  if ((h.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) != VIRTIO_NET_HDR_GSO_NONE) {
    /* Only TCP/IPv4 is cut here; the segments get full checksums, so NEEDS_CSUM is moot. */
    n = (h.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_TCPV4
            ? offload_tcp4_segment(f, flen, &h, vlan, out, slot, room, lens)
            : -1;
    if (n < 0) {
      stats[PS_DROPPED]++;
      return 0;
    }
    stats[PS_GSO_FRAMES]++;
    stats[PS_GSO_SEGS] += n;
    return n;
  }
  if (flen + tag > slot || room < 1) {
    stats[PS_DROPPED]++;
    return 0;
  }
  if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
    if (offload_complete_csum(f, flen, &h) < 0) {
      stats[PS_DROPPED]++;
      return 0;
    }
    stats[PS_CSUM]++;
  }
  if (tag != 0)
    pkt_copy_tagged(out, f, flen, vlan);
  else
    memcpy(out, f, flen);
  lens[0] = (int32_t)(flen + tag);
  return 1;
}

/* Where pkt_ring_take puts the frames of a ring. */
struct pkt_out {
  int fd;
  uint8_t *stage; /* a frame too large for its slot is received here */
  uint8_t *base;
  size_t slot;
  int max, count;
  int32_t *lens;
  double *stats;
};

/* pring_take_fn: one frame of a ring into the next slots; -1 (kept for the next call) without room. A
 * frame that waits whole in the socket's queue (vnet NULL: larger than a ring slot, so most likely a
 * TSO frame) is received into the stage, once there is room for its segments, with the tag of the
 * frame actually received (its PACKET_AUXDATA) rather than the slot's. */
static int pkt_ring_take(void *ctx, uint8_t *vnet, size_t len, uint32_t vlan)
{
  struct pkt_out *o = (struct pkt_out *)ctx;
  int room = o->max - o->count, n;
  ssize_t got;
  if (vnet == NULL) {
    struct msghdr m;
    struct iovec iov;
    union {
      struct cmsghdr align;
      char buf[PKT_CTL_LEN];
    } ctl;
    if (room < PKT_SEG_ROOM && o->count > 0) return -1;
    iov.iov_base = o->stage;
    iov.iov_len = PKT_STAGE;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.buf;
    m.msg_controllen = sizeof ctl.buf;
    got = recvmsg(o->fd, &m, MSG_DONTWAIT);
    if (got < 0) {
      o->stats[PS_DROPPED]++; /* announced by the ring, gone from the queue */
      return 0;
    }
    vnet = o->stage;
    len = (size_t)got;
    vlan = pkt_aux_vlan(&m);
  } else {
    const struct virtio_net_hdr *h = (const struct virtio_net_hdr *)vnet;
    if (room < 1 || ((h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) != VIRTIO_NET_HDR_GSO_NONE && room < PKT_SEG_ROOM))
      return -1;
  }
  n = pkt_take(vnet, len, vlan, o->base + (size_t)o->count * o->slot, o->slot, room, o->lens + o->count, o->stats);
  o->count += n;
  return n;
}

/* Frames the kernel dropped on the socket since the last look (a full ring or receive buffer): the
 * counters are cleared by reading them. Called when a read finds the socket empty, but it looks only
 * every 64th time: reading the counters takes the socket's queue lock, which the sender takes for
 * every frame, and at a few hundred thousand frames per second the reads are that frequent. Drops come
 * with bursts, which make many empty reads, so they are counted soon after. */
static void pkt_sock_drops(int fd, double *stats)
{
  static unsigned tick;
  struct tpacket_stats_v3 st;
  socklen_t len = sizeof st;
  if ((__atomic_add_fetch(&tick, 1, __ATOMIC_RELAXED) & 63) != 0) return;
  memset(&st, 0, sizeof st);
  if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) stats[PS_SOCK_DROPS] += st.tp_drops;
}

/* packetReadBatch(fd, buf, slotSize, maxFrames, lens, stage: Uint8Array, stats: Float64Array): number
 * Takes frames from the socket's ring, or by recvmmsg() into `stage` (at least 16 * 65 578 bytes), then
 * completes partial checksums and cuts TSO frames into buf's slots, each frame with the 802.1Q tag the
 * kernel took out of it put back (4 bytes more in its slot). Frames it cannot take are counted in
 * stats[3], frames the kernel dropped on the socket in stats[5]. Keeps 46 slots free for a TSO frame's
 * segments. */
napi_value js_packet_read_batch(napi_env env, napi_callback_info info)
{
  napi_value argv[7];
  int fd;
  int64_t slot, max;
  void *bufp, *lensp, *stagep, *statsp;
  size_t buflen, lenslen, stagelen, statslen;
  uint8_t *base, *stage;
  int32_t *lens;
  double *stats;
  int count = 0, k;
  struct mmsghdr msgs[PKT_VLEN];
  struct iovec iov[PKT_VLEN];
  struct sockaddr_ll from[PKT_VLEN];
  union {
    struct cmsghdr align;
    char buf[PKT_CTL_LEN];
  } ctl[PKT_VLEN];
  char detail[32];

  if (get_args(env, info, 7, argv, "packetReadBatch")) return NULL;
  if (arg_fd(env, argv[0], &fd) ||
      arg_typed(env, argv[1], napi_uint8_array, "buf", "Uint8Array", &bufp, &buflen) ||
      arg_int(env, argv[2], "slotSize", 1, INT32_MAX, &slot) ||
      arg_int(env, argv[3], "maxFrames", 0, INT32_MAX, &max) ||
      arg_typed(env, argv[4], napi_int32_array, "lens", "Int32Array", &lensp, &lenslen) ||
      arg_typed(env, argv[5], napi_uint8_array, "stage", "Uint8Array", &stagep, &stagelen) ||
      arg_typed(env, argv[6], napi_float64_array, "stats", "Float64Array", &statsp, &statslen))
    return NULL;
  if ((uint64_t)max * (uint64_t)slot > (uint64_t)buflen || (uint64_t)lenslen < (uint64_t)max) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "buf needs maxFrames * slotSize bytes and lens maxFrames elements");
    return NULL;
  }
  if (stagelen < (size_t)PKT_VLEN * PKT_STAGE || statslen < PS_COUNT) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "stage needs 16 * 65578 bytes and stats 6 elements");
    return NULL;
  }
  base = (uint8_t *)bufp;
  lens = (int32_t *)lensp;
  stage = (uint8_t *)stagep;
  stats = (double *)statsp;

  {
    struct pkt_out o;
    o.fd = fd;
    o.stage = stage;
    o.base = base;
    o.slot = (size_t)slot;
    o.max = (int)max;
    o.count = 0;
    o.lens = lens;
    o.stats = stats;
    if (pring_read(fd, pkt_ring_take, &o, (int)max, &stats[PS_DROPPED], &stats[PS_OUTGOING]) >= 0) {
      if (o.count < max) pkt_sock_drops(fd, stats); /* the ring ran dry: a good time to look */
      return make_int(env, o.count);
    }
  }
  while (max - count >= PKT_SEG_ROOM || (count == 0 && max > 0)) {
    int room = (int)max - count;
    int vlen = room / PKT_SEG_ROOM;
    int got;
    if (vlen < 1) vlen = 1;
    if (vlen > PKT_VLEN) vlen = PKT_VLEN;
    memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)vlen);
    for (k = 0; k < vlen; k++) {
      iov[k].iov_base = stage + (size_t)k * PKT_STAGE;
      iov[k].iov_len = PKT_STAGE;
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
      msgs[k].msg_hdr.msg_name = &from[k];
      msgs[k].msg_hdr.msg_namelen = sizeof from[k];
      msgs[k].msg_hdr.msg_control = ctl[k].buf;
      msgs[k].msg_hdr.msg_controllen = sizeof ctl[k].buf;
    }
    got = recvmmsg(fd, msgs, (unsigned)vlen, MSG_DONTWAIT, NULL);
    if (got < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (is_eagain(e)) {
        pkt_sock_drops(fd, stats);
        break;
      }
      if (count == 0) {
        snprintf(detail, sizeof detail, "fd %d", fd);
        throw_errno(env, e, "recvmmsg", detail);
        return NULL;
      }
      break; /* the next call reports the error */
    }
    for (k = 0; k < got; k++) {
      if (from[k].sll_pkttype == PACKET_OUTGOING) {
        stats[PS_OUTGOING]++; /* our own transmissions, on kernels without PACKET_IGNORE_OUTGOING */
        continue;
      }
      count += pkt_take(stage + (size_t)k * PKT_STAGE, msgs[k].msg_len, pkt_aux_vlan(&msgs[k].msg_hdr),
                        base + (size_t)count * (size_t)slot, (size_t)slot, (int)max - count, lens + count, stats);
    }
    if (got < vlen) { /* the queue is empty */
      pkt_sock_drops(fd, stats);
      break;
    }
  }
  return make_int(env, count);
}

/* packetWriteBatch(fd, buf, offs, lens, n): number -- sendmmsg() with a zero virtio-net header each */
napi_value js_packet_write_batch(napi_env env, napi_callback_info info)
{
  napi_value argv[5];
  int fd;
  int64_t n, k, done = 0;
  void *bufp, *offsp, *lensp;
  size_t buflen, offslen, lenslen;
  uint8_t *base;
  const int32_t *offs, *lens;
  static const struct virtio_net_hdr zero_hdr; /* read-only: shared by threads safely */
  struct mmsghdr msgs[PKT_VLEN];
  struct iovec iov[PKT_VLEN][2];
  char detail[32];

  if (get_args(env, info, 5, argv, "packetWriteBatch")) return NULL;
  if (arg_fd(env, argv[0], &fd) ||
      arg_typed(env, argv[1], napi_uint8_array, "buf", "Uint8Array", &bufp, &buflen) ||
      arg_typed(env, argv[2], napi_int32_array, "offs", "Int32Array", &offsp, &offslen) ||
      arg_typed(env, argv[3], napi_int32_array, "lens", "Int32Array", &lensp, &lenslen) ||
      arg_int(env, argv[4], "n", 0, INT32_MAX, &n))
    return NULL;
  if ((uint64_t)offslen < (uint64_t)n || (uint64_t)lenslen < (uint64_t)n) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "offs and lens need at least n elements");
    return NULL;
  }
  base = (uint8_t *)bufp;
  offs = (const int32_t *)offsp;
  lens = (const int32_t *)lensp;
  for (k = 0; k < n; k++)
    if (frame_in_bounds(env, k, offs[k], lens[k], buflen)) return NULL;

  while (done < n) {
    int vlen = n - done > PKT_VLEN ? PKT_VLEN : (int)(n - done), sent, j;
    memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)vlen);
    for (j = 0; j < vlen; j++) {
      iov[j][0].iov_base = (void *)&zero_hdr;
      iov[j][0].iov_len = sizeof zero_hdr;
      iov[j][1].iov_base = base + offs[done + j];
      iov[j][1].iov_len = (size_t)lens[done + j];
      msgs[j].msg_hdr.msg_iov = iov[j];
      msgs[j].msg_hdr.msg_iovlen = 2;
    }
    sent = sendmmsg(fd, msgs, (unsigned)vlen, MSG_DONTWAIT);
    if (sent < 0) {
      int e = errno;
      if (e == EINTR) continue;
      /* EAGAIN, or ENOBUFS from a full device queue: the caller drops the rest. */
      if (is_eagain(e) || e == ENOBUFS) break;
      if (done == 0) {
        snprintf(detail, sizeof detail, "fd %d", fd);
        throw_errno(env, e, "sendmmsg", detail);
        return NULL;
      }
      break;
    }
    done += sent;
    if (sent < vlen) break;
  }
  return make_int(env, done);
}

/* sockError(fd): string -- the socket's pending error (SO_ERROR, which clears it) by errno name, or '' */
napi_value js_sock_error(napi_env env, napi_callback_info info)
{
  napi_value argv[1], v;
  int fd, err = 0;
  socklen_t len = sizeof err;
  char code[32];
  if (get_args(env, info, 1, argv, "sockError") || arg_fd(env, argv[0], &fd)) return NULL;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  code[0] = '\0';
  if (err != 0) errno_code(err, code, sizeof code);
  NAPI_CALL(env, napi_create_string_utf8(env, code, strlen(code), &v));
  return v;
}
