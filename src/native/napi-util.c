/*
 * napi-util: the Node-API plumbing shared by the addon's modules -- errno names and texts, the
 * Node-style errors it throws (Error with code/errno/syscall, TypeError, RangeError) and the argument
 * readers. Keeps no state; see napi-util.h for the contracts.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "napi-util.h"

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

void errno_code(int e, char *buf, size_t size)
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
void napi_failed(napi_env env, const char *what)
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

/* Throw Error("<syscall>[ <detail>]: <strerror>[ (<note>)]") with code, errno and syscall. */
void throw_errno_note(napi_env env, int e, const char *syscall, const char *detail,
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

void throw_errno(napi_env env, int e, const char *syscall, const char *detail)
{
  throw_errno_note(env, e, syscall, detail, NULL);
}

static void throw_type(napi_env env, const char *code, const char *fmt_what, const char *what)
{
  char msg[256];
  snprintf(msg, sizeof msg, fmt_what, what);
  napi_throw_type_error(env, code, msg);
}

int is_eagain(int e)
{
#if EWOULDBLOCK != EAGAIN
  if (e == EWOULDBLOCK) return 1;
#endif
  return e == EAGAIN;
}

/* ---------------------------------------------------------------------------------------------- */
/* Arguments. Each helper returns 0 on success, -1 with an exception pending. */

int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv,
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
int arg_int(napi_env env, napi_value v, const char *what, int64_t min, int64_t max,
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

int arg_fd(napi_env env, napi_value v, int *fd)
{
  int64_t x;
  if (arg_int(env, v, "fd", 0, INT_MAX, &x)) return -1;
  *fd = (int)x;
  return 0;
}

/* A typed array of the given type: its data pointer (adjusted by the byte offset) and element count.
 * Works for ArrayBuffer- and SharedArrayBuffer-backed arrays alike. */
int arg_typed(napi_env env, napi_value v, napi_typedarray_type want, const char *what,
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
int arg_string(napi_env env, napi_value v, const char *what, char *buf, size_t size,
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

napi_value make_int(napi_env env, int64_t x)
{
  napi_value v;
  NAPI_CALL(env, napi_create_int64(env, x, &v));
  return v;
}

napi_value make_undefined(napi_env env)
{
  napi_value v;
  NAPI_CALL(env, napi_get_undefined(env, &v));
  return v;
}
int frame_in_bounds(napi_env env, int64_t k, int64_t off, int64_t len, size_t buflen)
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

