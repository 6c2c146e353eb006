/*
 * vrouter_native: the emulator's own small Node-API addon for TAP devices and the few syscalls the
 * datapath needs that Node does not offer (TUNSETIFF, batched read/write on a non-blocking fd, poll,
 * eventfd, per-thread CPU affinity and network namespace).
 *
 * C99 + Node-API only (no V8, no C++), NAPI_VERSION 6 so the same binary loads on Node 16 and later.
 * Builds warning-free with -std=c99 -Wall -Wextra on gcc 4.8 .. 12 (glibc >= 2.17).
 *
 * All functions are synchronous and may block only in poll(). The module keeps no mutable global
 * state, so it can be loaded in several worker threads at once (Node-API addons are context-aware).
 *
 * Syscall failures throw an Error with `code` (errno name, e.g. 'EAGAIN'; 'E<n>' when unknown),
 * `errno` (the positive errno number) and `syscall`; the message reads like
 * "TUNSETIFF tap0: Device or resource busy". Bad arguments throw a TypeError (a RangeError when a
 * frame lies outside its buffer).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifndef NAPI_VERSION
#define NAPI_VERSION 6
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#include "offload.h"
#include "pktring.h"

#include <node_api.h>

#ifndef IFF_MULTI_QUEUE
#define IFF_MULTI_QUEUE 0x0100
#endif
#ifndef IFF_VNET_HDR
#define IFF_VNET_HDR 0x4000
#endif
#ifndef CLONE_NEWNET
#define CLONE_NEWNET 0x40000000
#endif

#ifndef PACKET_VNET_HDR
#define PACKET_VNET_HDR 15
#endif
#ifndef PACKET_QDISC_BYPASS
#define PACKET_QDISC_BYPASS 20
#endif
#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define TUN_PATH "/dev/net/tun"
#define POLL_STACK_FDS 64

/* ---------------------------------------------------------------------------------------------- */
/* Errors */

struct errno_name {
  int num;
  const char *name;
};

static const struct errno_name errno_names[] = {
  { EPERM, "EPERM" },           { ENOENT, "ENOENT" },         { ESRCH, "ESRCH" },
  { EINTR, "EINTR" },           { EIO, "EIO" },               { ENXIO, "ENXIO" },
  { E2BIG, "E2BIG" },           { EBADF, "EBADF" },           { EAGAIN, "EAGAIN" },
  { ENOMEM, "ENOMEM" },         { EACCES, "EACCES" },         { EFAULT, "EFAULT" },
  { EBUSY, "EBUSY" },           { EEXIST, "EEXIST" },         { ENODEV, "ENODEV" },
  { ENOTDIR, "ENOTDIR" },       { EISDIR, "EISDIR" },         { EINVAL, "EINVAL" },
  { ENFILE, "ENFILE" },         { EMFILE, "EMFILE" },         { ENOTTY, "ENOTTY" },
  { ENOSPC, "ENOSPC" },         { EPIPE, "EPIPE" },           { ERANGE, "ERANGE" },
  { ENAMETOOLONG, "ENAMETOOLONG" }, { ENOSYS, "ENOSYS" },     { EBADFD, "EBADFD" },
  { EMSGSIZE, "EMSGSIZE" },     { ENOPROTOOPT, "ENOPROTOOPT" }, { EOPNOTSUPP, "EOPNOTSUPP" },
  { EAFNOSUPPORT, "EAFNOSUPPORT" }, { EADDRINUSE, "EADDRINUSE" },
  { EADDRNOTAVAIL, "EADDRNOTAVAIL" }, { ENETDOWN, "ENETDOWN" }, { ENETUNREACH, "ENETUNREACH" },
  { ENOBUFS, "ENOBUFS" },       { ENOTCONN, "ENOTCONN" },     { ETIMEDOUT, "ETIMEDOUT" },
  { ECONNREFUSED, "ECONNREFUSED" }, { EHOSTUNREACH, "EHOSTUNREACH" },
  { EDESTADDRREQ, "EDESTADDRREQ" }, { ENOTSOCK, "ENOTSOCK" }, { ENONET, "ENONET" },
};

