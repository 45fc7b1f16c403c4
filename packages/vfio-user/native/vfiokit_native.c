/*
 * vfiokit_native: the few system calls Node has no API for, used by the vfio-user transport.
 *
 * memfd + mmap (shared device memory), eventfd (interrupts), non-blocking UNIX stream sockets
 * with SCM_RIGHTS (file descriptors travel with vfio-user messages), readiness through libuv's
 * uv_poll (the event loop never blocks and never spins; a busy connection may wait for its next
 * message inside its callback for as long as the loop would wait anyway), bounded blocking waits for a caller
 * that waits for a reply on its own thread (poll(2), or one recvmsg under SO_RCVTIMEO), and a
 * count of open descriptors for leak tests.
 *
 * Conventions: every failure throws an Error with `errno`, `code` and `syscall`; nothing
 * aborts on bad input; "would block" is a return value (-1 or null), never an exception; every
 * descriptor opened here is closed again on every error path.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
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

/* ---- errors ------------------------------------------------------------------------------ */

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char text[256];
  char errbuf[128];
  const char *desc = strerror_r(err, errbuf, sizeof(errbuf));
  const char *name = NULL;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  name = strerrorname_np(err);
#endif
  snprintf(text, sizeof(text), "%s failed: %s (errno %d)", syscall, desc, err);
  napi_value msg, code, error, errnum, sys;
  if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code) != napi_ok) return NULL;
  if (napi_create_error(env, code, msg, &error) != napi_ok) return NULL;
  napi_create_int32(env, err, &errnum);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
  napi_set_named_property(env, error, "errno", errnum);
  napi_set_named_property(env, error, "syscall", sys);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, "EINVAL", message);
  return NULL;
}

/* ---- argument helpers -------------------------------------------------------------------- */

#define GET_ARGS(n)                                                                 \
  size_t argc = (n);                                                                \
  napi_value argv[(n) > 0 ? (n) : 1];                                               \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;

static int arg_int32(napi_env env, napi_value v, int32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  return napi_get_value_int32(env, v, out) == napi_ok;
}

/* A non-negative integral number up to 2^53 (sizes and offsets). */
static int arg_size(napi_env env, napi_value v, uint64_t *out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
  if (!(d >= 0) || d > 9007199254740991.0 || d != (double)(uint64_t)d) return 0;
  *out = (uint64_t)d;
  return 1;
}

static int arg_fd(napi_env env, napi_value v, int *fd) {
  int32_t x;
  if (!arg_int32(env, v, &x) || x < 0) return 0;
  *fd = x;
  return 1;
}

static int arg_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is_ta;
  napi_typedarray_type type;
  void *p;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return 0;
  if (napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok) return 0;
  if (type != napi_uint8_array) return 0;
  *data = p;
  return 1;
}

static napi_value make_int(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int64(env, v, &out);
  return out;
}

/* ---- memfd and mmap ---------------------------------------------------------------------- */

static napi_value memfd_create_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  char name[250];
  size_t name_len;
  uint64_t size;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], name, sizeof(name), &name_len) != napi_ok)
    return throw_type(env, "memfdCreate(name, size): name must be a string");
  if (!arg_size(env, argv[1], &size)) return throw_type(env, "memfdCreate(name, size): size must be a safe integer >= 0");
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return throw_errno(env, "memfd_create", errno);
  if (ftruncate(fd, (off_t)size) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "ftruncate", err);
  }
  return make_int(env, fd);
}

static void unmap_finalize(napi_env env, void *data, void *hint) {
  munmap(data, (size_t)(uintptr_t)hint);
}

static napi_value mmap_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int fd;
  uint64_t size, offset = 0;
  if (argc < 2 || !arg_fd(env, argv[0], &fd) || !arg_size(env, argv[1], &size) || size == 0)
    return throw_type(env, "mmap(fd, size, offset): fd must be a descriptor and size a positive integer");
  if (argc >= 3 && !arg_size(env, argv[2], &offset)) return throw_type(env, "mmap: offset must be a safe integer >= 0");
  void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
  if (p == MAP_FAILED) return throw_errno(env, "mmap", errno);
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, (size_t)size, unmap_finalize, (void *)(uintptr_t)size, &ab) != napi_ok) {
    munmap(p, (size_t)size);
    return NULL;
  }
  return ab;
}

/* ---- descriptors ------------------------------------------------------------------------- */

