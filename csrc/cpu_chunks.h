// The fixed chunk layout of the CPU kernels: every image is cut into chunks of kCpuChunk elements, and work is
// spread over (image, chunk) pairs with at::parallel_for. The layout does not depend on the thread count, so
// per-chunk partial sums (and hence every result) are the same bits for any number of threads.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

namespace pixelfade {

constexpr int64_t kCpuChunk = 4096;

inline int64_t cpu_chunks_per_image(int64_t numel_per_image) {
  return std::max<int64_t>(1, (numel_per_image + kCpuChunk - 1) / kCpuChunk);
}

// Calls fn(image, chunk, begin, end) for every chunk [begin, end) of every image, in parallel.
template <typename Fn>
void for_each_image_chunk(int64_t batch, int64_t numel_per_image, const Fn& fn) {
  const int64_t chunks = cpu_chunks_per_image(numel_per_image);
  at::parallel_for(0, batch * chunks, 1, [&](int64_t first, int64_t last) {
    for (int64_t task = first; task < last; ++task) {
      const int64_t image = task / chunks;
      const int64_t chunk = task % chunks;
      const int64_t begin = chunk * kCpuChunk;
      fn(image, chunk, begin, std::min(numel_per_image, begin + kCpuChunk));
    }
  });
}

}  // namespace pixelfade
