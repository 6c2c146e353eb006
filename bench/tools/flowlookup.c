/*
 * flowlookup: the flow table's lookups in C, over the very bytes the emulator's table holds
 * (bench/flowtable.ts writes them out), as the C baseline of bench:flowtable.
 *
 *   flowlookup TABLE ENTRIES TOTAL KEYS N ROUNDS BURST
 *
 * TABLE: TOTAL entries of 128 bytes (the layout of src/dp/flow-table.ts: hentry flags at word 0, key words
 *        at 3..6, proto and key length at byte 28, flags at bytes 38-39, the bucket's four tags at bytes
 *        72-87 and its overflow chain at 88 of its first entry, an overflow entry's next at byte 8).
 * KEYS:  N keys of 5 little-endian int32 words (k0..k3 as the packet path has them, then the protocol).
 *
 * Each lookup is the emulator's flowFindHashed: jhash of the 17-byte key (lookup3, initval 0), bucket =
 * (hash mod ENTRIES, a mask for a power of two) with the low two bits cleared, the four slots whose tag (hash | 1) matches compared
 * key first, then the bucket's overflow chain. Two ways, ROUNDS times each, alternating:
 *   plain:   one key after the other;
 *   batched: per BURST keys, hash them all, then load each bucket's tag word (plain loads, as
 *            JavaScript can do: no prefetch instruction), then look them up.
 * Prints one JSON line: the median lookups/s of each way and the hits (which must equal the JS count).
 * C99, written for this project from the layout it reads.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FE_WORDS 32         /* 128-byte entries, in 32-bit words */
#define W_K0 3
#define W_PROTO 7           /* byte 28: proto, byte 29: key length */
#define W_FLAGS 9           /* bytes 38-39: fe_flags (high half of word 9) */
#define W_HNEXT 2
#define W_TAGS 18           /* byte 72 */
#define W_CHAIN 22          /* byte 88 */
#define HENTRY_VALID 0x1
#define FLAG_ACTIVE 0x0001
#define FLAG_DELETE_MARKED 0x0040
#define KEY_LEN 17
#define MAX_BURST 256