static napi_value close_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int fd;
  if (argc < 1 || !arg_fd(env, argv[0], &fd)) return throw_type(env, "close(fd): fd must be a descriptor");
  /* Linux releases the descriptor even when close reports EINTR: never retry. */
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, "close", errno);
  return NULL;
}

static napi_value dup_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int fd;
  if (argc < 1 || !arg_fd(env, argv[0], &fd)) return throw_type(env, "dup(fd): fd must be a descriptor");
  int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (nfd < 0) return throw_errno(env, "fcntl(F_DUPFD_CLOEXEC)", errno);
  return make_int(env, nfd);
}

static napi_value set_nonblocking_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int fd;
  if (argc < 1 || !arg_fd(env, argv[0], &fd)) return throw_type(env, "setNonBlocking(fd): fd must be a descriptor");
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return throw_errno(env, "fcntl(F_GETFL)", errno);
  if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return throw_errno(env, "fcntl(F_SETFL)", errno);
  return NULL;
}

static napi_value fstat_size_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int fd;
  struct stat st;
  if (argc < 1 || !arg_fd(env, argv[0], &fd)) return throw_type(env, "fstatSize(fd): fd must be a descriptor");
  if (fstat(fd, &st) < 0) return throw_errno(env, "fstat", errno);
  return make_int(env, (int64_t)st.st_size);
}

/* fallocate(PUNCH_HOLE | KEEP_SIZE): the range reads as zero through every mapping and holds no
 * memory any more (shmem frees the pages; a partial page at either end is zeroed). */
static napi_value punch_hole_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int fd;
  uint64_t offset, length;
  if (argc < 3 || !arg_fd(env, argv[0], &fd) || !arg_size(env, argv[1], &offset) || !arg_size(env, argv[2], &length))
    return throw_type(env, "punchHole(fd, offset, length): fd must be a descriptor, offset and length safe integers >= 0");
  if (length == 0) return NULL;
  if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length) < 0)
    return throw_errno(env, "fallocate(FALLOC_FL_PUNCH_HOLE)", errno);
  return NULL;
}

static napi_value open_fd_count_fn(napi_env env, napi_callback_info info) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return throw_errno(env, "opendir(/proc/self/fd)", errno);
  int64_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return make_int(env, n - 1); /* the directory stream's own descriptor */
}

/* ---- eventfd ----------------------------------------------------------------------------- */

static napi_value eventfd_create_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  int32_t init = 0;
  bool semaphore = false;
  if (argc >= 1 && !arg_int32(env, argv[0], &init)) return throw_type(env, "eventfdCreate(initval): initval must be a number");
  if (argc >= 2) napi_get_value_bool(env, argv[1], &semaphore);
  if (init < 0) return throw_type(env, "eventfdCreate: initval must be >= 0");
  int fd = eventfd((unsigned)init, EFD_NONBLOCK | EFD_CLOEXEC | (semaphore ? EFD_SEMAPHORE : 0));
  if (fd < 0) return throw_errno(env, "eventfd", errno);
  return make_int(env, fd);
}

/* Returns true when added, false when the counter would overflow (EAGAIN). */
static napi_value eventfd_write_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  int fd;
  uint64_t v;
  if (argc < 2 || !arg_fd(env, argv[0], &fd) || !arg_size(env, argv[1], &v) || v == 0)
    return throw_type(env, "eventfdWrite(fd, value): value must be a positive integer");
  ssize_t r;
  do r = write(fd, &v, sizeof(v));
  while (r < 0 && errno == EINTR);
  napi_value out;
  if (r < 0) {
    if (errno == EAGAIN) {
      napi_get_boolean(env, false, &out);
      return out;
    }
    return throw_errno(env, "write(eventfd)", errno);
  }
  napi_get_boolean(env, true, &out);
  return out;
}

/* Returns the counter (then zero) or null when it is zero (EAGAIN). */
static napi_value eventfd_read_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int fd;
  uint64_t v;
  if (argc < 1 || !arg_fd(env, argv[0], &fd)) return throw_type(env, "eventfdRead(fd): fd must be a descriptor");
  ssize_t r;
  do r = read(fd, &v, sizeof(v));
  while (r < 0 && errno == EINTR);
  napi_value out;
  if (r < 0) {
    if (errno == EAGAIN) {
      napi_get_null(env, &out);
      return out;
    }
    return throw_errno(env, "read(eventfd)", errno);
  }
  napi_create_double(env, (double)v, &out);
  return out;
}

