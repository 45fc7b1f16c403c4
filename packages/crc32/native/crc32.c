/*
 * CRC32 (the IEEE 802.3 polynomial, bit-reflected, exactly zlib's crc32()) over a buffer, and
 * the same while copying the buffer into another, in one pass. On x86-64 with PCLMULQDQ the
 * bulk is folded 64 bytes at a time with carry-less multiplies (Intel, "Fast CRC Computation
 * for Generic Polynomials Using PCLMULQDQ Instruction", 2009: the fold constants k1..k5 and the
 * Barrett constants P'(x), u' for the reflected polynomial 0x1DB710641 are from its appendix);
 * the copy stores the 16-byte blocks the fold has just loaded. Heads shorter than 64 bytes and
 * tails shorter than 16 go through a byte table. Without the instruction `accelerated` is false
 * and the TypeScript side uses node:zlib.
 *
 * Ahead: one background thread per checker computes the CRCs of ranges of one buffer, in the
 * order they were submitted, while the JavaScript thread does something else (a migration
 * stream's transport moves the run before); next() takes the oldest result, waiting for it.
 */
#include <node_api.h>
#include <stdint.h>
#include <uv.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_CLMUL_KERNEL 1
#endif

static uint32_t table[256];

static void make_table(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
}

/* `crc` is the running register (inverted); copies to `dst` when it is not NULL. */
static uint32_t bytewise(uint32_t crc, const uint8_t *src, uint8_t *dst, size_t len) {
  for (size_t i = 0; i < len; i++) {
    uint8_t b = src[i];
    if (dst) dst[i] = b;
    crc = table[(crc ^ b) & 0xff] ^ (crc >> 8);
  }
  return crc;
}

#ifdef HAVE_CLMUL_KERNEL
static int clmul_ok, wide_ok;

static int detect_clmul(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  return (c & bit_PCLMUL) && (c & bit_SSE4_1);
}

/* AVX-512F with VPCLMULQDQ, and the OS saves the zmm state (XCR0 bits 1, 2, 5, 6, 7). */
__attribute__((target("xsave"))) static int detect_wide(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return 0;
  if ((_xgetbv(0) & 0xe6) != 0xe6) return 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  return (b & bit_AVX512F) && (c & bit_VPCLMULQDQ);
}

#define K1K2 0x01c6e41596LL, 0x0154442bd4LL /* fold by 512 bits: x^(512-32), x^(512+32) mod P */

/* Store a 16-byte block; non-temporal when the destination will not be read soon. */
#define PUT(p, v) (nt ? _mm_stream_si128((__m128i *)(p), v) : _mm_storeu_si128((__m128i *)(p), v))

/* The lanes x1..x4 hold 64 folded bytes; fold in the rest (a multiple of 16) and reduce. */
__attribute__((target("pclmul,sse4.1"), always_inline)) static inline uint32_t
finish(__m128i x1, __m128i x2, __m128i x3, __m128i x4, const uint8_t *src, uint8_t *dst, size_t len,
       const int copy, const int nt) {
  const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009eLL, 0x01751997d0LL);
  const __m128i k5k0 = _mm_set_epi64x(0, 0x0163cd6124LL);
  const __m128i poly = _mm_set_epi64x(0x01f7011641LL, 0x01db710641LL);
  const __m128i low32 = _mm_setr_epi32(~0, 0, ~0, 0);
  /* four lanes into one */
  __m128i t = _mm_clmulepi64_si128(x1, k3k4, 0x00);
  x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), x2), t);
  t = _mm_clmulepi64_si128(x1, k3k4, 0x00);
  x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), x3), t);
  t = _mm_clmulepi64_si128(x1, k3k4, 0x00);
  x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), x4), t);
  while (len >= 16) {
    __m128i y = _mm_loadu_si128((const __m128i *)src);
    if (copy) {
      PUT(dst, y);
      dst += 16;
    }
    t = _mm_clmulepi64_si128(x1, k3k4, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), y), t);
    src += 16;
    len -= 16;
  }
  /* 128 bits to 64 */
  t = _mm_clmulepi64_si128(x1, k3k4, 0x10);
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), t);
  t = _mm_srli_si128(x1, 4);
  x1 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, low32), k5k0, 0x00), t);
  /* Barrett reduction to 32 bits */
  t = _mm_clmulepi64_si128(_mm_and_si128(x1, low32), poly, 0x10);
  t = _mm_clmulepi64_si128(_mm_and_si128(t, low32), poly, 0x00);
  x1 = _mm_xor_si128(x1, t);
  return (uint32_t)_mm_extract_epi32(x1, 1);
}

