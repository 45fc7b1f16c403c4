/*
 * vfiokit_native: readiness through libuv's uv_poll, and the wait in place for the next message.
 */
#include "native.h"

/* ---- readiness through uv_poll ----------------------------------------------------------- */

typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  int closing;
  int fd;
  /* How many times one readiness callback may wait in place for the fd (pollStart's hold). */
  int32_t hold;
  /* How long a wait in place polls before it blocks. */
  adaptive_poll_t polling;
} poll_t;

static void poll_closed(uv_handle_t *h) { free(h->data); }

static void poll_release(poll_t *p) {
  if (p->closing) return;
  p->closing = 1;
  uv_poll_stop(&p->handle);
  if (p->callback) napi_delete_reference(p->env, p->callback);
  p->callback = NULL;
  if (p->async) napi_async_destroy(p->env, p->async);
  p->async = NULL;
  uv_close((uv_handle_t *)&p->handle, poll_closed);
}

static void poll_env_cleanup(void *arg) { poll_release(arg); }

/* Added to the events of a callback made after a wait in place (the JS side counts them). */
#define IN_PLACE 8
/* Added besides IN_PLACE when the wait found the fd readable while it polled, before blocking. */
#define POLLED 16

/* Call the JS callback with (status, events); 1 when it returned true (it asks to wait in place). */
static int poll_call(poll_t *p, int status, int events) {
  napi_env env = p->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return 0;
  int again = 0;
  napi_value cb, recv, args[2], result;
  if (napi_get_reference_value(env, p->callback, &cb) == napi_ok && cb != NULL) {
    napi_get_global(env, &recv);
    napi_create_int32(env, status, &args[0]);
    napi_create_int32(env, events, &args[1]);
    if (napi_make_callback(env, p->async, recv, cb, 2, args, &result) != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value err;
        napi_get_and_clear_last_exception(env, &err);
        napi_fatal_exception(env, err);
      }
    } else {
      bool b = false;
      if (napi_get_value_bool(env, result, &b) == napi_ok && b) again = 1;
    }
  }
  napi_close_handle_scope(env, scope);
  return again;
}

/*
 * A wait in place polls (poll(2) with no timeout) for a while before it blocks: a peer that sends
 * its next message a few microseconds after our reply then finds this thread awake, and neither
 * side pays for waking a sleeping thread on another CPU (an IPI, which on a virtual machine is a
 * VM exit at each end: ~10 us a round trip on the 2-vCPU machines this was measured on). How long
 * adapts as QEMU's AioContext polling does (util/aio-posix.c; an IOThread's poll-max-ns is 32 us
 * by default, and polling starts at 4 us and doubles): a wait that ended after the polling but
 * within POLL_MAX_NS polls longer next time, one that took longer than POLL_MAX_NS stops polling.
 * A thread that may run on one CPU only never polls: the peer it waits for needs that CPU. The
 * client's wait for a reply (socket.c's recvMsg with a waiter) adapts the same way.
 */
#define POLL_MAX_NS 32000
#define POLL_START_NS 4000
/* Waits between two checks of the thread's CPU affinity (taskset may change it at any time). */
#define AFFINITY_EVERY 256

int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int may_run_on_other_cpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) < 0) return 0;
  return CPU_COUNT(&set) > 1;
}

int64_t adaptive_window(adaptive_poll_t *a) {
  if (a->waits++ % AFFINITY_EVERY == 0) a->other_cpus = may_run_on_other_cpus();
  if (!a->other_cpus) a->poll_ns = 0;
  return a->poll_ns;
}

void adaptive_waited(adaptive_poll_t *a, int64_t start_ns) {
  if (!a->other_cpus) return;
  int64_t waited_ns = now_ns() - start_ns;
  if (waited_ns <= a->poll_ns) return; /* found while polling: the window fits */
  if (waited_ns > POLL_MAX_NS) a->poll_ns = 0;
  else if (a->poll_ns < POLL_MAX_NS) {
    a->poll_ns = a->poll_ns ? a->poll_ns * 2 : POLL_START_NS;
    if (a->poll_ns > POLL_MAX_NS) a->poll_ns = POLL_MAX_NS;
  }
}

/*
 * Wait, inside the readiness callback, for the fd to become readable again, exactly where and as
 * long as the loop itself would wait next: in poll(2) on the fd and on the loop's own epoll fd
 * (readable when any other handle of the loop has an event), for uv_backend_timeout (0 when a
 * timer is due, an immediate, a pending callback or a closing handle waits, or nothing keeps the
 * loop alive). IN_PLACE (with POLLED when polling found it) when the fd is readable; 0 when
 * anything else needs the loop, which then runs as usual. What this skips is the loop's
 * bookkeeping between two messages of one peer (Node's check phase allocates on every turn,
 * which is what makes a busy server collect garbage). Microtasks and nextTicks already ran when
 * the callback returned (napi_make_callback).
 */
