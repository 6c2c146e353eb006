/*
 * packet: AF_PACKET sockets bound to an interface the emulator does not own (packet.c). The js_*
 * functions are the addon's exports of the same JS name (registered in vrouter_native.c).
 */
#ifndef VROUTER_PACKET_H
#define VROUTER_PACKET_H

#include "napi-util.h"

napi_value js_packet_open(napi_env env, napi_callback_info info);        /* packetOpen(ifname, want) */
napi_value js_packet_read_batch(napi_env env, napi_callback_info info);  /* packetReadBatch(fd, buf, ...) */
napi_value js_packet_write_batch(napi_env env, napi_callback_info info); /* packetWriteBatch(fd, buf, ...) */
napi_value js_sock_error(napi_env env, napi_callback_info info);         /* sockError(fd) */

#endif