/* len >= 64 and a multiple of 16; `crc` is the running register. */
__attribute__((target("pclmul,sse4.1"), always_inline)) static inline uint32_t
fold(uint32_t crc, const uint8_t *src, uint8_t *dst, size_t len, const int copy, const int nt) {
  const __m128i k1k2 = _mm_set_epi64x(K1K2);
  __m128i x1 = _mm_loadu_si128((const __m128i *)(src + 0x00));
  __m128i x2 = _mm_loadu_si128((const __m128i *)(src + 0x10));
  __m128i x3 = _mm_loadu_si128((const __m128i *)(src + 0x20));
  __m128i x4 = _mm_loadu_si128((const __m128i *)(src + 0x30));
  if (copy) {
    PUT(dst + 0x00, x1);
    PUT(dst + 0x10, x2);
    PUT(dst + 0x20, x3);
    PUT(dst + 0x30, x4);
    dst += 64;
  }
  x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
  src += 64;
  len -= 64;
  while (len >= 64) {
    __m128i y1 = _mm_loadu_si128((const __m128i *)(src + 0x00));
    __m128i y2 = _mm_loadu_si128((const __m128i *)(src + 0x10));
    __m128i y3 = _mm_loadu_si128((const __m128i *)(src + 0x20));
    __m128i y4 = _mm_loadu_si128((const __m128i *)(src + 0x30));
    if (copy) {
      PUT(dst + 0x00, y1);
      PUT(dst + 0x10, y2);
      PUT(dst + 0x20, y3);
      PUT(dst + 0x30, y4);
      dst += 64;
    }
    __m128i l1 = _mm_clmulepi64_si128(x1, k1k2, 0x00);
    __m128i l2 = _mm_clmulepi64_si128(x2, k1k2, 0x00);
    __m128i l3 = _mm_clmulepi64_si128(x3, k1k2, 0x00);
    __m128i l4 = _mm_clmulepi64_si128(x4, k1k2, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k1k2, 0x11), l1), y1);
    x2 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x2, k1k2, 0x11), l2), y2);
    x3 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x3, k1k2, 0x11), l3), y3);
    x4 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x4, k1k2, 0x11), l4), y4);
    src += 64;
    len -= 64;
  }
  return finish(x1, x2, x3, x4, src, dst, len, copy, nt);
}

/* The same 256 bytes at a time in four zmm registers (16 lanes): fold by 2048 bits. */
#define WIDE __attribute__((target("pclmul,sse4.1,avx512f,vpclmulqdq"), always_inline)) static inline
#define PUT512(p, v) (nt ? _mm512_stream_si512((void *)(p), v) : _mm512_storeu_si512((void *)(p), v))

WIDE __m512i fold512(__m512i x, __m512i k, __m512i y) {
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11), y,
                                   0x96);
}

/* len >= 256 and a multiple of 16. */
WIDE uint32_t fold_wide(uint32_t crc, const uint8_t *src, uint8_t *dst, size_t len, const int copy, const int nt) {
  /* x^(2048-32), x^(2048+32) mod P, in every lane */
  const __m512i k2048 = _mm512_broadcast_i32x4(_mm_set_epi64x(0x01322d1430LL, 0x011542778aLL));
  const __m512i k512 = _mm512_broadcast_i32x4(_mm_set_epi64x(K1K2));
  __m512i z1 = _mm512_loadu_si512((const void *)(src + 0x00));
  __m512i z2 = _mm512_loadu_si512((const void *)(src + 0x40));
  __m512i z3 = _mm512_loadu_si512((const void *)(src + 0x80));
  __m512i z4 = _mm512_loadu_si512((const void *)(src + 0xc0));
  if (copy) {
    PUT512(dst + 0x00, z1);
    PUT512(dst + 0x40, z2);
    PUT512(dst + 0x80, z3);
    PUT512(dst + 0xc0, z4);
    dst += 256;
  }
  z1 = _mm512_xor_si512(z1, _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)crc)));
  src += 256;
  len -= 256;
  while (len >= 256) {
    __m512i y1 = _mm512_loadu_si512((const void *)(src + 0x00));
    __m512i y2 = _mm512_loadu_si512((const void *)(src + 0x40));
    __m512i y3 = _mm512_loadu_si512((const void *)(src + 0x80));
    __m512i y4 = _mm512_loadu_si512((const void *)(src + 0xc0));
    if (copy) {
      PUT512(dst + 0x00, y1);
      PUT512(dst + 0x40, y2);
      PUT512(dst + 0x80, y3);
      PUT512(dst + 0xc0, y4);
      dst += 256;
    }
    z1 = fold512(z1, k2048, y1);
    z2 = fold512(z2, k2048, y2);
    z3 = fold512(z3, k2048, y3);
    z4 = fold512(z4, k2048, y4);
    src += 256;
    len -= 256;
  }
  /* four registers into one (each lane folded onto the lane 512 bits on), then its four lanes */
  z2 = fold512(z1, k512, z2);
  z3 = fold512(z2, k512, z3);
  z4 = fold512(z3, k512, z4);
  return finish(_mm512_extracti32x4_epi32(z4, 0), _mm512_extracti32x4_epi32(z4, 1),
                _mm512_extracti32x4_epi32(z4, 2), _mm512_extracti32x4_epi32(z4, 3), src, dst, len, copy, nt);
}

