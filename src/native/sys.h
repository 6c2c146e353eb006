/*
 * sys: poll, eventfd, close, CPU affinity and network namespaces (sys.c). The js_* functions are the
 * addon's exports of the same JS name (registered in vrouter_native.c).
 */
#ifndef VROUTER_SYS_H
#define VROUTER_SYS_H

#include "napi-util.h"

napi_value js_poll(napi_env env, napi_callback_info info);           /* poll(fds, n, events, revents, timeoutMs) */
napi_value js_eventfd_create(napi_env env, napi_callback_info info); /* eventfdCreate() */
napi_value js_eventfd_signal(napi_env env, napi_callback_info info); /* eventfdSignal(fd) */
napi_value js_eventfd_drain(napi_env env, napi_callback_info info);  /* eventfdDrain(fd) */
napi_value js_close(napi_env env, napi_callback_info info);          /* close(fd) */
napi_value js_set_affinity(napi_env env, napi_callback_info info);   /* setAffinity(cpu) */
napi_value js_avoid_cpu(napi_env env, napi_callback_info info);      /* avoidCpu(cpu): number */
napi_value js_get_cpu(napi_env env, napi_callback_info info);        /* getCpu() */
napi_value js_setns(napi_env env, napi_callback_info info);          /* setns(path, nstype) */

#endif