static void errno_code(int e, char *buf, size_t size)
{
  size_t i;
  for (i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++) {
    if (errno_names[i].num == e) {
      snprintf(buf, size, "%s", errno_names[i].name);
      return;
    }
  }
  snprintf(buf, size, "E%d", e);
}

static const char *errno_text(int e, char *buf, size_t size)
{
#if defined(__GLIBC__)
  return strerror_r(e, buf, size); /* GNU variant (_GNU_SOURCE): returns the text */
#else
  if (strerror_r(e, buf, size) != 0) snprintf(buf, size, "Unknown error %d", e);
  return buf;
#endif
}

/* After a failed napi_* call: make sure an exception is pending. */
static void napi_failed(napi_env env, const char *what)
{
  const napi_extended_error_info *info = NULL;
  const char *detail = "unknown";
  char msg[256];
  bool pending = false;
  if (napi_get_last_error_info(env, &info) == napi_ok && info != NULL && info->error_message != NULL)
    detail = info->error_message;
  snprintf(msg, sizeof msg, "vrouter_native: %s failed: %s", what, detail);
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  napi_throw_error(env, NULL, msg);
}

#define NAPI_CALL(env, call)                                                                       \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      napi_failed((env), #call);                                                                   \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

/* Throw Error("<syscall>[ <detail>]: <strerror>[ (<note>)]") with code, errno and syscall. */
static void throw_errno_note(napi_env env, int e, const char *syscall, const char *detail,
                             const char *note)
{
  char code[32], text[128], msg[512];
  napi_value code_v, msg_v, err_v, errno_v, syscall_v;
  const char *s = errno_text(e, text, sizeof text);
  errno_code(e, code, sizeof code);
  snprintf(msg, sizeof msg, "%s%s%s: %s%s%s%s", syscall, detail ? " " : "", detail ? detail : "", s,
           note ? " (" : "", note ? note : "", note ? ")" : "");
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &msg_v) != napi_ok ||
      napi_create_error(env, code_v, msg_v, &err_v) != napi_ok ||
      napi_create_int32(env, e, &errno_v) != napi_ok ||
      napi_set_named_property(env, err_v, "errno", errno_v) != napi_ok ||
      napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_v) != napi_ok ||
      napi_set_named_property(env, err_v, "syscall", syscall_v) != napi_ok ||
      napi_throw(env, err_v) != napi_ok)
    napi_failed(env, "throwing a syscall error");
}

static void throw_errno(napi_env env, int e, const char *syscall, const char *detail)
{
  throw_errno_note(env, e, syscall, detail, NULL);
}

static void throw_type(napi_env env, const char *code, const char *fmt_what, const char *what)
{
  char msg[256];
  snprintf(msg, sizeof msg, fmt_what, what);
  napi_throw_type_error(env, code, msg);
}

static int is_eagain(int e)
{
#if EWOULDBLOCK != EAGAIN
  if (e == EWOULDBLOCK) return 1;
#endif
  return e == EAGAIN;
}

/* ---------------------------------------------------------------------------------------------- */
/* Arguments. Each helper returns 0 on success, -1 with an exception pending. */

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv,
                    const char *fn)
{
  size_t argc = want;
  char msg[128];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_failed(env, "napi_get_cb_info");
    return -1;
  }
  if (argc < want) {
    snprintf(msg, sizeof msg, "%s expects %u arguments, got %u", fn, (unsigned)want, (unsigned)argc);
    napi_throw_type_error(env, "ERR_MISSING_ARGS", msg);
    return -1;
  }
  return 0;
}

/* An integral number in [min, max]. */
static int arg_int(napi_env env, napi_value v, const char *what, int64_t min, int64_t max,
                   int64_t *out)
{
  napi_valuetype t;
  double d;
  char msg[160];
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    throw_type(env, "ERR_INVALID_ARG_TYPE", "%s must be a number", what);
    return -1;
  }
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    napi_failed(env, "napi_get_value_double");
    return -1;
  }
  if (!(d >= (double)min && d <= (double)max) || d != (double)(int64_t)d) {
    snprintf(msg, sizeof msg, "%s must be an integer in [%lld, %lld], got %g", what, (long long)min,
             (long long)max, d);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return -1;
  }
  *out = (int64_t)d;
  return 0;
}