/* One specialisation per (width, copy, non-temporal) so the loops carry no branch. */
__attribute__((target("pclmul,sse4.1"))) static uint32_t fold_only(uint32_t crc, const uint8_t *src, size_t len) {
  return fold(crc, src, NULL, len, 0, 0);
}
__attribute__((target("pclmul,sse4.1"))) static uint32_t fold_copy(uint32_t crc, const uint8_t *src, uint8_t *dst,
                                                                  size_t len) {
  return fold(crc, src, dst, len, 1, 0);
}
__attribute__((target("pclmul,sse4.1,avx512f,vpclmulqdq"))) static uint32_t wide_only(uint32_t crc,
                                                                                     const uint8_t *src, size_t len) {
  return fold_wide(crc, src, NULL, len, 0, 0);
}
__attribute__((target("pclmul,sse4.1,avx512f,vpclmulqdq"))) static uint32_t wide_copy(uint32_t crc,
                                                                                     const uint8_t *src,
                                                                                     uint8_t *dst, size_t len) {
  return fold_wide(crc, src, dst, len, 1, 0);
}
__attribute__((target("pclmul,sse4.1,avx512f,vpclmulqdq"))) static uint32_t wide_stream(uint32_t crc,
                                                                                       const uint8_t *src,
                                                                                       uint8_t *dst, size_t len) {
  uint32_t r = fold_wide(crc, src, dst, len, 1, 1);
  _mm_sfence();
  return r;
}
#endif

/*
 * A copy this long goes around the caches (non-temporal stores): the migration streams it
 * serves write device memory and guest RAM that nobody reads right after, as memcpy does
 * for large copies.
 */
#define STREAM_MIN (256 * 1024)

/* zlib's crc32(seed, src, len), copying to dst (not overlapping src) when dst is not NULL. */
static uint32_t crc32_copy(uint32_t seed, const uint8_t *src, uint8_t *dst, size_t len) {
  /* A long copy to a destination off a 64-byte line (a migration record's payload cut by a chunk
   * boundary lands anywhere): the bytes up to the next line first, so the rest streams. */
  if (dst && len >= STREAM_MIN + 64 && ((uintptr_t)dst & 63) != 0) {
    size_t head = 64 - ((uintptr_t)dst & 63);
    seed = crc32_copy(seed, src, dst, head);
    src += head;
    dst += head;
    len -= head;
  }
  uint32_t crc = ~seed;
#ifdef HAVE_CLMUL_KERNEL
  if (clmul_ok && len >= 64) {
    size_t bulk = len & ~(size_t)15;
    if (!wide_ok || bulk < 256)
      crc = dst ? fold_copy(crc, src, dst, bulk) : fold_only(crc, src, bulk);
    else if (!dst)
      crc = wide_only(crc, src, bulk);
    else if (bulk >= STREAM_MIN && ((uintptr_t)dst & 63) == 0)
      crc = wide_stream(crc, src, dst, bulk);
    else
      crc = wide_copy(crc, src, dst, bulk);
    src += bulk;
    if (dst) dst += bulk;
    len -= bulk;
  }
#endif
  return ~bytewise(crc, src, dst, len);
}

/* ---- N-API ------------------------------------------------------------------------------------ */

static napi_value fail(napi_env env, const char *message) {
  napi_throw_range_error(env, NULL, message);
  return NULL;
}

static int bytes_of(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is;
  napi_typedarray_type type;
  void *p;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  if (napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok) return 0;
  if (type != napi_uint8_array) return 0;
  *data = p;
  return 1;
}

