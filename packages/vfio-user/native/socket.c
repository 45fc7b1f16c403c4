/*
 * vfiokit_native: UNIX stream sockets with SCM_RIGHTS, and the bounded blocking waits of a caller
 * that waits for a reply on its own thread.
 */
#include "native.h"

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

napi_value unix_listen_fn(napi_env env, napi_callback_info info) {
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
napi_value unix_connect_fn(napi_env env, napi_callback_info info) {
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
napi_value unix_accept_fn(napi_env env, napi_callback_info info) {
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

napi_value socket_pair_fn(napi_env env, napi_callback_info info) {
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
napi_value send_msg_fn(napi_env env, napi_callback_info info) {
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
napi_value recv_msg_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
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
   * its end and a signal both return -1, for the caller to look at its own deadline. With a
   * waiter (5th argument, waiterCreate), poll first for as long as the waiter's window says
   * (poll.c's adaptive polling), and set RECV_POLLED in fdsOut[1] when that found the message. */
  bool wait = false;
  if (argc >= 4) napi_get_value_bool(env, argv[3], &wait);
  adaptive_poll_t *waiter = NULL;
  if (wait && argc >= 5) {
    napi_valuetype t;
    void *w = NULL;
    if (napi_typeof(env, argv[4], &t) == napi_ok && t == napi_external &&
        napi_get_value_external(env, argv[4], &w) == napi_ok)
      waiter = w;
  }
  ssize_t r;
  if (wait) {
    int polled = 0, done = 0;
    int64_t start = 0;
    r = -1;
    if (waiter != NULL) {
      int64_t window = adaptive_window(waiter);
      start = now_ns();
      if (window > 0) {
        int64_t until = start + window;
        do r = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        while (r < 0 && (errno == EAGAIN || errno == EINTR) && now_ns() < until);
        polled = r >= 0;
        /* a message, the peer's end or a failure: nothing to wait for */
        done = r >= 0 || (errno != EAGAIN && errno != EINTR);
      }
    }
    if (!done) r = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (waiter != NULL) adaptive_waited(waiter, start);
    if (r < 0 && errno == EINTR) return make_int(env, -1);
    if (polled) out[1] |= RECV_POLLED;
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
        out[1] |= RECV_FDS_TRUNCATED;
      }
    }
  }
  out[0] = n;
  if (msg.msg_flags & MSG_CTRUNC) out[1] |= RECV_FDS_TRUNCATED;
  return make_int(env, r);
}

static void waiter_finalize(napi_env env, void *data, void *hint) { free(data); }

/* waiterCreate(): the adaptive polling state of one caller's waits for replies (recvMsg's waiter). */
napi_value waiter_create_fn(napi_env env, napi_callback_info info) {
  adaptive_poll_t *a = calloc(1, sizeof(*a));
  if (!a) return throw_errno(env, "calloc", ENOMEM);
  napi_value ext;
  if (napi_create_external(env, a, waiter_finalize, NULL, &ext) != napi_ok) {
    free(a);
    return NULL;
  }
  return ext;
}

/* waiterWindow(waiter): how long its next wait polls before it blocks, in ns. */
napi_value waiter_window_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  napi_valuetype t;
  void *w = NULL;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, argv[0], &w) != napi_ok)
    return throw_type(env, "waiterWindow(waiter): waiter must come from waiterCreate");
  return make_int(env, ((adaptive_poll_t *)w)->poll_ns);
}

/*
 * setReceiveTimeout(fd, ms): the socket blocks (O_NONBLOCK cleared: every send and receive here
 * passes MSG_DONTWAIT but recvMsg's waiting one) and a waiting receive ends after `ms`
 * (SO_RCVTIMEO, a timer-wheel timeout: no high-resolution timer armed per wait).
 */
napi_value set_receive_timeout_fn(napi_env env, napi_callback_info info) {
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

/*
 * waitFd(fd, events, timeoutMs): block in poll(2) until fd is readable (1) or writable (2) as
 * asked, or timeoutMs passes. Returns the events that are ready (0: timed out or interrupted;
 * the caller checks its own deadline). A hang-up or error counts as both, so that the next
 * recvmsg/sendmsg reports it.
 */
napi_value wait_fd_fn(napi_env env, napi_callback_info info) {
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
