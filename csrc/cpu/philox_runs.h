// Philox words, mask ids and η for many indices at once on the CPU. One call covers a run of indices so the
// ten Philox rounds vectorise across indices (AVX-512 / AVX2 clones picked when the library loads). Mask ids
// are those of philox.h bit for bit; η may differ from its scalar noise_value in the last ulps (vector logf/cosf).
#pragma once

#include <cstdint>

#include "philox.h"

namespace pixelfade {

// Largest run one call accepts (callers tile longer ranges).
constexpr int64_t kPhiloxRun = 256;

// out[j] = mask_id(mask, first + j, num_masks) for j in [0, n), n <= kPhiloxRun.
void mask_id_run(Stream mask, uint64_t first, int64_t n, int32_t num_masks, int32_t* out);

// out[j] = noise_value(noise, index[j]) for j in [0, n), n <= kPhiloxRun.
void noise_at(Stream noise, const uint64_t* index, int64_t n, float* out);

// out[j] = noise_value(noise, first + j) for j in [0, n), n <= kPhiloxRun.
void noise_run(Stream noise, uint64_t first, int64_t n, float* out);

}  // namespace pixelfade