static napi_value u32(napi_env env, uint32_t n) {
  napi_value r;
  napi_create_uint32(env, n, &r);
  return r;
}

/* crc32(bytes: Uint8Array, seed: number): number */
static napi_value js_crc32(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  uint8_t *src;
  size_t len;
  uint32_t seed;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || !bytes_of(env, argv[0], &src, &len)) return fail(env, "crc32(bytes, seed): bytes must be a Uint8Array");
  if (napi_get_value_uint32(env, argv[1], &seed) != napi_ok) return fail(env, "crc32(bytes, seed): seed must be a number");
  return u32(env, crc32_copy(seed, src, NULL, len));
}

/* copyCrc32(target: Uint8Array, offset: number, bytes: Uint8Array, seed: number): number */
static napi_value js_copy_crc32(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  uint8_t *dst, *src;
  size_t dlen, len;
  int64_t offset;
  uint32_t seed;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4 || !bytes_of(env, argv[0], &dst, &dlen) || !bytes_of(env, argv[2], &src, &len))
    return fail(env, "copyCrc32(target, offset, bytes, seed): target and bytes must be Uint8Arrays");
  if (napi_get_value_int64(env, argv[1], &offset) != napi_ok || napi_get_value_uint32(env, argv[3], &seed) != napi_ok)
    return fail(env, "copyCrc32(target, offset, bytes, seed): offset and seed must be numbers");
  if (offset < 0 || (uint64_t)offset > dlen || len > dlen - (size_t)offset)
    return fail(env, "copyCrc32: the bytes do not fit in the target at that offset");
  dst += offset;
  if (dst < src + len && src < dst + len) {
    /* overlapping views of one buffer: check the source first, then move it */
    uint32_t crc = crc32_copy(seed, src, NULL, len);
    memmove(dst, src, len);
    return u32(env, crc);
  }
  return u32(env, crc32_copy(seed, src, dst, len));
}

/* ---- Ahead: CRCs of ranges of one buffer on a background thread ----------------------------- */

/* Ranges submitted and not yet taken, at most (the TypeScript side says so before it gets here). */
#define AHEAD_SLOTS 64
/* The thread looks at `stop` between pieces this long, so close() waits for one piece at most. */
#define AHEAD_PIECE (256 * 1024)
/* How long the thread looks for the next range before it sleeps. */
#define AHEAD_SPIN_NS 200000
#if defined(__x86_64__) || defined(__i386__)
#define spin_pause() __builtin_ia32_pause()
#else
#define spin_pause() ((void)0)
#endif

typedef struct {
  napi_ref memory_ref; /* keeps the buffer the thread reads alive while the checker is open */
  const uint8_t *memory;
  size_t memory_len;
  uv_thread_t thread;
  uv_mutex_t lock;
  uv_cond_t work; /* the thread waits here for a range or for stop */
  struct {
    uint64_t job; /* which submitted range the slot holds (its position in the ring) */
    size_t offset, length;
    uint32_t crc;
    int done;
  } slot[AHEAD_SLOTS];
  /* ring positions, counted up forever: taken <= started <= submitted <= taken + AHEAD_SLOTS;
   * a range is started by the thread or, when the thread has not come to it yet, by next() */
  uint64_t taken, started, submitted;
  int stop; /* written under `lock`, read by the thread between pieces without it */
  int open; /* the thread runs (cleared by close()) */
} ahead_t;

/* The CRC of one range, in pieces; gives up once `stop` is set (the result is then dropped). */
static uint32_t ahead_range(ahead_t *a, size_t at, size_t left) {
  uint32_t crc = 0;
  while (left > 0 && !__atomic_load_n(&a->stop, __ATOMIC_RELAXED)) {
    size_t n = left < AHEAD_PIECE ? left : AHEAD_PIECE;
    crc = crc32_copy(crc, a->memory + at, NULL, n);
    at += n;
    left -= n;
  }
  return crc;
}

/* The CRC of range `job`, unless next() has computed it already (and perhaps taken it). */
static void ahead_done(ahead_t *a, uint64_t job, uint32_t crc) {
  if (a->slot[job % AHEAD_SLOTS].job != job || a->slot[job % AHEAD_SLOTS].done) return;
  a->slot[job % AHEAD_SLOTS].crc = crc;
  a->slot[job % AHEAD_SLOTS].done = 1;
}

