/*
 * vfiokit_native: descriptors (close, dup, size, hole punching, the open count) and eventfds.
 */
#include "native.h"

/* ---- descriptors ------------------------------------------------------------------------- */

napi_value close_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int fd;
  if (argc < 1 || !arg_fd(env, argv[0], &fd)) return throw_type(env, "close(fd): fd must be a descriptor");
  /* Linux releases the descriptor even when close reports EINTR: never retry. */
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, "close", errno);
  return NULL;
}

napi_value dup_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int fd;
  if (argc < 1 || !arg_fd(env, argv[0], &fd)) return throw_type(env, "dup(fd): fd must be a descriptor");
  int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (nfd < 0) return throw_errno(env, "fcntl(F_DUPFD_CLOEXEC)", errno);
  return make_int(env, nfd);
}

napi_value set_nonblocking_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int fd;
  if (argc < 1 || !arg_fd(env, argv[0], &fd)) return throw_type(env, "setNonBlocking(fd): fd must be a descriptor");
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return throw_errno(env, "fcntl(F_GETFL)", errno);
  if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return throw_errno(env, "fcntl(F_SETFL)", errno);
  return NULL;
}

napi_value fstat_size_fn(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int fd;
  struct stat st;
  if (argc < 1 || !arg_fd(env, argv[0], &fd)) return throw_type(env, "fstatSize(fd): fd must be a descriptor");
  if (fstat(fd, &st) < 0) return throw_errno(env, "fstat", errno);
  return make_int(env, (int64_t)st.st_size);
}

/* fallocate(PUNCH_HOLE | KEEP_SIZE): the range reads as zero through every mapping and holds no
 * memory any more (shmem frees the pages; a partial page at either end is zeroed). */
napi_value punch_hole_fn(napi_env env, napi_callback_info info) {
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

napi_value open_fd_count_fn(napi_env env, napi_callback_info info) {
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

napi_value eventfd_create_fn(napi_env env, napi_callback_info info) {
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
napi_value eventfd_write_fn(napi_env env, napi_callback_info info) {
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
napi_value eventfd_read_fn(napi_env env, napi_callback_info info) {
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
