// The noise/mask RNG contract (DESIGN.md, "Noise and masks", "Contract v2") as inline functions that compile for
// host code (plain g++) and for CUDA device code (nvcc), so the CPU and CUDA kernels produce the same 32-bit words.
// An image's keys row holds four 64-bit words: noise key, noise counter word, mask key, mask counter word (v1
// runs have zero counter words), so one kernel serves both contracts.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define PIXELFADE_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define PIXELFADE_HOST_DEVICE inline
#endif

namespace pixelfade {

constexpr uint32_t kPhiloxRoundA = 0xD2511F53u;
constexpr uint32_t kPhiloxRoundB = 0xCD9E8D57u;
constexpr uint32_t kPhiloxKeyA = 0x9E3779B9u;
constexpr uint32_t kPhiloxKeyB = 0xBB67AE85u;
constexpr int kPhiloxRounds = 10;
// Written as double constants rounded to float, exactly as the reference builds its float32 tensors.
constexpr float kUniformScale = static_cast<float>(4.6566127342e-10);
constexpr float kNormalMinUniform = static_cast<float>(1e-7);
constexpr float kTwoPi = static_cast<float>(6.283185307179586);

struct PhiloxWords {
  uint32_t r0, r1, r2, r3;
};

// Words per image in a keys tensor [B, 4], and the stream (Philox key, upper 64 counter bits) of each use.
constexpr int64_t kKeyWords = 4;

struct Stream {
  uint64_t key;
  uint64_t counter_high;
};

PIXELFADE_HOST_DEVICE Stream noise_stream(const int64_t* keys, int64_t image) {
  return Stream{static_cast<uint64_t>(keys[kKeyWords * image]), static_cast<uint64_t>(keys[kKeyWords * image + 1])};
}

PIXELFADE_HOST_DEVICE Stream mask_stream(const int64_t* keys, int64_t image) {
  return Stream{static_cast<uint64_t>(keys[kKeyWords * image + 2]),
                static_cast<uint64_t>(keys[kKeyWords * image + 3])};
}

PIXELFADE_HOST_DEVICE uint32_t mulhi32(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

// Philox4x32-10: key (low, high 32 bits of `stream.key`), counter (low, high 32 bits of `index`, low, high 32
// bits of `stream.counter_high`).
PIXELFADE_HOST_DEVICE PhiloxWords philox4x32_10(Stream stream, uint64_t index) {
  uint32_t k0 = static_cast<uint32_t>(stream.key);
  uint32_t k1 = static_cast<uint32_t>(stream.key >> 32);
  uint32_t c0 = static_cast<uint32_t>(index);
  uint32_t c1 = static_cast<uint32_t>(index >> 32);
  uint32_t c2 = static_cast<uint32_t>(stream.counter_high);
  uint32_t c3 = static_cast<uint32_t>(stream.counter_high >> 32);
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int round = 0; round < kPhiloxRounds; ++round) {
    const uint32_t next0 = mulhi32(kPhiloxRoundB, c2) ^ c1 ^ k0;
    const uint32_t next2 = mulhi32(kPhiloxRoundA, c0) ^ c3 ^ k1;
    c1 = kPhiloxRoundB * c2;
    c3 = kPhiloxRoundA * c0;
    c0 = next0;
    c2 = next2;
    k0 += kPhiloxKeyA;
    k1 += kPhiloxKeyB;
  }
  return PhiloxWords{c0, c1, c2, c3};
}

// Uniform in [0, 1): the word as int32 s, s <- ~s when negative, times 2**-31 (in float32).
PIXELFADE_HOST_DEVICE float uniform_from_word(uint32_t word) {
  int32_t s = static_cast<int32_t>(word);
  if (s < 0) {
    s = ~s;
  }
  return static_cast<float>(s) * kUniformScale;
}

// Standard normal by Box-Muller from two words, in float32.
PIXELFADE_HOST_DEVICE float normal_from_words(uint32_t r0, uint32_t r1) {
  const float u0 = fmaxf(uniform_from_word(r0), kNormalMinUniform);
  const float u1 = uniform_from_word(r1);
  return sqrtf(logf(u0) * -2.0f) * cosf(u1 * kTwoPi);
}

// Mask id min(I - 1, floor(u * I)) of a word, for I = num_masks in [1, 255].
PIXELFADE_HOST_DEVICE int32_t mask_id_from_word(uint32_t word, int32_t num_masks) {
  const int32_t id = static_cast<int32_t>(floorf(uniform_from_word(word) * static_cast<float>(num_masks)));
  return id < num_masks - 1 ? id : num_masks - 1;
}

// η_i[e] for image i's noise stream and element index e.
PIXELFADE_HOST_DEVICE float noise_value(Stream noise, uint64_t element) {
  const PhiloxWords words = philox4x32_10(noise, element);
  return normal_from_words(words.r0, words.r1);
}

// Mask id of element/pixel index `index` for image i's mask stream.
PIXELFADE_HOST_DEVICE int32_t mask_id(Stream mask, uint64_t index, int32_t num_masks) {
  return mask_id_from_word(philox4x32_10(mask, index).r0, num_masks);
}

}  // namespace pixelfade