static void ahead_main(void *arg) {
  ahead_t *a = arg;
  uv_mutex_lock(&a->lock);
  for (;;) {
    if (!a->stop && a->started == a->submitted) {
      /* A stream submits its next range about as often as the transport moves one (a 1 MiB run
       * every ~60 us): look for it for a while before sleeping, so that in a stream the thread
       * stays on its CPU instead of being woken, and perhaps moved, for every range. */
      uint64_t seen = a->submitted, until = uv_hrtime() + AHEAD_SPIN_NS;
      uv_mutex_unlock(&a->lock);
      while (__atomic_load_n(&a->submitted, __ATOMIC_RELAXED) == seen && !__atomic_load_n(&a->stop, __ATOMIC_RELAXED) &&
             uv_hrtime() < until)
        spin_pause();
      uv_mutex_lock(&a->lock);
    }
    while (!a->stop && a->started == a->submitted) uv_cond_wait(&a->work, &a->lock);
    if (a->stop) break;
    uint64_t job = a->started++;
    size_t at = a->slot[job % AHEAD_SLOTS].offset, length = a->slot[job % AHEAD_SLOTS].length;
    uv_mutex_unlock(&a->lock);
    /* SAFETY: submit() checked [at, at + length) lies in the buffer, which memory_ref keeps alive
     * until close() has joined this thread; the owner does not change those bytes before next(). */
    uint32_t crc = ahead_range(a, at, length);
    uv_mutex_lock(&a->lock);
    if (a->stop) break;
    ahead_done(a, job, crc);
  }
  uv_mutex_unlock(&a->lock);
}

/* Stop the thread (dropping queued ranges), join it and let the buffer go. */
static void ahead_close(napi_env env, ahead_t *a) {
  if (!a->open) return;
  uv_mutex_lock(&a->lock);
  __atomic_store_n(&a->stop, 1, __ATOMIC_RELAXED);
  uv_cond_signal(&a->work);
  uv_mutex_unlock(&a->lock);
  uv_thread_join(&a->thread);
  a->open = 0;
  uv_cond_destroy(&a->work);
  uv_mutex_destroy(&a->lock);
  napi_delete_reference(env, a->memory_ref);
  a->memory_ref = NULL;
  a->memory = NULL;
}

static void ahead_finalize(napi_env env, void *data, void *hint) {
  ahead_close(env, data);
  free(data);
}

static ahead_t *ahead_this(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *a = NULL;
  napi_get_cb_info(env, info, argc, argv, &self, NULL);
  if (napi_unwrap(env, self, &a) != napi_ok || a == NULL) {
    fail(env, "Ahead: not a checker object");
    return NULL;
  }
  if (!((ahead_t *)a)->open) {
    napi_throw_error(env, NULL, "Ahead: the checker is closed; make a new one");
    return NULL;
  }
  return a;
}

/* new Ahead(memory: Uint8Array) */
static napi_value js_ahead_new(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self;
  uint8_t *data;
  size_t len;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  if (argc < 1 || !bytes_of(env, argv[0], &data, &len)) return fail(env, "new Ahead(memory): memory must be a Uint8Array");
  ahead_t *a = calloc(1, sizeof *a);
  if (a == NULL) {
    napi_throw_error(env, NULL, "Ahead: out of memory");
    return NULL;
  }
  a->memory = data;
  a->memory_len = len;
  if (uv_mutex_init(&a->lock) != 0) {
    free(a);
    napi_throw_error(env, NULL, "Ahead: uv_mutex_init failed");
    return NULL;
  }
  uv_cond_init(&a->work);
  napi_create_reference(env, argv[0], 1, &a->memory_ref);
  if (uv_thread_create(&a->thread, ahead_main, a) != 0) {
    napi_delete_reference(env, a->memory_ref);
    uv_cond_destroy(&a->work);
    uv_mutex_destroy(&a->lock);
    free(a);
    napi_throw_error(env, NULL, "Ahead: the checking thread could not be started");
    return NULL;
  }
  a->open = 1;
  if (napi_wrap(env, self, a, ahead_finalize, NULL, NULL) != napi_ok) {
    ahead_close(env, a);
    free(a);
    napi_throw_error(env, NULL, "Ahead: napi_wrap failed");
    return NULL;
  }
  return self;
}