static uint32_t rol32(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

static uint32_t jhash_key(uint32_t k0, uint32_t k1, uint32_t k2, uint32_t k3, uint32_t proto)
{
  uint32_t a = 0xdeadbeefu + 17, b = a + k1, c = a + k2;
  a += k0;
  a -= c; a ^= rol32(c, 4); c += b;
  b -= a; b ^= rol32(a, 6); a += c;
  c -= b; c ^= rol32(b, 8); b += a;
  a -= c; a ^= rol32(c, 16); c += b;
  b -= a; b ^= rol32(a, 19); a += c;
  c -= b; c ^= rol32(b, 4); b += a;
  b += proto;
  a += k3;
  c ^= b; c -= rol32(b, 14);
  a ^= c; a -= rol32(c, 11);
  b ^= a; b -= rol32(a, 25);
  c ^= b; c -= rol32(b, 16);
  a ^= c; a -= rol32(c, 4);
  b ^= a; b -= rol32(a, 14);
  c ^= b; c -= rol32(b, 24);
  return c;
}

static int key_matches(const int32_t *t, int64_t idx, const int32_t *k)
{
  const int32_t *e = t + idx * FE_WORDS;
  return e[4] == k[1] && e[5] == k[2] && e[3] == k[0] && e[6] == k[3] &&
         (e[W_PROTO] & 0xffff) == (k[4] | (KEY_LEN << 8)) &&
         ((((uint32_t)e[W_FLAGS] >> 16) & (FLAG_ACTIVE | FLAG_DELETE_MARKED)) == FLAG_ACTIVE);
}

/* The bucket's first slot: hash mod ENTRIES, a mask when ENTRIES is a power of two (as the JS does). */
static uint32_t bucket_start(uint32_t entries, uint32_t h)
{
  return ((entries & (entries - 1)) == 0 ? h & (entries - 1) : h % entries) & ~3u;
}

static int64_t find_hashed(const int32_t *t, uint32_t entries, uint32_t h, const int32_t *k)
{
  int64_t start = (int64_t)bucket_start(entries, h);
  const int32_t *b = t + start * FE_WORDS;
  int32_t tag = (int32_t)(h | 1);
  int32_t o;
  int s;

  for (s = 0; s < 4; s++)
    if (b[W_TAGS + s] == tag && key_matches(t, start + s, k))
      return start + s;
  for (o = b[W_CHAIN]; o >= 0; o = t[(int64_t)o * FE_WORDS + W_HNEXT])
    if ((t[(int64_t)o * FE_WORDS] & HENTRY_VALID) && key_matches(t, o, k))
      return o;
  return -1;
}

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *read_file(const char *name, size_t len)
{
  FILE *f = fopen(name, "rb");
  void *p = calloc(1, len);
  if (f == NULL || p == NULL || fread(p, 1, len, f) != len) {
    fprintf(stderr, "flowlookup: cannot read %zu bytes of %s\n", len, name);
    exit(2);
  }
  fclose(f);
  return p;
}

static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
  uint32_t entries, total, h[MAX_BURST];
  long n, rounds, burst, i, j, r, hits = 0;
  const int32_t *t, *keys;
  double plain[64], batched[64], t0;
  volatile int32_t sink = 0;

  if (argc != 8) {
    fprintf(stderr, "usage: flowlookup TABLE ENTRIES TOTAL KEYS N ROUNDS BURST\n");
    return 2;
  }
  entries = (uint32_t)strtoul(argv[2], NULL, 10);
  total = (uint32_t)strtoul(argv[3], NULL, 10);
  n = strtol(argv[5], NULL, 10);
  rounds = strtol(argv[6], NULL, 10);
  burst = strtol(argv[7], NULL, 10);
  if (entries == 0 || total < entries || n <= 0 || rounds < 1 || rounds > 64 || burst < 1 || burst > MAX_BURST) {
    fprintf(stderr, "flowlookup: bad arguments\n");
    return 2;
  }
  t = read_file(argv[1], (size_t)total * FE_WORDS * 4);
  keys = read_file(argv[4], (size_t)n * 5 * 4);

  for (r = 0; r < rounds; r++) {
    long hp = 0, hb = 0;
    t0 = now();
    for (i = 0; i < n; i++) {
      const int32_t *k = keys + i * 5;
      if (find_hashed(t, entries, jhash_key((uint32_t)k[0], (uint32_t)k[1], (uint32_t)k[2], (uint32_t)k[3], (uint32_t)k[4]), k) >= 0)
        hp++;
    }
    plain[r] = (double)n / (now() - t0);
    t0 = now();
    for (i = 0; i < n; i += burst) {
      long e = i + burst < n ? i + burst : n;
      int32_t touch = 0;
      for (j = i; j < e; j++) {
        const int32_t *k = keys + j * 5;
        h[j - i] = jhash_key((uint32_t)k[0], (uint32_t)k[1], (uint32_t)k[2], (uint32_t)k[3], (uint32_t)k[4]);
      }
      for (j = 0; j < e - i; j++)
        touch |= t[(int64_t)bucket_start(entries, h[j]) * FE_WORDS + W_TAGS];
      sink = sink + touch;
      for (j = i; j < e; j++)
        if (find_hashed(t, entries, h[j - i], keys + j * 5) >= 0)
          hb++;
    }
    batched[r] = (double)n / (now() - t0);
    if (hp != hb) {
      fprintf(stderr, "flowlookup: %ld hits one way, %ld the other\n", hp, hb);
      return 1;
    }
    hits = hp;
  }
  qsort(plain, (size_t)rounds, sizeof plain[0], cmp);
  qsort(batched, (size_t)rounds, sizeof batched[0], cmp);
  printf("{\"plain\":%.0f,\"batched\":%.0f,\"hits\":%ld}\n", plain[rounds / 2], batched[rounds / 2], hits);
  return 0;
}
