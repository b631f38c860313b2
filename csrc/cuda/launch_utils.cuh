// Launch helpers shared by the CUDA kernels: block size, grid sizing from the device, a deterministic block sum,
// 16-byte packs, and NaN-propagating min/max.
#pragma once

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace pixelfade {
namespace cuda {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kBlocksPerMultiprocessor = 4;  // with 256 threads: half of an SM's 2048 threads, plenty to hide latency
constexpr int64_t kMaxGridY = 65535;

inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// How many blocks fill the current device.
inline int64_t target_blocks() {
  int count = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, c10::cuda::current_device()));
  return static_cast<int64_t>(count) * kBlocksPerMultiprocessor;
}

// A grid-stride 1-D grid for `total` independent elements.
inline unsigned int elementwise_blocks(int64_t total) {
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min(ceil_div(total, kThreads), 2 * target_blocks())));
}

inline bool aligned16(const void* ptr) {
  return reinterpret_cast<uintptr_t>(ptr) % 16 == 0;
}

// 16 bytes of scalar_t: loaded and stored with one vector instruction (float4 / double2).
template <typename scalar_t>
struct alignas(16) Pack {
  static constexpr int kSize = 16 / sizeof(scalar_t);
  scalar_t v[kSize];
};

// Sum over the block, in a fixed order (shuffle tree within warps, then over warps); the result is valid in
// thread 0. Every thread of the block must call it. `scratch` holds kWarps values in shared memory.
template <typename T>
__device__ __forceinline__ T block_sum(T value, T* scratch) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    value += __shfl_down_sync(0xffffffffu, value, offset);
  }
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  if (lane == 0) {
    scratch[warp] = value;
  }
  __syncthreads();
  if (warp == 0) {
    value = lane < kWarps ? scratch[lane] : T(0);
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) {
      value += __shfl_down_sync(0xffffffffu, value, offset);
    }
  }
  __syncthreads();  // scratch may be reused by the next call
  return value;
}

// NaN-propagating min / max, like torch.minimum / torch.maximum / clamp_min.
template <typename T>
__device__ __forceinline__ T nan_min(T a, T b) {
  return (a < b || a != a) ? a : b;
}
template <typename T>
__device__ __forceinline__ T nan_max(T a, T b) {
  return (a > b || a != a) ? a : b;
}

}  // namespace cuda
}  // namespace pixelfade
