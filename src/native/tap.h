/*
 * tap: TAP devices and batched frame I/O on a non-blocking fd (tap.c). The js_* functions are the
 * addon's exports of the same JS name (registered in vrouter_native.c).
 */
#ifndef VROUTER_TAP_H
#define VROUTER_TAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "napi-util.h"

napi_value js_tap_open(napi_env env, napi_callback_info info);     /* tapOpen(name, flags) */
napi_value js_tun_features(napi_env env, napi_callback_info info); /* tunFeatures() */
napi_value js_read_batch(napi_env env, napi_callback_info info);   /* readBatch(fd, buf, slotSize, maxFrames, lens) */
napi_value js_write_batch(napi_env env, napi_callback_info info);  /* writeBatch(fd, buf, offs, lens, n) */
napi_value js_write_frame(napi_env env, napi_callback_info info);  /* writeFrame(fd, buf, off, len) */

/* Write one frame (retrying on EINTR); returns bytes written, -1 on EAGAIN, -2 on another error (left
 * in *err). Also eventfdSignal's write (sys.c). */
ssize_t write_one(int fd, const uint8_t *p, size_t len, int *err);

#endif