static int arg_fd(napi_env env, napi_value v, int *fd)
{
  int64_t x;
  if (arg_int(env, v, "fd", 0, INT_MAX, &x)) return -1;
  *fd = (int)x;
  return 0;
}

/* A typed array of the given type: its data pointer (adjusted by the byte offset) and element count.
 * Works for ArrayBuffer- and SharedArrayBuffer-backed arrays alike. */
static int arg_typed(napi_env env, napi_value v, napi_typedarray_type want, const char *what,
                     const char *type_name, void **data, size_t *length)
{
  bool is_ta = false;
  napi_typedarray_type type;
  char msg[128];
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok) {
    napi_failed(env, "napi_is_typedarray");
    return -1;
  }
  if (is_ta) {
    if (napi_get_typedarray_info(env, v, &type, length, data, NULL, NULL) != napi_ok) {
      napi_failed(env, "napi_get_typedarray_info");
      return -1;
    }
  }
  if (!is_ta || type != want) {
    snprintf(msg, sizeof msg, "%s must be a %s", what, type_name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return -1;
  }
  return 0;
}

/* A string without NUL characters copied into buf. Returns 1 (nothing thrown) when it has `size`
 * bytes or more; buf then holds its truncated start and *len the full length. */
static int arg_string(napi_env env, napi_value v, const char *what, char *buf, size_t size,
                      size_t *len)
{
  napi_valuetype t;
  size_t full = 0, got = 0;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) {
    throw_type(env, "ERR_INVALID_ARG_TYPE", "%s must be a string", what);
    return -1;
  }
  if (napi_get_value_string_utf8(env, v, NULL, 0, &full) != napi_ok ||
      napi_get_value_string_utf8(env, v, buf, size, &got) != napi_ok) {
    napi_failed(env, "napi_get_value_string_utf8");
    return -1;
  }
  *len = full;
  if (full >= size) return 1;
  if (strlen(buf) != full) {
    throw_type(env, "ERR_INVALID_ARG_VALUE", "%s must not contain NUL characters", what);
    return -1;
  }
  return 0;
}

static napi_value make_int(napi_env env, int64_t x)
{
  napi_value v;
  NAPI_CALL(env, napi_create_int64(env, x, &v));
  return v;
}

static napi_value make_undefined(napi_env env)
{
  napi_value v;
  NAPI_CALL(env, napi_get_undefined(env, &v));
  return v;
}

/* ---------------------------------------------------------------------------------------------- */
/* TAP */

/* tapOpen(name: string, flags: number): { fd, name } */
static napi_value js_tap_open(napi_env env, napi_callback_info info)
{
  napi_value argv[2], result, v;
  char name[256];
  size_t nlen;
  int64_t flags;
  int fd, rc, e;
  struct ifreq ifr;

  if (get_args(env, info, 2, argv, "tapOpen")) return NULL;
  rc = arg_string(env, argv[0], "name", name, sizeof name, &nlen);
  if (rc < 0) return NULL;
  if (arg_int(env, argv[1], "flags", 0, 0xffff, &flags)) return NULL;
  if (rc > 0 || nlen >= IFNAMSIZ) {
    throw_errno_note(env, EINVAL, "TUNSETIFF", name, "interface names have at most 15 bytes");
    return NULL;
  }

  fd = open(TUN_PATH, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    throw_errno(env, errno, "open", TUN_PATH);
    return NULL;
  }
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, nlen);
  ifr.ifr_flags = (short)(unsigned short)flags;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    e = errno;
    close(fd);
    throw_errno(env, e, "TUNSETIFF", nlen ? name : NULL);
    return NULL;
  }
  ifr.ifr_name[IFNAMSIZ - 1] = '\0';

  if (napi_create_object(env, &result) != napi_ok || napi_create_int32(env, fd, &v) != napi_ok ||
      napi_set_named_property(env, result, "fd", v) != napi_ok ||
      napi_create_string_utf8(env, ifr.ifr_name, strlen(ifr.ifr_name), &v) != napi_ok ||
      napi_set_named_property(env, result, "name", v) != napi_ok) {
    close(fd);
    napi_failed(env, "building the tapOpen result");
    return NULL;
  }
  return result;
}

