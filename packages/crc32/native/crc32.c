/*
 * CRC32 (the IEEE 802.3 polynomial, bit-reflected, exactly zlib's crc32()) over a buffer, and
 * the same while copying the buffer into another, in one pass. On x86-64 with PCLMULQDQ the
 * bulk is folded 64 bytes at a time with carry-less multiplies (Intel, "Fast CRC Computation
 * for Generic Polynomials Using PCLMULQDQ Instruction", 2009: the fold constants k1..k5 and the
 * Barrett constants P'(x), u' for the reflected polynomial 0x1DB710641 are from its appendix);
 * the copy stores the 16-byte blocks the fold has just loaded. Heads shorter than 64 bytes and
 * tails shorter than 16 go through a byte table. Without the instruction `accelerated` is false
 * and the TypeScript side uses node:zlib.
 */
#include <node_api.h>
#include <stdint.h>
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
#ifdef HAVE_CLMUL_KERNEL
  napi_get_boolean(env, wide_ok, &flag);
#else
  napi_get_boolean(env, 0, &flag);
#endif
  napi_set_named_property(env, exports, "wide", flag);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
