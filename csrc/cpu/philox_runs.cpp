// Vectorised Philox over runs of indices (see philox_runs.h). Each lane runs the scalar philox4x32_10 of
// philox.h; `omp simd` and the ISA clones let the compiler widen the 32x32->64 multiplies across indices, so
// the 32-bit words are the contract's bits. Box-Muller uses glibc's vector logf/cosf (libmvec) on AVX2 CPUs:
// within a few ulp of the scalar functions (the contract allows η to differ in the last ulp, tolerance 1e-6).
#include "cpu/philox_runs.h"

#include "philox.h"

#if defined(__x86_64__) && defined(__GLIBC__) && defined(__GNUC__) && !defined(__clang__)
#define PIXELFADE_LIBMVEC 1
#include <immintrin.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PIXELFADE_ISA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PIXELFADE_ISA_CLONES
#endif

namespace pixelfade {
namespace {

PIXELFADE_ISA_CLONES void mask_ids_of_run(Stream stream, uint64_t first, int64_t n, int32_t num_masks,
                                          int32_t* out) {
  uint32_t r0[kPhiloxRun];
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    r0[j] = philox4x32_10(stream, first + static_cast<uint64_t>(j)).r0;
  }
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    out[j] = mask_id_from_word(r0[j], num_masks);
  }
}

PIXELFADE_ISA_CLONES void noise_words_at(Stream stream, const uint64_t* index, int64_t n, uint32_t* r0,
                                         uint32_t* r1) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const PhiloxWords words = philox4x32_10(stream, index[j]);
    r0[j] = words.r0;
    r1[j] = words.r1;
  }
}

#if PIXELFADE_LIBMVEC
#pragma GCC push_options
#pragma GCC target("avx2")
extern "C" __m256 _ZGVdN8v_logf(__m256);  // libmvec's 8-lane AVX2 logf / cosf
extern "C" __m256 _ZGVdN8v_cosf(__m256);

// uniform_from_word on 8 words: s ^ (s >> 31) is ~s for negative s and s otherwise.
inline __m256 uniforms(const uint32_t* words) {
  const __m256i s = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words));
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_xor_si256(s, _mm256_srai_epi32(s, 31))),
                       _mm256_set1_ps(kUniformScale));
}

// normal_from_words, 8 at a time, the same operations in the same order; returns how many it wrote.
int64_t normals_avx2(const uint32_t* r0, const uint32_t* r1, int64_t n, float* out) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 u0 = _mm256_max_ps(uniforms(r0 + j), _mm256_set1_ps(kNormalMinUniform));
    const __m256 u1 = uniforms(r1 + j);
    const __m256 radius = _mm256_sqrt_ps(_mm256_mul_ps(_ZGVdN8v_logf(u0), _mm256_set1_ps(-2.0f)));
    _mm256_storeu_ps(out + j, _mm256_mul_ps(radius, _ZGVdN8v_cosf(_mm256_mul_ps(u1, _mm256_set1_ps(kTwoPi)))));
  }
  return j;
}
#pragma GCC pop_options

const bool kHasAvx2 = [] {
  __builtin_cpu_init();  // needed when called from a static initializer
  return __builtin_cpu_supports("avx2") != 0;
}();
#endif

void normals(const uint32_t* r0, const uint32_t* r1, int64_t n, float* out) {
  int64_t done = 0;
#if PIXELFADE_LIBMVEC
  if (kHasAvx2) {
    done = normals_avx2(r0, r1, n, out);
  }
#endif
  for (int64_t j = done; j < n; ++j) {
    out[j] = normal_from_words(r0[j], r1[j]);
  }
}

}  // namespace

void mask_id_run(Stream mask, uint64_t first, int64_t n, int32_t num_masks, int32_t* out) {
  mask_ids_of_run(mask, first, n, num_masks, out);
}

void noise_at(Stream noise, const uint64_t* index, int64_t n, float* out) {
  uint32_t r0[kPhiloxRun];
  uint32_t r1[kPhiloxRun];
  noise_words_at(noise, index, n, r0, r1);
  normals(r0, r1, n, out);
}

void noise_run(Stream noise, uint64_t first, int64_t n, float* out) {
  uint64_t index[kPhiloxRun];
  for (int64_t j = 0; j < n; ++j) {
    index[j] = first + static_cast<uint64_t>(j);
  }
  noise_at(noise, index, n, out);
}

}  // namespace pixelfade