/* tunFeatures(): number */
static napi_value js_tun_features(napi_env env, napi_callback_info info)
{
  unsigned int features = 0;
  int fd, e;
  napi_value v;
  (void)info;
  fd = open(TUN_PATH, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    throw_errno(env, errno, "open", TUN_PATH);
    return NULL;
  }
  if (ioctl(fd, TUNGETFEATURES, &features) < 0) {
    e = errno;
    close(fd);
    throw_errno(env, e, "TUNGETFEATURES", TUN_PATH);
    return NULL;
  }
  close(fd);
  NAPI_CALL(env, napi_create_uint32(env, features, &v));
  return v;
}

/* ---------------------------------------------------------------------------------------------- */
/* Batched I/O */

/* readBatch(fd, buf: Uint8Array, slotSize, maxFrames, lens: Int32Array): number */
static napi_value js_read_batch(napi_env env, napi_callback_info info)
{
  napi_value argv[5];
  int fd;
  int64_t slot, max;
  void *bufp, *lensp;
  size_t buflen, lenslen;
  uint8_t *base;
  int32_t *lens;
  int64_t count = 0;
  char detail[32];

  if (get_args(env, info, 5, argv, "readBatch")) return NULL;
  if (arg_fd(env, argv[0], &fd) ||
      arg_typed(env, argv[1], napi_uint8_array, "buf", "Uint8Array", &bufp, &buflen) ||
      arg_int(env, argv[2], "slotSize", 1, INT32_MAX, &slot) ||
      arg_int(env, argv[3], "maxFrames", 0, INT32_MAX, &max) ||
      arg_typed(env, argv[4], napi_int32_array, "lens", "Int32Array", &lensp, &lenslen))
    return NULL;
  if ((uint64_t)max * (uint64_t)slot > (uint64_t)buflen) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE",
                          "buf is smaller than maxFrames * slotSize bytes");
    return NULL;
  }
  if ((uint64_t)lenslen < (uint64_t)max) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "lens has fewer than maxFrames elements");
    return NULL;
  }
  base = (uint8_t *)bufp;
  lens = (int32_t *)lensp;

  while (count < max) {
    ssize_t r = read(fd, base + (size_t)count * (size_t)slot, (size_t)slot);
    if (r > 0) {
      lens[count++] = (int32_t)r;
      continue;
    }
    if (r == 0) break; /* end of file: not a TAP; nothing more to read now */
    if (errno == EINTR) continue;
    if (is_eagain(errno)) break;
    if (count == 0) {
      int e = errno; /* before snprintf, which may change errno */
      snprintf(detail, sizeof detail, "fd %d", fd);
      throw_errno(env, e, "read", detail);
      return NULL;
    }
    break; /* the next call reports the error */
  }
  return make_int(env, count);
}

/* Write one frame; returns bytes written, -1 on EAGAIN, -2 on another error (left in *err). */
static ssize_t write_one(int fd, const uint8_t *p, size_t len, int *err)
{
  for (;;) {
    ssize_t r = write(fd, p, len);
    if (r >= 0) return r;
    if (errno == EINTR) continue;
    if (is_eagain(errno)) return -1;
    *err = errno;
    return -2;
  }
}

static int frame_in_bounds(napi_env env, int64_t k, int64_t off, int64_t len, size_t buflen)
{
  char msg[160];
  if (off >= 0 && len >= 0 && (uint64_t)off + (uint64_t)len <= (uint64_t)buflen) return 0;
  if (k >= 0)
    snprintf(msg, sizeof msg, "frame %lld (offset %lld, length %lld) is outside buf (%llu bytes)",
             (long long)k, (long long)off, (long long)len, (unsigned long long)buflen);
  else
    snprintf(msg, sizeof msg, "frame (offset %lld, length %lld) is outside buf (%llu bytes)",
             (long long)off, (long long)len, (unsigned long long)buflen);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return -1;
}

