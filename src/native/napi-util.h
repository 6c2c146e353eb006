/*
 * napi-util: Node-API helpers shared by the addon's modules (tap.c, packet.c, sys.c, vrouter_native.c).
 *
 * Errors: syscall failures throw an Error with `code` (errno name, 'E<n>' when unknown), `errno` and
 * `syscall`; bad arguments a TypeError (ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_MISSING_ARGS)
 * or a RangeError (ERR_OUT_OF_RANGE). The argument readers return 0 on success, -1 with an exception
 * pending. Nothing here keeps state, so every helper is safe in any worker thread.
 */
#ifndef VROUTER_NAPI_UTIL_H
#define VROUTER_NAPI_UTIL_H

#ifndef NAPI_VERSION
#define NAPI_VERSION 6
#endif

#include <stddef.h>
#include <stdint.h>

#include <node_api.h>

/* The errno name of e ("EAGAIN"; "E<n>" when unknown) into buf. */
void errno_code(int e, char *buf, size_t size);

/* After a failed napi_* call (named by what): make sure an exception is pending. */
void napi_failed(napi_env env, const char *what);

/* In a function returning napi_value: on failure of call, leave an exception pending and return NULL. */
#define NAPI_CALL(env, call)                                                                       \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      napi_failed((env), #call);                                                                   \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

/* Throw Error("<syscall>[ <detail>]: <strerror>[ (<note>)]") with code, errno and syscall. detail and
 * note may be NULL. */
void throw_errno_note(napi_env env, int e, const char *syscall, const char *detail, const char *note);
void throw_errno(napi_env env, int e, const char *syscall, const char *detail);

/* Whether e means "try again" (EAGAIN or EWOULDBLOCK). */
int is_eagain(int e);

/* The first `want` arguments into argv (fn names the JS function in the error). */
int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, const char *fn);

/* An integral number in [min, max]. */
int arg_int(napi_env env, napi_value v, const char *what, int64_t min, int64_t max, int64_t *out);

/* A file descriptor: an integer in [0, INT_MAX]. */
int arg_fd(napi_env env, napi_value v, int *fd);

/* A typed array of type want (type_name in the error): its data and element count. */
int arg_typed(napi_env env, napi_value v, napi_typedarray_type want, const char *what,
              const char *type_name, void **data, size_t *length);

/* A string without NUL characters into buf; 1 (nothing thrown) when it has `size` bytes or more. */
int arg_string(napi_env env, napi_value v, const char *what, char *buf, size_t size, size_t *len);

/* Whether frame k at [off, off + len) lies inside buflen bytes (RangeError pending when not). */
int frame_in_bounds(napi_env env, int64_t k, int64_t off, int64_t len, size_t buflen);

/* A number, or undefined; NULL with an exception pending when Node-API fails. */
napi_value make_int(napi_env env, int64_t x);
napi_value make_undefined(napi_env env);

#endif