/* ---- UNIX stream sockets ----------------------------------------------------------------- */

static int fill_addr(napi_env env, napi_value v, struct sockaddr_un *addr) {
  size_t len;
  memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (napi_get_value_string_utf8(env, v, addr->sun_path, sizeof(addr->sun_path), &len) != napi_ok) return 0;
  /* A path that fills the buffer was truncated. */
  return len > 0 && len < sizeof(addr->sun_path) - 1;
}

static int new_socket(void) { return socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); }

static napi_value unix_listen_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  struct sockaddr_un addr;
  int32_t backlog = 16;
  if (argc < 1 || !fill_addr(env, argv[0], &addr))
    return throw_type(env, "unixListen(path): path must be a non-empty string shorter than 107 bytes");
  if (argc >= 2 && !arg_int32(env, argv[1], &backlog)) return throw_type(env, "unixListen: backlog must be a number");

  struct stat st;
  if (lstat(addr.sun_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
    /* A socket file is stale when nobody accepts on it any more. */
    int probe = new_socket();
    if (probe < 0) return throw_errno(env, "socket", errno);
    int r = connect(probe, (struct sockaddr *)&addr, sizeof(addr));
    int err = r < 0 ? errno : 0;
    close(probe);
    if (r == 0 || err == EAGAIN || err == EINPROGRESS) return throw_errno(env, "bind (a server is listening there)", EADDRINUSE);
    if (err == ECONNREFUSED && unlink(addr.sun_path) < 0 && errno != ENOENT) return throw_errno(env, "unlink", errno);
  }
  int fd = new_socket();
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind", err);
  }
  if (listen(fd, backlog) < 0) {
    int err = errno;
    close(fd);
    unlink(addr.sun_path);
    return throw_errno(env, "listen", err);
  }
  return make_int(env, fd);
}

/* Returns the connected descriptor; throws EAGAIN when the listener's backlog is full. */
static napi_value unix_connect_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  struct sockaddr_un addr;
  if (argc < 1 || !fill_addr(env, argv[0], &addr))
    return throw_type(env, "unixConnect(path): path must be a non-empty string shorter than 107 bytes");
  int fd = new_socket();
  if (fd < 0) return throw_errno(env, "socket", errno);
  int r;
  do r = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "connect", err);
  }
  return make_int(env, fd);
}

/* Returns the accepted descriptor or -1 when no connection is pending. */
static napi_value unix_accept_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int fd;
  if (argc < 1 || !arg_fd(env, argv[0], &fd)) return throw_type(env, "unixAccept(fd): fd must be a descriptor");
  int c;
  do c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (c < 0 && errno == EINTR);
  if (c < 0) {
    if (errno == EAGAIN || errno == ECONNABORTED) return make_int(env, -1);
    return throw_errno(env, "accept4", errno);
  }
  return make_int(env, c);
}

static napi_value socket_pair_fn(napi_env env, napi_callback_info info) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) return throw_errno(env, "socketpair", errno);
  napi_value arr;
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, make_int(env, sv[0]));
  napi_set_element(env, arr, 1, make_int(env, sv[1]));
  return arr;
}

/*
 * sendMsg(fd, bytes, fds?) -> bytes sent, or -1 when the socket would block. The descriptors
 * travel as SCM_RIGHTS with the first byte; the caller keeps ownership of them.
 */
static napi_value send_msg_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int fd;
  uint8_t *data;
  size_t len;
  if (argc < 2 || !arg_fd(env, argv[0], &fd) || !arg_bytes(env, argv[1], &data, &len) || len == 0)
    return throw_type(env, "sendMsg(fd, bytes, fds): bytes must be a non-empty Uint8Array");

  int fds[MAX_FDS_PER_MSG];
  uint32_t nfds = 0;
  if (argc >= 3) {
    napi_valuetype t;
    napi_typeof(env, argv[2], &t);
    if (t != napi_undefined && t != napi_null) {
      bool is_arr;
      if (napi_is_array(env, argv[2], &is_arr) != napi_ok || !is_arr)
        return throw_type(env, "sendMsg: fds must be an array of descriptors");
      napi_get_array_length(env, argv[2], &nfds);
      if (nfds > MAX_FDS_PER_MSG) return throw_type(env, "sendMsg: at most 253 descriptors fit in one message");
      for (uint32_t i = 0; i < nfds; i++) {
        napi_value el;
        napi_get_element(env, argv[2], i, &el);
        if (!arg_fd(env, el, &fds[i])) return throw_type(env, "sendMsg: every fd must be a non-negative integer");
      }
    }
  }

  struct iovec iov = {.iov_base = data, .iov_len = len};
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS_PER_MSG)];
    struct cmsghdr align;
  } ctrl;
  if (nfds > 0) {
    memset(&ctrl, 0, sizeof(ctrl));
    msg.msg_control = ctrl.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  ssize_t r;
  do r = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN) return make_int(env, -1);
    return throw_errno(env, "sendmsg", errno);
  }
  return make_int(env, r);
}