/* writeBatch(fd, buf: Uint8Array, offs: Int32Array, lens: Int32Array, n): number */
static napi_value js_write_batch(napi_env env, napi_callback_info info)
{
  napi_value argv[5];
  int fd, err = 0;
  int64_t n, k, count = 0;
  void *bufp, *offsp, *lensp;
  size_t buflen, offslen, lenslen;
  const uint8_t *base;
  const int32_t *offs, *lens;
  char detail[32];

  if (get_args(env, info, 5, argv, "writeBatch")) return NULL;
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
  base = (const uint8_t *)bufp;
  offs = (const int32_t *)offsp;
  lens = (const int32_t *)lensp;
  /* Check every frame before writing any, so a bad argument never leaves a half-written batch. */
  for (k = 0; k < n; k++)
    if (frame_in_bounds(env, k, offs[k], lens[k], buflen)) return NULL;

  for (k = 0; k < n; k++) {
    ssize_t r = write_one(fd, base + offs[k], (size_t)lens[k], &err);
    if (r == -1) break; /* EAGAIN: the caller drops the rest */
    if (r == -2) {
      if (count == 0) {
        snprintf(detail, sizeof detail, "fd %d", fd);
        throw_errno(env, err, "write", detail);
        return NULL;
      }
      break; /* the next call reports the error */
    }
    count++;
  }
  return make_int(env, count);
}

/* writeFrame(fd, buf: Uint8Array, off, len): number (bytes written, -1 on EAGAIN) */
static napi_value js_write_frame(napi_env env, napi_callback_info info)
{
  napi_value argv[4];
  int fd, err = 0;
  int64_t off, len;
  void *bufp;
  size_t buflen;
  ssize_t r;
  char detail[32];

  if (get_args(env, info, 4, argv, "writeFrame")) return NULL;
  if (arg_fd(env, argv[0], &fd) ||
      arg_typed(env, argv[1], napi_uint8_array, "buf", "Uint8Array", &bufp, &buflen) ||
      arg_int(env, argv[2], "off", 0, INT32_MAX, &off) ||
      arg_int(env, argv[3], "len", 0, INT32_MAX, &len) ||
      frame_in_bounds(env, -1, off, len, buflen))
    return NULL;
  r = write_one(fd, (const uint8_t *)bufp + off, (size_t)len, &err);
  if (r == -2) {
    snprintf(detail, sizeof detail, "fd %d", fd);
    throw_errno(env, err, "write", detail);
    return NULL;
  }
  return make_int(env, r);
}

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
static napi_value js_packet_open(napi_env env, napi_callback_info info)
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