static int wait_in_place(poll_t *p) {
  uv_loop_t *loop = p->handle.loop;
  uv_update_time(loop);
  int timeout = uv_backend_timeout(loop);
  if (timeout == 0) return 0;
  struct pollfd pfd[2] = {{.fd = p->fd, .events = POLLIN}, {.fd = uv_backend_fd(loop), .events = POLLIN}};
  int64_t window = adaptive_window(&p->polling);
  int64_t start = now_ns();
  int r = 0, polled = 0;
  if (window > 0) {
    int64_t until = start + window;
    do r = poll(pfd, 2, 0);
    while (r == 0 && now_ns() < until);
    polled = r > 0;
  }
  if (r == 0) r = poll(pfd, 2, timeout);
  adaptive_waited(&p->polling, start);
  if (r <= 0) return 0; /* timed out (a timer is due), interrupted (a signal), or failed: the loop's turn */
  if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) return 0;
  return IN_PLACE | (polled ? POLLED : 0);
}

static void poll_ready(uv_poll_t *h, int status, int events) {
  poll_t *p = h->data;
  if (p->closing) return;
  int again = poll_call(p, status, events);
  for (int32_t k = 0; again && k < p->hold && !p->closing; k++) {
    int how = wait_in_place(p);
    if (!how) return;
    again = poll_call(p, 0, UV_READABLE | how);
  }
}

static int poll_events(int32_t mask) {
  /* 1 readable, 2 writable, as UV_READABLE and UV_WRITABLE. */
  return (mask & 1 ? UV_READABLE : 0) | (mask & 2 ? UV_WRITABLE : 0) | UV_DISCONNECT;
}

napi_value poll_start_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  int fd;
  int32_t mask, hold = 0;
  napi_valuetype t;
  if (argc < 3 || !arg_fd(env, argv[0], &fd) || !arg_int32(env, argv[1], &mask) ||
      napi_typeof(env, argv[2], &t) != napi_ok || t != napi_function)
    return throw_type(env, "pollStart(fd, events, callback, hold): callback must be a function");
  if (argc >= 4 && (!arg_int32(env, argv[3], &hold) || hold < 0))
    return throw_type(env, "pollStart(fd, events, callback, hold): hold must be a non-negative int32");
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return NULL;
  poll_t *p = calloc(1, sizeof(*p));
  if (!p) return throw_errno(env, "calloc", ENOMEM);
  p->env = env;
  p->fd = fd;
  p->hold = hold;
  int r = uv_poll_init(loop, &p->handle, fd);
  if (r < 0) {
    free(p);
    return throw_errno(env, "uv_poll_init", -r);
  }
  p->handle.data = p;
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "vfiokit:poll", NAPI_AUTO_LENGTH, &name);
  if (napi_create_reference(env, argv[2], 1, &p->callback) != napi_ok ||
      napi_async_init(env, resource, name, &p->async) != napi_ok) {
    poll_release(p);
    return NULL;
  }
  r = uv_poll_start(&p->handle, poll_events(mask), poll_ready);
  if (r < 0) {
    poll_release(p);
    return throw_errno(env, "uv_poll_start", -r);
  }
  napi_add_env_cleanup_hook(env, poll_env_cleanup, p);
  napi_value ext;
  /* No finalizer: the memory belongs to the uv handle and is freed when it closes. */
  if (napi_create_external(env, p, NULL, NULL, &ext) != napi_ok) {
    napi_remove_env_cleanup_hook(env, poll_env_cleanup, p);
    poll_release(p);
    return NULL;
  }
  return ext;
}

static poll_t *arg_poll(napi_env env, napi_value v) {
  napi_valuetype t;
  void *p = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

napi_value poll_update_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  int32_t mask;
  poll_t *p = argc >= 2 ? arg_poll(env, argv[0]) : NULL;
  if (!p || !arg_int32(env, argv[1], &mask)) return throw_type(env, "pollUpdate(handle, events): bad arguments");
  if (p->closing) return throw_errno(env, "uv_poll_start (handle stopped)", EBADF);
  int r = uv_poll_start(&p->handle, poll_events(mask), poll_ready);
  if (r < 0) return throw_errno(env, "uv_poll_start", -r);
  return NULL;
}

napi_value poll_stop_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  poll_t *p = argc >= 1 ? arg_poll(env, argv[0]) : NULL;
  if (!p) return throw_type(env, "pollStop(handle): handle must come from pollStart");
  if (p->closing) return NULL;
  napi_remove_env_cleanup_hook(env, poll_env_cleanup, p);
  poll_release(p);
  return NULL;
}

napi_value poll_ref_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  poll_t *p = argc >= 2 ? arg_poll(env, argv[0]) : NULL;
  bool ref;
  if (!p || napi_get_value_bool(env, argv[1], &ref) != napi_ok)
    return throw_type(env, "pollRef(handle, ref): bad arguments");
  if (p->closing) return NULL;
  if (ref) uv_ref((uv_handle_t *)&p->handle);
  else uv_unref((uv_handle_t *)&p->handle);
  return NULL;
}

/* pollWindow(handle): how long the handle's next wait in place polls before it blocks, in ns. */
napi_value poll_window_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  poll_t *p = argc >= 1 ? arg_poll(env, argv[0]) : NULL;
  if (!p) return throw_type(env, "pollWindow(handle): handle must come from pollStart");
  return make_int(env, p->closing ? 0 : p->polling.poll_ns);
}
