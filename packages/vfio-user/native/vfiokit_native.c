/*
 * vfiokit_native: the few system calls Node has no API for, used by the vfio-user transport.
 *
 * memfd + mmap (shared device memory), eventfd (interrupts), non-blocking UNIX stream sockets
 * with SCM_RIGHTS (file descriptors travel with vfio-user messages), readiness through libuv's
 * uv_poll (the event loop is never held; a busy connection may wait for its next message inside
 * its callback for as long as the loop would wait anyway, polling for up to 32 us of that before
 * it blocks), bounded blocking waits for a caller that waits for a reply on its own thread
 * (poll(2), or one recvmsg under SO_RCVTIMEO), and a count of open descriptors for leak tests.
 *
 * Conventions: every failure throws an Error with `errno`, `code` and `syscall`; nothing
 * aborts on bad input; "would block" is a return value (-1 or null), never an exception; every
 * descriptor opened here is closed again on every error path.
 *
 * The parts: args.c (errors, arguments), memory.c, descriptors.c (and eventfds), socket.c and
 * poll.c; native.h is what they share. This file holds the module table.
 */
#include "native.h"

/*
 * clockNs(out): CLOCK_MONOTONIC in ns into out[0] (a Float64Array; exact below 2^53 ns, 104
 * days of uptime), for deadlines and timings read without allocating: Date.now() and
 * performance.now() each return a new heap number.
 */
napi_value clock_ns_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  bool is_ta = false;
  napi_typedarray_type type;
  size_t len = 0;
  void *p = NULL;
  if (argc < 1 || napi_is_typedarray(env, argv[0], &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, argv[0], &type, &len, &p, NULL, NULL) != napi_ok ||
      type != napi_float64_array || len < 1)
    return throw_type(env, "clockNs(out): out must be a Float64Array of at least one element");
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return throw_errno(env, "clock_gettime", errno);
  ((double *)p)[0] = (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
  return NULL;
}

/* ---- module ------------------------------------------------------------------------------ */

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"memfdCreate", NULL, memfd_create_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mmap", NULL, mmap_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, close_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dup", NULL, dup_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setNonBlocking", NULL, set_nonblocking_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fstatSize", NULL, fstat_size_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"punchHole", NULL, punch_hole_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openFdCount", NULL, open_fd_count_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"eventfdCreate", NULL, eventfd_create_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"eventfdWrite", NULL, eventfd_write_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"eventfdRead", NULL, eventfd_read_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unixListen", NULL, unix_listen_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unixConnect", NULL, unix_connect_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unixAccept", NULL, unix_accept_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socketPair", NULL, socket_pair_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendMsg", NULL, send_msg_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvMsg", NULL, recv_msg_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setReceiveTimeout", NULL, set_receive_timeout_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollStart", NULL, poll_start_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollUpdate", NULL, poll_update_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollStop", NULL, poll_stop_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollRef", NULL, poll_ref_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollWindow", NULL, poll_window_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"waitFd", NULL, wait_fd_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"waiterCreate", NULL, waiter_create_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"waiterWindow", NULL, waiter_window_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"clockNs", NULL, clock_ns_fn, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