/* Copy or segment one received frame into the output slots; returns the slots used. */
static int pkt_take(uint8_t *stage, size_t rlen, uint8_t *out, size_t slot, int room, int32_t *lens,
                    double *stats)
{
  struct virtio_net_hdr h;
  uint8_t *f = stage + VNET_HLEN;
  size_t flen;
  int n;
  if (rlen <= (size_t)VNET_HLEN) {
    stats[PS_DROPPED]++;
    return 0;
  }
  memcpy(&h, stage, sizeof h);
  flen = rlen - (size_t)VNET_HLEN;
  if ((h.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) != VIRTIO_NET_HDR_GSO_NONE) {
    /* Only TCP/IPv4 is cut here; the segments get full checksums, so NEEDS_CSUM is moot. */
    n = (h.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_TCPV4
            ? offload_tcp4_segment(f, flen, &h, out, slot, room, lens)
            : -1;
    if (n < 0) {
      stats[PS_DROPPED]++;
      return 0;
    }
    stats[PS_GSO_FRAMES]++;
    stats[PS_GSO_SEGS] += n;
    return n;
  }
  if (flen > slot || room < 1) {
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
  memcpy(out, f, flen);
  lens[0] = (int32_t)flen;
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
 * TSO frame) is received into the stage, once there is room for its segments. */
static int pkt_ring_take(void *ctx, uint8_t *vnet, size_t len)
{
  struct pkt_out *o = (struct pkt_out *)ctx;
  int room = o->max - o->count, n;
  ssize_t got;
  if (vnet == NULL) {
    if (room < PKT_SEG_ROOM && o->count > 0) return -1;
    got = recv(o->fd, o->stage, PKT_STAGE, MSG_DONTWAIT);
    if (got < 0) {
      o->stats[PS_DROPPED]++; /* announced by the ring, gone from the queue */
      return 0;
    }
    vnet = o->stage;
    len = (size_t)got;
  } else {
    const struct virtio_net_hdr *h = (const struct virtio_net_hdr *)vnet;
    if (room < 1 || ((h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) != VIRTIO_NET_HDR_GSO_NONE && room < PKT_SEG_ROOM))
      return -1;
  }
  n = pkt_take(vnet, len, o->base + (size_t)o->count * o->slot, o->slot, room, o->lens + o->count, o->stats);
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
 * completes partial checksums and cuts TSO frames into buf's slots. Frames it cannot take are counted
 * in stats[3], frames the kernel dropped on the socket in stats[5]. Keeps 46 slots free for a TSO
 * frame's segments. */
static napi_value js_packet_read_batch(napi_env env, napi_callback_info info)
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
      count += pkt_take(stage + (size_t)k * PKT_STAGE, msgs[k].msg_len, base + (size_t)count * (size_t)slot,
                        (size_t)slot, (int)max - count, lens + count, stats);
    }
    if (got < vlen) { /* the queue is empty */
      pkt_sock_drops(fd, stats);
      break;
    }
  }
  return make_int(env, count);
}

/* packetWriteBatch(fd, buf, offs, lens, n): number -- sendmmsg() with a zero virtio-net header each */
static napi_value js_packet_write_batch(napi_env env, napi_callback_info info)
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
static napi_value js_sock_error(napi_env env, napi_callback_info info)
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

/* ---------------------------------------------------------------------------------------------- */
/* poll, eventfd, close */

/* poll(fds: Int32Array, n, events, revents: Int32Array, timeoutMs): number */
static napi_value js_poll(napi_env env, napi_callback_info info)
{
  napi_value argv[5];
  int64_t n, events, timeout, k;
  void *fdsp, *reventsp;
  size_t fdslen, reventslen;
  const int32_t *fds;
  int32_t *revents;
  struct pollfd stack_pfd[POLL_STACK_FDS];
  struct pollfd *pfd = stack_pfd;
  int r, e;

  if (get_args(env, info, 5, argv, "poll")) return NULL;
  if (arg_typed(env, argv[0], napi_int32_array, "fds", "Int32Array", &fdsp, &fdslen) ||
      arg_int(env, argv[1], "n", 0, INT32_MAX, &n) ||
      arg_int(env, argv[2], "events", 0, 0xffff, &events) ||
      arg_typed(env, argv[3], napi_int32_array, "revents", "Int32Array", &reventsp, &reventslen) ||
      arg_int(env, argv[4], "timeoutMs", -1, INT_MAX, &timeout))
    return NULL;
  if ((uint64_t)fdslen < (uint64_t)n || (uint64_t)reventslen < (uint64_t)n) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "fds and revents need at least n elements");
    return NULL;
  }
  fds = (const int32_t *)fdsp;
  revents = (int32_t *)reventsp;
  if (n > POLL_STACK_FDS) {
    pfd = (struct pollfd *)malloc((size_t)n * sizeof *pfd);
    if (pfd == NULL) {
      throw_errno(env, ENOMEM, "poll", NULL);
      return NULL;
    }
  }
  for (k = 0; k < n; k++) {
    pfd[k].fd = fds[k];
    pfd[k].events = (short)(unsigned short)events;
    pfd[k].revents = 0;
  }
  r = poll(pfd, (nfds_t)n, (int)timeout);
  e = errno;
  if (r < 0 && e == EINTR) {
    r = 0;
    for (k = 0; k < n; k++) pfd[k].revents = 0;
  }
  if (r >= 0)
    for (k = 0; k < n; k++) revents[k] = (int32_t)(unsigned short)pfd[k].revents;
  if (pfd != stack_pfd) free(pfd);
  if (r < 0) {
    throw_errno(env, e, "poll", NULL);
    return NULL;
  }
  return make_int(env, r);
}

