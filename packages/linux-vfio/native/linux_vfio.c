/*
 * linux_vfio: the raw operations of the Linux VFIO backend that Node has no API for.
 *
 *   ioctl(fd, request, bytes)  an ioctl whose argument is a struct (or a string) in `bytes`
 *   ioctlValue(fd, request, v) an ioctl whose argument is an integer (API version, extension, IOMMU type)
 *   address(buffer)            the user virtual address of an ArrayBuffer's memory, for DMA mapping
 *   mapRegion(fd, size, offset, writable) / unmapRegion(buffer)
 *                              a mapping of a device fd that ends when told: the kernel keeps the
 *                              device (and its group) open while a mapping of it exists, so a
 *                              closed device must not wait for the garbage collector
 *
 * Opening device nodes, pread/pwrite at region offsets (node:fs), eventfds and memfd mappings
 * (the @vfiokit/vfio-user addon, whose mappings live as long as their ArrayBuffer) are done
 * elsewhere; this file holds nothing that exists there.
 *
 * Conventions: an ioctl answers as the kernel does, its return value or -errno, never an
 * exception; a bad argument from JavaScript (not a descriptor, not a Uint8Array) throws a
 * TypeError; nothing here keeps a pointer past the call.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <node_api.h>

/*
 * Every struct ioctl runs on a private copy at least this large. A VFIO ioctl writes no more
 * than the argsz its caller claims, and the generic VFS ioctls a device fd also answers
 * (FIGETBSZ, FS_IOC_GETFSSYSFSPATH...) write at most a few hundred bytes; with the copy, an argsz
 * or a request number that claims more than the caller's buffer can never make the kernel
 * write into memory V8 owns. _IOC_SIZEMASK + 1 = 16 KiB is the most an encoded size can say;
 * 64 KiB leaves room for the longest capability chain a region reports.
 */
#define SCRATCH_MIN (64 * 1024)

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, "EINVAL", message);
  return NULL;
}

static napi_value make_int(napi_env env, int64_t v) {
  napi_value out;
  if (napi_create_int64(env, v, &out) != napi_ok) return NULL;
  return out;
}

static int arg_fd(napi_env env, napi_value v, int *fd) {
  napi_valuetype t;
  int32_t x;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  if (napi_get_value_int32(env, v, &x) != napi_ok || x < 0) return 0;
  *fd = x;
  return 1;
}

/* An ioctl request is an unsigned 32-bit number (the kernel takes `unsigned int cmd`). */
static int arg_request(napi_env env, napi_value v, unsigned long *req) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
  if (!(d >= 0) || d > 4294967295.0 || d != (double)(uint32_t)d) return 0;
  *req = (unsigned long)(uint32_t)d;
  return 1;
}

static napi_value ioctl_fn(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int fd;
  unsigned long req;
  bool is_ta;
  napi_typedarray_type type;
  size_t len;
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 3 || !arg_fd(env, argv[0], &fd) || !arg_request(env, argv[1], &req))
    return throw_type(env, "ioctl(fd, request, bytes): fd must be a descriptor and request a u32");
  if (napi_is_typedarray(env, argv[2], &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, argv[2], &type, &len, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array)
    return throw_type(env, "ioctl(fd, request, bytes): bytes must be a Uint8Array");

  size_t size = len > SCRATCH_MIN ? len : SCRATCH_MIN;
  uint8_t *scratch = calloc(1, size);
  if (scratch == NULL) return make_int(env, -ENOMEM);
  if (len > 0) memcpy(scratch, data, len);
  /*
   * SAFETY: `scratch` is ours, zeroed past the caller's bytes and at least SCRATCH_MIN long, so
   * whatever the request and whatever argsz the bytes claim, the kernel reads and writes only
   * inside it (an access past it faults in the kernel and comes back as EFAULT, it does not
   * corrupt). Only the caller's `len` bytes are copied back. Pointers embedded in the struct
   * (a DMA map's vaddr) are the caller's to keep valid; the TypeScript layer builds those.
   */
  int ret = ioctl(fd, req, scratch);
  int err = errno;
  if (len > 0) memcpy(data, scratch, len);
  free(scratch);
  return make_int(env, ret < 0 ? -(int64_t)err : ret);
}

static napi_value ioctl_value_fn(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int fd;
  unsigned long req;
  double d;
  napi_valuetype t;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 3 || !arg_fd(env, argv[0], &fd) || !arg_request(env, argv[1], &req) ||
      napi_typeof(env, argv[2], &t) != napi_ok || t != napi_number ||
      napi_get_value_double(env, argv[2], &d) != napi_ok || !(d >= 0) || d > 4294967295.0 ||
      d != (double)(uint32_t)d)
    return throw_type(env, "ioctlValue(fd, request, value): value must be a u32");
  /*
   * SAFETY: the argument is passed by value (VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION,
   * VFIO_SET_IOMMU take an integer, not a pointer), so the kernel touches no memory of ours.
   * Requests that take a pointer must use ioctl(), which the TypeScript layer guarantees.
   */
  int ret = ioctl(fd, req, (unsigned long)(uint32_t)d);
  return make_int(env, ret < 0 ? -(int64_t)errno : ret);
}

