/*
 * sys: the remaining syscalls the datapath threads need that Node does not offer -- poll() on a set of
 * fds, eventfd wake-ups, close() (unmapping a packet ring first), CPU affinity and the current CPU,
 * and setns() into a network namespace. Keeps no state.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "napi-util.h"
#include "pktring.h"
#include "sys.h"
#include "tap.h"

#define POLL_STACK_FDS 64

/* ---------------------------------------------------------------------------------------------- */
/* poll, eventfd, close */

/* poll(fds: Int32Array, n, events, revents: Int32Array, timeoutMs): number */
napi_value js_poll(napi_env env, napi_callback_info info)
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
napi_value js_eventfd_create(napi_env env, napi_callback_info info)
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
napi_value js_eventfd_signal(napi_env env, napi_callback_info info)
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
napi_value js_eventfd_drain(napi_env env, napi_callback_info info)
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
napi_value js_close(napi_env env, napi_callback_info info)
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
napi_value js_set_affinity(napi_env env, napi_callback_info info)
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

/*
 * avoidCpu(cpu): number -- takes `cpu` out of the affinity of every thread of this process that has
 * another CPU to run on (the datapath thread then pins itself there: --isolate-cpu gives it that CPU
 * alone).
 * Returns how many threads were moved. Threads created later inherit their creator's affinity.
 */
napi_value js_avoid_cpu(napi_env env, napi_callback_info info)
{
  napi_value argv[1], out;
  int64_t cpu;
  cpu_set_t *set;
  size_t size;
  DIR *d;
  struct dirent *de;
  int moved = 0, ncpu;

  if (get_args(env, info, 1, argv, "avoidCpu") ||
      arg_int(env, argv[0], "cpu", 0, 65535, &cpu))
    return NULL;
  ncpu = (int)cpu + 1 > CPU_SETSIZE ? (int)cpu + 1 : CPU_SETSIZE;
  set = CPU_ALLOC(ncpu);
  if (set == NULL) {
    throw_errno(env, ENOMEM, "sched_getaffinity", NULL);
    return NULL;
  }
  size = CPU_ALLOC_SIZE(ncpu);
  d = opendir("/proc/self/task");
  if (d == NULL) {
    int e = errno;
    CPU_FREE(set);
    throw_errno(env, e, "opendir", "/proc/self/task");
    return NULL;
  }
  while ((de = readdir(d)) != NULL) {
    pid_t tid = (pid_t)strtol(de->d_name, NULL, 10);
    if (tid <= 0 || sched_getaffinity(tid, size, set) < 0)
      continue; /* "." and "..", or a thread that has just exited */
    if (!CPU_ISSET_S((size_t)cpu, size, set) || CPU_COUNT_S(size, set) < 2)
      continue;
    CPU_CLR_S((size_t)cpu, size, set);
    if (sched_setaffinity(tid, size, set) == 0)
      moved++;
  }
  closedir(d);
  CPU_FREE(set);
  if (napi_create_int32(env, moved, &out) != napi_ok)
    return NULL;
  return out;
}

/* getCpu(): number */
napi_value js_get_cpu(napi_env env, napi_callback_info info)
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
napi_value js_setns(napi_env env, napi_callback_info info)
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