/* eventfdCreate(): number */
static napi_value js_eventfd_create(napi_env env, napi_callback_info info)
{
  int fd;
  (void)info;
  fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) {
    throw_errno(env, errno, "eventfd", NULL);
    return NULL;
  }
  return make_int(env, fd);
}

/* eventfdSignal(fd): void -- adds 1 to the counter (EAGAIN, a saturated counter, is ignored) */
static napi_value js_eventfd_signal(napi_env env, napi_callback_info info)
{
  napi_value argv[1];
  int fd, err = 0;
  uint64_t one = 1;
  char detail[32];

  if (get_args(env, info, 1, argv, "eventfdSignal") || arg_fd(env, argv[0], &fd)) return NULL;
  if (write_one(fd, (const uint8_t *)&one, sizeof one, &err) == -2) {
    snprintf(detail, sizeof detail, "fd %d", fd);
    throw_errno(env, err, "write", detail);
    return NULL;
  }
  return make_undefined(env);
}

/* eventfdDrain(fd): number -- the counter, reset to 0 (0 when it already was) */
static napi_value js_eventfd_drain(napi_env env, napi_callback_info info)
{
  napi_value argv[1], v;
  int fd;
  uint64_t value = 0;
  ssize_t r;
  char detail[32];

  if (get_args(env, info, 1, argv, "eventfdDrain") || arg_fd(env, argv[0], &fd)) return NULL;
  for (;;) {
    r = read(fd, &value, sizeof value);
    if (r >= 0 || errno != EINTR) break;
  }
  if (r < 0) {
    int e = errno;
    if (is_eagain(e)) return make_int(env, 0);
    snprintf(detail, sizeof detail, "fd %d", fd);
    throw_errno(env, e, "read", detail);
    return NULL;
  }
  if (r != (ssize_t)sizeof value) value = 0;
  NAPI_CALL(env, napi_create_double(env, (double)value, &v));
  return v;
}

/* close(fd): void */
static napi_value js_close(napi_env env, napi_callback_info info)
{
  napi_value argv[1];
  int fd;
  char detail[32];

  if (get_args(env, info, 1, argv, "close") || arg_fd(env, argv[0], &fd)) return NULL;
  pring_close(fd); /* a packet socket's ring is unmapped first (the mapping would keep the socket) */
  /* On Linux the fd is released even when close() reports EINTR: never retry. */
  if (close(fd) < 0 && errno != EINTR) {
    int e = errno;
    snprintf(detail, sizeof detail, "fd %d", fd);
    throw_errno(env, e, "close", detail);
    return NULL;
  }
  return make_undefined(env);
}

/* ---------------------------------------------------------------------------------------------- */
/* Threads: CPU affinity, network namespace */

/* setAffinity(cpu): void -- pins the calling thread */
static napi_value js_set_affinity(napi_env env, napi_callback_info info)
{
  napi_value argv[1];
  int64_t cpu;
  cpu_set_t *set;
  size_t size;
  int rc, e;
  char detail[32];

  if (get_args(env, info, 1, argv, "setAffinity") ||
      arg_int(env, argv[0], "cpu", 0, 65535, &cpu))
    return NULL;
  set = CPU_ALLOC((size_t)cpu + 1);
  if (set == NULL) {
    throw_errno(env, ENOMEM, "sched_setaffinity", NULL);
    return NULL;
  }
  size = CPU_ALLOC_SIZE((size_t)cpu + 1);
  CPU_ZERO_S(size, set);
  CPU_SET_S((size_t)cpu, size, set);
  rc = sched_setaffinity(0, size, set);
  e = errno;
  CPU_FREE(set);
  if (rc < 0) {
    snprintf(detail, sizeof detail, "cpu %d", (int)cpu);
    throw_errno(env, e, "sched_setaffinity", detail);
    return NULL;
  }
  return make_undefined(env);
}

