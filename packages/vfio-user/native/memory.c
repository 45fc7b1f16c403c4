/*
 * vfiokit_native: memfd and mmap (device memory shared between processes).
 */
#include "native.h"

/* ---- memfd and mmap ---------------------------------------------------------------------- */

napi_value memfd_create_fn(napi_env env, napi_callback_info info) {
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

napi_value mmap_fn(napi_env env, napi_callback_info info) {
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