static napi_value address_fn(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool is_ab = false;
  bool is_ta = false;
  void *data = NULL;
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc >= 1 && napi_is_arraybuffer(env, argv[0], &is_ab) == napi_ok && is_ab) {
    if (napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok) return NULL;
  } else if (argc >= 1 && napi_is_typedarray(env, argv[0], &is_ta) == napi_ok && is_ta) {
    napi_typedarray_type type;
    if (napi_get_typedarray_info(env, argv[0], &type, &len, &data, NULL, NULL) != napi_ok) return NULL;
  } else {
    return throw_type(env, "address(buffer): buffer must be an ArrayBuffer or a typed array");
  }
  /*
   * SAFETY: reading a pointer value touches no memory. The backing store of an ArrayBuffer never
   * moves while the buffer lives; the caller keeps the buffer referenced for as long as the
   * kernel holds the address (until VFIO_IOMMU_UNMAP_DMA / IOMMU_IOAS_UNMAP).
   */
  napi_value out;
  if (napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)data, &out) != napi_ok) return NULL;
  return out;
}

/* A live device mapping; `unmapped` keeps the finalizer from unmapping twice. */
struct mapping {
  void *addr;
  size_t len;
  int unmapped;
  struct mapping *next;
};

/* The mappings not yet collected, for unmapRegion to find by address (main thread only). */
static struct mapping *mappings = NULL;

static void mapping_finalize(napi_env env, void *data, void *hint) {
  struct mapping *m = hint;
  struct mapping **p = &mappings;
  while (*p && *p != m) p = &(*p)->next;
  if (*p) *p = m->next;
  /* SAFETY: the ArrayBuffer is being collected, so nothing can reach [addr, addr + len) any more. */
  if (!m->unmapped) munmap(m->addr, m->len);
  free(m);
}

static int arg_u64(napi_env env, napi_value v, uint64_t *out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
  if (!(d >= 0) || d > 9007199254740991.0 || d != (double)(uint64_t)d) return 0;
  *out = (uint64_t)d;
  return 1;
}

static napi_value map_region_fn(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int fd;
  uint64_t size, offset;
  bool writable = true;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 3 || !arg_fd(env, argv[0], &fd) || !arg_u64(env, argv[1], &size) || size == 0 ||
      !arg_u64(env, argv[2], &offset))
    return throw_type(env, "mapRegion(fd, size, offset, writable): fd, a size > 0 and an offset");
  if (argc >= 4) napi_get_value_bool(env, argv[3], &writable);
  struct mapping *m = calloc(1, sizeof(*m));
  if (m == NULL) return make_int(env, -ENOMEM);
  /* SAFETY: a fresh mapping chosen by the kernel (addr NULL), so it replaces nothing of ours. */
  void *addr = mmap(NULL, (size_t)size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, (off_t)offset);
  if (addr == MAP_FAILED) {
    int err = errno;
    free(m);
    return make_int(env, -err);
  }
  m->addr = addr;
  m->len = (size_t)size;
  napi_value out;
  if (napi_create_external_arraybuffer(env, addr, (size_t)size, mapping_finalize, m, &out) != napi_ok) {
    munmap(addr, (size_t)size);
    free(m);
    return NULL;
  }
  m->next = mappings;
  mappings = m;
  return out;
}

static napi_value unmap_region_fn(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool is_ab = false;
  void *data = NULL;
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_is_arraybuffer(env, argv[0], &is_ab) != napi_ok || !is_ab)
    return throw_type(env, "unmapRegion(buffer): buffer must be an ArrayBuffer from mapRegion");
  if (napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok) return NULL;
  struct mapping *m = mappings;
  while (m && !(m->addr == data && !m->unmapped)) m = m->next;
  if (m == NULL) return make_int(env, 0); /* already unmapped (detached buffers have no data) */
  /*
   * SAFETY: no JavaScript runs between the munmap and the detach (one thread), and after the
   * detach no view can reach the range again; the finalizer (which may run inside the detach)
   * sees `unmapped` and leaves the range, which the kernel may reuse, alone. `m` is not touched
   * after the detach, since the finalizer frees it.
   */
  m->unmapped = 1;
  munmap(m->addr, m->len);
  if (napi_detach_arraybuffer(env, argv[0]) != napi_ok) return NULL;
  return make_int(env, 0);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"ioctl", NULL, ioctl_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ioctlValue", NULL, ioctl_value_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"address", NULL, address_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mapRegion", NULL, map_region_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unmapRegion", NULL, unmap_region_fn, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