/* getCpu(): number */
static napi_value js_get_cpu(napi_env env, napi_callback_info info)
{
  int cpu;
  (void)info;
  cpu = sched_getcpu();
  if (cpu < 0) {
    throw_errno(env, errno, "sched_getcpu", NULL);
    return NULL;
  }
  return make_int(env, cpu);
}

/* setns(path, nstype): void -- moves the calling thread into the namespace file at path */
static napi_value js_setns(napi_env env, napi_callback_info info)
{
  napi_value argv[2];
  char path[PATH_MAX];
  size_t len;
  int64_t nstype;
  int fd, rc, e;

  if (get_args(env, info, 2, argv, "setns")) return NULL;
  rc = arg_string(env, argv[0], "path", path, sizeof path, &len);
  if (rc < 0 || arg_int(env, argv[1], "nstype", 0, INT32_MAX, &nstype)) return NULL;
  if (rc > 0) {
    throw_errno(env, ENAMETOOLONG, "open", NULL);
    return NULL;
  }
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw_errno(env, errno, "open", path);
    return NULL;
  }
  rc = setns(fd, (int)nstype);
  e = errno;
  close(fd);
  if (rc < 0) {
    throw_errno(env, e, "setns", path);
    return NULL;
  }
  return make_undefined(env);
}

/* ---------------------------------------------------------------------------------------------- */
/* Module */

static napi_value make_constants(napi_env env)
{
  static const struct {
    const char *name;
    int64_t value;
  } consts[] = {
    { "IFF_TAP", IFF_TAP },           { "IFF_NO_PI", IFF_NO_PI },
    { "IFF_MULTI_QUEUE", IFF_MULTI_QUEUE }, { "IFF_VNET_HDR", IFF_VNET_HDR },
    { "POLLIN", POLLIN },             { "POLLOUT", POLLOUT },
    { "POLLERR", POLLERR },           { "POLLHUP", POLLHUP },
    { "POLLNVAL", POLLNVAL },         { "CLONE_NEWNET", CLONE_NEWNET },
  };
  napi_property_descriptor props[sizeof consts / sizeof consts[0]];
  napi_value obj;
  size_t i;
  NAPI_CALL(env, napi_create_object(env, &obj));
  memset(props, 0, sizeof props);
  for (i = 0; i < sizeof consts / sizeof consts[0]; i++) {
    props[i].utf8name = consts[i].name;
    props[i].attributes = napi_enumerable; /* read-only */
    NAPI_CALL(env, napi_create_int64(env, consts[i].value, &props[i].value));
  }
  NAPI_CALL(env, napi_define_properties(env, obj, sizeof props / sizeof props[0], props));
  return obj;
}

#define METHOD(name, fn)                                                                           \
  { name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL }

NAPI_MODULE_INIT()
{
  napi_value constants;
  napi_property_descriptor props[] = {
    METHOD("tapOpen", js_tap_open),
    METHOD("tunFeatures", js_tun_features),
    METHOD("readBatch", js_read_batch),
    METHOD("writeBatch", js_write_batch),
    METHOD("writeFrame", js_write_frame),
    METHOD("poll", js_poll),
    METHOD("eventfdCreate", js_eventfd_create),
    METHOD("eventfdSignal", js_eventfd_signal),
    METHOD("eventfdDrain", js_eventfd_drain),
    METHOD("close", js_close),
    METHOD("setAffinity", js_set_affinity),
    METHOD("getCpu", js_get_cpu),
    METHOD("setns", js_setns),
    METHOD("packetOpen", js_packet_open),
    METHOD("packetReadBatch", js_packet_read_batch),
    METHOD("packetWriteBatch", js_packet_write_batch),
    METHOD("sockError", js_sock_error),
  };
  constants = make_constants(env);
  if (constants == NULL) return NULL;
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  NAPI_CALL(env, napi_set_named_property(env, exports, "constants", constants));
  return exports;
}
