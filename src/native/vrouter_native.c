/*
 * vrouter_native: the emulator's own small Node-API addon for TAP devices and the few syscalls the
 * datapath needs that Node does not offer (TUNSETIFF, batched read/write on a non-blocking fd, poll,
 * eventfd, per-thread CPU affinity and network namespace).
 *
 * This file holds the constants and the table of exports; the functions live by concern in tap.c (TAPs,
 * batched read/write), packet.c (packet sockets, with pktring.c and offload.c), sys.c (poll, eventfd,
 * close, affinity, setns), and napi-util.c (errors and argument readers shared by all of them).
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

#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <linux/if_tun.h>

#include "napi-util.h"
#include "packet.h"
#include "sys.h"
#include "tap.h"

#ifndef IFF_MULTI_QUEUE
#define IFF_MULTI_QUEUE 0x0100
#endif
#ifndef IFF_VNET_HDR
#define IFF_VNET_HDR 0x4000
#endif
#ifndef CLONE_NEWNET
#define CLONE_NEWNET 0x40000000
#endif

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
    METHOD("avoidCpu", js_avoid_cpu),
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