/* submit(offset: number, length: number): void */
static napi_value js_ahead_submit(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int64_t offset, length;
  ahead_t *a = ahead_this(env, info, &argc, argv);
  if (a == NULL) return NULL;
  if (argc < 2 || napi_get_value_int64(env, argv[0], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[1], &length) != napi_ok)
    return fail(env, "Ahead.submit(offset, length): offset and length must be numbers");
  if (offset < 0 || length < 0 || (uint64_t)offset > a->memory_len || (uint64_t)length > a->memory_len - (size_t)offset)
    return fail(env, "Ahead.submit: the range does not lie in the memory");
  uv_mutex_lock(&a->lock);
  if (a->submitted - a->taken == AHEAD_SLOTS) {
    uv_mutex_unlock(&a->lock);
    return fail(env, "Ahead.submit: 64 ranges wait already; take one with next() first");
  }
  unsigned i = a->submitted % AHEAD_SLOTS;
  a->slot[i].job = a->submitted;
  __atomic_store_n(&a->submitted, a->submitted + 1, __ATOMIC_RELAXED);
  a->slot[i].offset = (size_t)offset;
  a->slot[i].length = (size_t)length;
  a->slot[i].done = 0;
  uv_cond_signal(&a->work);
  uv_mutex_unlock(&a->lock);
  return NULL;
}

/* next(): number, the CRC32 of the oldest range not taken yet */
static napi_value js_ahead_next(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  ahead_t *a = ahead_this(env, info, &argc, NULL);
  if (a == NULL) return NULL;
  uv_mutex_lock(&a->lock);
  if (a->taken == a->submitted) {
    uv_mutex_unlock(&a->lock);
    return fail(env, "Ahead.next: no range was submitted that was not taken already");
  }
  uint64_t want = a->taken;
  unsigned i = want % AHEAD_SLOTS;
  while (!a->slot[i].done) {
    /* Not checked yet: rather than sleep until the thread has it (it may be busy with it, still
     * waking, or waiting for a CPU another process holds), this thread checks the first range
     * the thread has not come to, or, when it is at work on every one, the range wanted itself.
     * So a checker is never much slower than checking inline. */
    uint64_t job = a->started < a->submitted ? a->started++ : want;
    size_t at = a->slot[job % AHEAD_SLOTS].offset, length = a->slot[job % AHEAD_SLOTS].length;
    uv_mutex_unlock(&a->lock);
    uint32_t crc = ahead_range(a, at, length);
    uv_mutex_lock(&a->lock);
    ahead_done(a, job, crc);
  }
  uint32_t crc = a->slot[i].crc;
  a->taken++;
  uv_mutex_unlock(&a->lock);
  return u32(env, crc);
}

/* close(): void; again is nothing */
static napi_value js_ahead_close(napi_env env, napi_callback_info info) {
  napi_value self;
  void *a = NULL;
  napi_get_cb_info(env, info, NULL, NULL, &self, NULL);
  if (napi_unwrap(env, self, &a) != napi_ok || a == NULL) return fail(env, "Ahead: not a checker object");
  ahead_close(env, a);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  make_table();
  int accelerated = 0;
#ifdef HAVE_CLMUL_KERNEL
  clmul_ok = detect_clmul();
  /* VFIOKIT_CRC32=pclmul keeps to the 128-bit kernel (to test it on a CPU with AVX-512) */
  const char *choice = getenv("VFIOKIT_CRC32");
  wide_ok = clmul_ok && detect_wide() && !(choice && strcmp(choice, "pclmul") == 0);
  accelerated = clmul_ok;
#endif
  napi_value fn, flag;
  napi_create_function(env, "crc32", NAPI_AUTO_LENGTH, js_crc32, NULL, &fn);
  napi_set_named_property(env, exports, "crc32", fn);
  napi_create_function(env, "copyCrc32", NAPI_AUTO_LENGTH, js_copy_crc32, NULL, &fn);
  napi_set_named_property(env, exports, "copyCrc32", fn);
  napi_get_boolean(env, accelerated, &flag);
  napi_set_named_property(env, exports, "accelerated", flag);
  napi_property_descriptor methods[] = {
      {"submit", NULL, js_ahead_submit, NULL, NULL, NULL, napi_default, NULL},
      {"next", NULL, js_ahead_next, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_ahead_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value ahead;
  napi_define_class(env, "Ahead", NAPI_AUTO_LENGTH, js_ahead_new, NULL, 3, methods, &ahead);
  napi_set_named_property(env, exports, "Ahead", ahead);
#ifdef HAVE_CLMUL_KERNEL
  napi_get_boolean(env, wide_ok, &flag);
#else
  napi_get_boolean(env, 0, &flag);
#endif
  napi_set_named_property(env, exports, "wide", flag);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
