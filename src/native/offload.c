/*
 * Guest offloads: partial checksums completed, TCP/IPv4 super-frames segmented (see offload.h).
 * C99, no dependencies beyond the kernel's virtio_net.h.
 */
#include "offload.h"

#include <string.h>

#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_VLAN 0x8100
#define IPPROTO_TCP_NUM 6
#define IPPROTO_UDP_NUM 17
#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

static uint16_t rd16(const uint8_t *p)
{
  return (uint16_t)((p[0] << 8) | p[1]);
}

static void wr16(uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static uint32_t rd32(const uint8_t *p)
{
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void wr32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

uint32_t offload_csum_add(const uint8_t *p, size_t len, uint32_t sum)
{
  size_t i;
  for (i = 0; i + 1 < len; i += 2) sum += (uint32_t)((p[i] << 8) | p[i + 1]);
  if (len & 1) sum += (uint32_t)(p[len - 1] << 8);
  /* 32 768 words of 0xffff (a 64 KiB frame) still fit 32 bits, so one fold at the end is enough. */
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

int offload_complete_csum(uint8_t *f, size_t len, const struct virtio_net_hdr *h)
{
  size_t start = h->csum_start, at = (size_t)h->csum_start + h->csum_offset;
  uint16_t c;
  if (start >= len || at + 2 > len) return -1;
  /* The field holds the pseudo-header sum; summing from csum_start over it gives the full sum. */
  c = csum_fold(offload_csum_add(f + start, len - start, 0));
  /* A UDP checksum that computes to 0 is sent as 0xffff (0 means "none"). */
  if (c == 0 && h->csum_offset == 6) c = 0xffff;
  wr16(f + at, c);
  return 0;
}

/* Locate the IPv4 header: its offset, or -1 when the frame is not IPv4 (one VLAN tag allowed). */
static int ipv4_offset(const uint8_t *f, size_t len)
{
  size_t l2 = ETH_HLEN;
  uint16_t type;
  if (len < ETH_HLEN + 20) return -1;
  type = rd16(f + 12);
  if (type == ETHERTYPE_VLAN) {
    if (len < ETH_HLEN + 4 + 20) return -1;
    type = rd16(f + 16);
    l2 += 4;
  }
  return type == ETHERTYPE_IPV4 ? (int)l2 : -1;
}

int offload_tcp4_segment(const uint8_t *f, size_t len, const struct virtio_net_hdr *h, uint32_t vlan,
                         uint8_t *out, size_t slot, int max_segs, int32_t *lens)
{
  int l3 = ipv4_offset(f, len), k, nseg;
  size_t ihl, l4, thl, hdrs, payload, mss, off, tag = vlan != 0 ? 4 : 0;
  uint16_t id0;
  uint32_t seq0, pseudo;
  uint8_t flags0;

  if (l3 < 0) return -1;
  ihl = (size_t)(f[l3] & 0x0f) * 4;
  if ((f[l3] >> 4) != 4 || ihl < 20 || f[l3 + 9] != IPPROTO_TCP_NUM) return -1;
  l4 = (size_t)l3 + ihl;
  if (l4 + 20 > len) return -1;
  thl = (size_t)(f[l4 + 12] >> 4) * 4;
  hdrs = l4 + thl;
  if (thl < 20 || hdrs > len) return -1;
  mss = h->gso_size;
  payload = len - hdrs;
  if (mss == 0 || tag + hdrs + mss > slot) return -1;
  nseg = payload == 0 ? 1 : (int)((payload + mss - 1) / mss);
  if (nseg > max_segs) return -1;

  id0 = rd16(f + l3 + 4);
  seq0 = rd32(f + l4 + 4);
  flags0 = f[l4 + 13];
  /* The pseudo-header's addresses and protocol; the TCP length is added per segment. */
  pseudo = offload_csum_add(f + l3 + 12, 8, IPPROTO_TCP_NUM);

  for (k = 0, off = 0; k < nseg; k++, off += mss) {
    /* With a tag, the segment's bytes from the EtherType on sit 4 further: s + l3 is still its IPv4 header. */
    uint8_t *s = out + (size_t)k * slot + tag;
    size_t chunk = payload - off < mss ? payload - off : mss;
    size_t seglen = tag + hdrs + chunk;
    uint8_t fl = flags0;
    if (tag != 0) {
      memcpy(s - tag, f, 2 * ETH_ALEN);
      wr32(s - tag + 2 * ETH_ALEN, vlan);
      memcpy(s + 2 * ETH_ALEN, f + 2 * ETH_ALEN, hdrs - 2 * ETH_ALEN);
    } else {
      memcpy(s, f, hdrs);
    }
    memcpy(s + hdrs, f + hdrs + off, chunk);
    wr16(s + l3 + 2, (uint16_t)(ihl + thl + chunk));
    wr16(s + l3 + 4, (uint16_t)(id0 + k));
    wr16(s + l3 + 10, 0);
    wr16(s + l3 + 10, csum_fold(offload_csum_add(s + l3, ihl, 0)));
    wr32(s + l4 + 4, seq0 + (uint32_t)off);
    if (k < nseg - 1) fl &= (uint8_t)~(TCP_FIN | TCP_PSH);
    if (k > 0) fl &= (uint8_t)~TCP_CWR;
    s[l4 + 13] = fl;
    wr16(s + l4 + 16, 0);
    wr16(s + l4 + 16, csum_fold(offload_csum_add(s + l4, thl + chunk, pseudo + (uint32_t)(thl + chunk))));
    lens[k] = (int32_t)seglen;
  }
  return nseg;
}
