/*
 * tap: TAP devices (TUNSETIFF, TUNGETFEATURES) and batched read()/write() of whole frames on a
 * non-blocking fd, the I/O of a vif the emulator owns (tf-vrouter linux/vr_host_interface.c). The
 * frame slots belong to the caller; this file keeps no state.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <linux/if_tun.h>

#include "napi-util.h"
#include "tap.h"

#define TUN_PATH "/dev/net/tun"

/* ---------------------------------------------------------------------------------------------- */
/* TAP */

/* tapOpen(name: string, flags: number): { fd, name } */
napi_value js_tap_open(napi_env env, napi_callback_info info)
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
napi_value js_tun_features(napi_env env, napi_callback_info info)
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
napi_value js_read_batch(napi_env env, napi_callback_info info)
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
ssize_t write_one(int fd, const uint8_t *p, size_t len, int *err)
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
/* writeBatch(fd, buf: Uint8Array, offs: Int32Array, lens: Int32Array, n): number */
napi_value js_write_batch(napi_env env, napi_callback_info info)
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
napi_value js_write_frame(napi_env env, napi_callback_info info)
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
