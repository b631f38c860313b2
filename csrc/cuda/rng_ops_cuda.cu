// fade_noise, fade_mask_ids and philox_words on CUDA: one grid-stride loop over the output elements, each a pure
// function of (key words, index) through the Philox header shared with the CPU kernels.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "cuda/launch_utils.cuh"
#include "fade_checks.h"
#include "philox.h"

namespace pixelfade {
namespace cuda {
namespace {

__device__ __forceinline__ int64_t first_element() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

__global__ void __launch_bounds__(kThreads)
    fade_noise_kernel(const int64_t* __restrict__ keys, float* __restrict__ out, int64_t total, int64_t numel) {
  for (int64_t i = first_element(); i < total; i += grid_stride()) {
    const int64_t image = i / numel;
    out[i] = noise_value(noise_stream(keys, image), static_cast<uint64_t>(i - image * numel));
  }
}

__global__ void __launch_bounds__(kThreads)
    fade_mask_ids_kernel(const int64_t* __restrict__ keys, uint8_t* __restrict__ out, int64_t total, int64_t numel,
                         int64_t hw, int32_t num_masks, bool pixel_masks) {
  for (int64_t i = first_element(); i < total; i += grid_stride()) {
    const int64_t image = i / numel;
    const int64_t element = i - image * numel;
    const int64_t index = pixel_masks ? element % hw : element;
    out[i] = static_cast<uint8_t>(
        mask_id(mask_stream(keys, image), static_cast<uint64_t>(index), num_masks));
  }
}

__global__ void __launch_bounds__(kThreads)
    philox_words_kernel(const int64_t* __restrict__ key, const int64_t* __restrict__ index,
                        const int64_t* __restrict__ counter_high, int64_t* __restrict__ out, int64_t total) {
  for (int64_t i = first_element(); i < total; i += grid_stride()) {
    const Stream stream{static_cast<uint64_t>(key[i]), static_cast<uint64_t>(counter_high[i])};
    const PhiloxWords words = philox4x32_10(stream, static_cast<uint64_t>(index[i]));
    out[4 * i + 0] = words.r0;
    out[4 * i + 1] = words.r1;
    out[4 * i + 2] = words.r2;
    out[4 * i + 3] = words.r3;
  }
}

at::Tensor fade_noise_cuda(const at::Tensor& keys, c10::IntArrayRef shape) {
  const auto out_shape = check_rng_image_args("pixelfade::fade_noise", c10::DeviceType::CUDA, keys, shape);
  const c10::cuda::CUDAGuard guard(keys.device());
  at::Tensor out = at::empty(out_shape, keys.options().dtype(at::kFloat));
  const int64_t total = out.numel();
  if (total == 0) {
    return out;
  }
  const at::Tensor keys_c = keys.contiguous();
  fade_noise_kernel<<<elementwise_blocks(total), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      keys_c.data_ptr<int64_t>(), out.data_ptr<float>(), total, total / keys.size(0));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor fade_mask_ids_cuda(const at::Tensor& keys, c10::IntArrayRef shape, int64_t num_masks, bool pixel_masks) {
  constexpr const char* op = "pixelfade::fade_mask_ids";
  const auto out_shape = check_rng_image_args(op, c10::DeviceType::CUDA, keys, shape);
  check_num_masks(op, num_masks);
  const c10::cuda::CUDAGuard guard(keys.device());
  at::Tensor out = at::empty(out_shape, keys.options().dtype(at::kByte));
  const int64_t total = out.numel();
  if (total == 0) {
    return out;
  }
  const at::Tensor keys_c = keys.contiguous();
  fade_mask_ids_kernel<<<elementwise_blocks(total), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      keys_c.data_ptr<int64_t>(), out.data_ptr<uint8_t>(), total, total / keys.size(0), shape[1] * shape[2],
      static_cast<int32_t>(num_masks), pixel_masks);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor philox_words_cuda(const at::Tensor& key, const at::Tensor& index,
                             const std::optional<at::Tensor>& counter_high) {
  const auto out_shape = check_philox_args(c10::DeviceType::CUDA, key, index, counter_high);
  const c10::cuda::CUDAGuard guard(key.device());
  at::Tensor out = at::empty(out_shape, key.options());
  const int64_t total = key.numel();
  if (total == 0) {
    return out;
  }
  const at::Tensor key_c = key.contiguous();
  const at::Tensor index_c = index.contiguous();
  const at::Tensor high_c = counter_high.has_value() ? counter_high->contiguous() : at::zeros_like(key_c);
  philox_words_kernel<<<elementwise_blocks(total), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      key_c.data_ptr<int64_t>(), index_c.data_ptr<int64_t>(), high_c.data_ptr<int64_t>(), out.data_ptr<int64_t>(),
      total);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace
}  // namespace cuda
}  // namespace pixelfade

TORCH_LIBRARY_IMPL(pixelfade, CUDA, m) {
  m.impl("fade_noise", &pixelfade::cuda::fade_noise_cuda);
  m.impl("fade_mask_ids", &pixelfade::cuda::fade_mask_ids_cuda);
  m.impl("philox_words", &pixelfade::cuda::philox_words_cuda);
}