/*
 * recvMsg(fd, buffer, fdsOut: Int32Array) -> bytes received, 0 at end of stream, -1 when
 * nothing is pending. fdsOut[0] receives the number of descriptors, fdsOut[1] is 1 when some
 * were cut off (MSG_CTRUNC), and the descriptors follow from fdsOut[2].
 */
static napi_value recv_msg_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  int fd;
  uint8_t *data;
  size_t len;
  if (argc < 3 || !arg_fd(env, argv[0], &fd) || !arg_bytes(env, argv[1], &data, &len) || len == 0)
    return throw_type(env, "recvMsg(fd, buffer, fdsOut): buffer must be a non-empty Uint8Array");
  bool is_ta;
  napi_typedarray_type type;
  size_t out_len;
  void *out_p;
  if (napi_is_typedarray(env, argv[2], &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, argv[2], &type, &out_len, &out_p, NULL, NULL) != napi_ok || type != napi_int32_array ||
      out_len < 2)
    return throw_type(env, "recvMsg: fdsOut must be an Int32Array of at least 2 elements");
  int32_t *out = out_p;
  size_t cap = out_len - 2;
  if (cap > MAX_FDS_PER_MSG) cap = MAX_FDS_PER_MSG;
  out[0] = 0;
  out[1] = 0;

  struct iovec iov = {.iov_base = data, .iov_len = len};
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS_PER_MSG)];
    struct cmsghdr align;
  } ctrl;
  if (cap > 0) {
    msg.msg_control = ctrl.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * cap);
  }
  /* recvMsg's 4th argument `wait`: block as the fd's SO_RCVTIMEO allows (setReceiveTimeout);
   * its end and a signal both return -1, for the caller to look at its own deadline. */
  bool wait = false;
  if (argc >= 4) napi_get_value_bool(env, argv[3], &wait);
  ssize_t r;
  if (wait) {
    r = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (r < 0 && errno == EINTR) return make_int(env, -1);
  } else {
    do r = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
  }
  if (r < 0) {
    if (errno == EAGAIN) return make_int(env, -1);
    return throw_errno(env, "recvmsg", errno);
  }
  int32_t n = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int *got = (int *)CMSG_DATA(c);
    for (size_t i = 0; i < k; i++) {
      if ((size_t)n < cap) {
        out[2 + n++] = got[i];
      } else {
        close(got[i]);
        out[1] = 1;
      }
    }
  }
  out[0] = n;
  if (msg.msg_flags & MSG_CTRUNC) out[1] = 1;
  return make_int(env, r);
}

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
 * Wait, inside the readiness callback, for the fd to become readable again, exactly where and as
 * long as the loop itself would wait next: in poll(2) on the fd and on the loop's own epoll fd
 * (readable when any other handle of the loop has an event), for uv_backend_timeout (0 when a
 * timer is due, an immediate, a pending callback or a closing handle waits, or nothing keeps the
 * loop alive). 1 when the fd is readable; 0 when anything else needs the loop, which then runs
 * as usual. What this skips is the loop's bookkeeping between two messages of one peer (Node's
 * check phase allocates on every turn, which is what makes a busy server collect garbage).
 * Microtasks and nextTicks already ran when the callback returned (napi_make_callback).
 */
