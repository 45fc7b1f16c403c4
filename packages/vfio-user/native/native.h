/*
 * What the parts of vfiokit_native share: the system headers, the error and argument helpers
 * (args.c), and the functions each part puts in the module table (vfiokit_native.c).
 */
#ifndef VFIOKIT_NATIVE_H
#define VFIOKIT_NATIVE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

/* SCM_MAX_FD in include/net/scm.h: the most descriptors one sendmsg may carry. */
#define MAX_FDS_PER_MSG 253

/* recvMsg's flags in fdsOut[1]: descriptors were dropped; the message came while its wait polled. */
#define RECV_FDS_TRUNCATED 1
#define RECV_POLLED 2

/* ---- errors and arguments (args.c) ------------------------------------------------------- */

/* Throw an Error with errno, code (the errno's name) and syscall; returns NULL to return. */
napi_value throw_errno(napi_env env, const char *syscall, int err);
/* Throw a TypeError with code EINVAL; returns NULL to return. */
napi_value throw_type(napi_env env, const char *message);

#define GET_ARGS(n)                                                                 \
  size_t argc = (n);                                                                \
  napi_value argv[(n) > 0 ? (n) : 1];                                               \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;

int arg_int32(napi_env env, napi_value v, int32_t *out);
/* A non-negative integral number up to 2^53 (sizes and offsets). */
int arg_size(napi_env env, napi_value v, uint64_t *out);
int arg_fd(napi_env env, napi_value v, int *fd);
int arg_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len);
napi_value make_int(napi_env env, int64_t v);

/* ---- adaptive polling before a blocking wait (poll.c) ------------------------------------ */

/*
 * How long a thread polls before it blocks, adapted wait by wait (poll.c): the server's wait in
 * place for the next message and the client's wait for a reply (socket.c) both use it.
 */
typedef struct {
  /* How long the next wait polls, in ns (0: it blocks at once). */
  int64_t poll_ns;
  /* Waits so far, and whether this thread may run on more than one CPU (rechecked now and then). */
  uint32_t waits;
  int other_cpus;
} adaptive_poll_t;

int64_t now_ns(void);
/* The polling window of the wait about to start (0 on a thread limited to one CPU). */
int64_t adaptive_window(adaptive_poll_t *a);
/* The wait that began at `start_ns` has ended now: adapt the window. */
void adaptive_waited(adaptive_poll_t *a, int64_t start_ns);

/* ---- the module's functions, by part ----------------------------------------------------- */

/* memory.c */
napi_value memfd_create_fn(napi_env env, napi_callback_info info);
napi_value mmap_fn(napi_env env, napi_callback_info info);

/* descriptors.c */
napi_value close_fn(napi_env env, napi_callback_info info);
napi_value dup_fn(napi_env env, napi_callback_info info);
napi_value set_nonblocking_fn(napi_env env, napi_callback_info info);
napi_value fstat_size_fn(napi_env env, napi_callback_info info);
napi_value punch_hole_fn(napi_env env, napi_callback_info info);
napi_value open_fd_count_fn(napi_env env, napi_callback_info info);
napi_value eventfd_create_fn(napi_env env, napi_callback_info info);
napi_value eventfd_write_fn(napi_env env, napi_callback_info info);
napi_value eventfd_read_fn(napi_env env, napi_callback_info info);

/* socket.c */
napi_value unix_listen_fn(napi_env env, napi_callback_info info);
napi_value unix_connect_fn(napi_env env, napi_callback_info info);
napi_value unix_accept_fn(napi_env env, napi_callback_info info);
napi_value socket_pair_fn(napi_env env, napi_callback_info info);
napi_value send_msg_fn(napi_env env, napi_callback_info info);
napi_value recv_msg_fn(napi_env env, napi_callback_info info);
napi_value set_receive_timeout_fn(napi_env env, napi_callback_info info);
napi_value wait_fd_fn(napi_env env, napi_callback_info info);
napi_value waiter_create_fn(napi_env env, napi_callback_info info);
napi_value waiter_window_fn(napi_env env, napi_callback_info info);

/* poll.c */
napi_value poll_start_fn(napi_env env, napi_callback_info info);
napi_value poll_update_fn(napi_env env, napi_callback_info info);
napi_value poll_stop_fn(napi_env env, napi_callback_info info);
napi_value poll_ref_fn(napi_env env, napi_callback_info info);
napi_value poll_window_fn(napi_env env, napi_callback_info info);

/* vfiokit_native.c */
napi_value clock_ns_fn(napi_env env, napi_callback_info info);

#endif