static int wait_in_place(poll_t *p) {
  uv_loop_t *loop = p->handle.loop;
  uv_update_time(loop);
  int timeout = uv_backend_timeout(loop);
  if (timeout == 0) return 0;
  struct pollfd pfd[2] = {{.fd = p->fd, .events = POLLIN}, {.fd = uv_backend_fd(loop), .events = POLLIN}};
  int r = poll(pfd, 2, timeout);
  if (r <= 0) return 0; /* timed out (a timer is due), interrupted (a signal), or failed: the loop's turn */
  return (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

static void poll_ready(uv_poll_t *h, int status, int events) {
  poll_t *p = h->data;
  if (p->closing) return;
  int again = poll_call(p, status, events);
  for (int32_t k = 0; again && k < p->hold && !p->closing; k++) {
    if (!wait_in_place(p)) return;
    again = poll_call(p, 0, UV_READABLE | IN_PLACE);
  }
}

static int poll_events(int32_t mask) {
  /* 1 readable, 2 writable, as UV_READABLE and UV_WRITABLE. */
  return (mask & 1 ? UV_READABLE : 0) | (mask & 2 ? UV_WRITABLE : 0) | UV_DISCONNECT;
}

/*
 * setReceiveTimeout(fd, ms): the socket blocks (O_NONBLOCK cleared: every send and receive here
 * passes MSG_DONTWAIT but recvMsg's waiting one) and a waiting receive ends after `ms`
 * (SO_RCVTIMEO, a timer-wheel timeout: no high-resolution timer armed per wait).
 */
static napi_value set_receive_timeout_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  int fd;
  int32_t ms;
  if (argc < 2 || !arg_fd(env, argv[0], &fd) || !arg_int32(env, argv[1], &ms) || ms <= 0)
    return throw_type(env, "setReceiveTimeout(fd, ms): ms must be a positive int32");
  struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) return throw_errno(env, "setsockopt(SO_RCVTIMEO)", errno);
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return throw_errno(env, "fcntl(F_GETFL)", errno);
  if (fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) return throw_errno(env, "fcntl(F_SETFL)", errno);
  return NULL;
}

static napi_value poll_start_fn(napi_env env, napi_callback_info info) {
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

static napi_value poll_update_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  int32_t mask;
  poll_t *p = argc >= 2 ? arg_poll(env, argv[0]) : NULL;
  if (!p || !arg_int32(env, argv[1], &mask)) return throw_type(env, "pollUpdate(handle, events): bad arguments");
  if (p->closing) return throw_errno(env, "uv_poll_start (handle stopped)", EBADF);
  int r = uv_poll_start(&p->handle, poll_events(mask), poll_ready);
  if (r < 0) return throw_errno(env, "uv_poll_start", -r);
  return NULL;
}

static napi_value poll_stop_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  poll_t *p = argc >= 1 ? arg_poll(env, argv[0]) : NULL;
  if (!p) return throw_type(env, "pollStop(handle): handle must come from pollStart");
  if (p->closing) return NULL;
  napi_remove_env_cleanup_hook(env, poll_env_cleanup, p);
  poll_release(p);
  return NULL;
}

static napi_value poll_ref_fn(napi_env env, napi_callback_info info) {
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

/*
 * waitFd(fd, events, timeoutMs): block in poll(2) until fd is readable (1) or writable (2) as
 * asked, or timeoutMs passes. Returns the events that are ready (0: timed out or interrupted;
 * the caller checks its own deadline). A hang-up or error counts as both, so that the next
 * recvmsg/sendmsg reports it.
 */
static napi_value wait_fd_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int fd;
  int32_t mask, timeout;
  if (argc < 3 || !arg_fd(env, argv[0], &fd) || !arg_int32(env, argv[1], &mask) ||
      !arg_int32(env, argv[2], &timeout) || timeout < 0)
    return throw_type(env, "waitFd(fd, events, timeoutMs): timeoutMs must be a non-negative int32");
  struct pollfd pfd = {.fd = fd, .events = (short)((mask & 1 ? POLLIN : 0) | (mask & 2 ? POLLOUT : 0))};
  int r = poll(&pfd, 1, timeout);
  if (r < 0) {
    if (errno == EINTR) return make_int(env, 0);
    return throw_errno(env, "poll", errno);
  }
  if (r == 0) return make_int(env, 0);
  if (pfd.revents & POLLNVAL) return throw_errno(env, "poll", EBADF);
  int ready = 0;
  if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) ready |= 1;
  if (pfd.revents & (POLLOUT | POLLHUP | POLLERR)) ready |= 2;
  return make_int(env, ready & mask);
}

/*
 * clockNs(out): CLOCK_MONOTONIC in ns into out[0] (a Float64Array; exact below 2^53 ns, 104
 * days of uptime), for deadlines and timings read without allocating: Date.now() and
 * performance.now() each return a new heap number.
 */
static napi_value clock_ns_fn(napi_env env, napi_callback_info info) {
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
      {"waitFd", NULL, wait_fd_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"clockNs", NULL, clock_ns_fn, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
