// fade_step_ on CUDA, two launches on the current stream:
//   pass 1: every block sums |G| or G^2 over its chunk of one image into partials[image, block] (double);
//   pass 2: every block reduces its image's partials in a fixed order (so all blocks of an image get the same
//           norm, and a rerun the same bits), then runs CO, PRO and the clamp over its chunk in one pass.
// Grid: (blocks per image, images), sized to fill the GPU for any batch. Per-image flags are read on the device,
// once per block, and select one of four specialised loops; images without CO never read grad, images without
// PRO never run Philox. 16-byte loads/stores when N is a multiple of the pack size and the pointers are aligned.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "cuda/launch_utils.cuh"
#include "fade_checks.h"
#include "philox.h"

namespace pixelfade {
namespace cuda {
namespace {

template <typename scalar_t>
struct StepArgs {
  scalar_t* xp;
  scalar_t* mom;
  const scalar_t* grad;
  double* partials;  // [batch, gridDim.x]
  const bool* do_co;
  const bool* do_pro;
  const float* beta;
  const int32_t* mask_idx;
  const int64_t* keys;
  const float* lo;
  const float* hi;
  int64_t batch;
  int64_t numel;  // N = C*H*W
  int64_t hw;
  int64_t chunk;  // elements per block, a multiple of the pack size
  scalar_t alpha;
  int32_t num_masks;
  bool l1mean;
  bool pixel_masks;
};

template <typename scalar_t, bool kVector>
struct Loader {
  static constexpr int kSize = kVector ? Pack<scalar_t>::kSize : 1;

  __device__ __forceinline__ static void load(const scalar_t* src, scalar_t (&dst)[kSize]) {
    if constexpr (kVector) {
      const Pack<scalar_t> pack = *reinterpret_cast<const Pack<scalar_t>*>(src);
#pragma unroll
      for (int j = 0; j < kSize; ++j) {
        dst[j] = pack.v[j];
      }
    } else {
      dst[0] = *src;
    }
  }

  __device__ __forceinline__ static void store(scalar_t* dst, const scalar_t (&src)[kSize]) {
    if constexpr (kVector) {
      Pack<scalar_t> pack;
#pragma unroll
      for (int j = 0; j < kSize; ++j) {
        pack.v[j] = src[j];
      }
      *reinterpret_cast<Pack<scalar_t>*>(dst) = pack;
    } else {
      *dst = src[0];
    }
  }
};

template <typename scalar_t, bool kVector>
__global__ void __launch_bounds__(kThreads) norm_partials_kernel(StepArgs<scalar_t> a) {
  using L = Loader<scalar_t, kVector>;
  __shared__ double scratch[kWarps];
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * a.chunk;
  const int64_t end = begin + a.chunk < a.numel ? begin + a.chunk : a.numel;
  for (int64_t image = blockIdx.y; image < a.batch; image += gridDim.y) {
    if (!a.do_co[image]) {
      continue;  // the same for the whole block: no grad read, no partial written (pass 2 will not read it)
    }
    const scalar_t* grad = a.grad + image * a.numel;
    double sum = 0.0;
    for (int64_t e = begin + threadIdx.x * L::kSize; e < end; e += kThreads * L::kSize) {
      scalar_t g[L::kSize];
      L::load(grad + e, g);
#pragma unroll
      for (int j = 0; j < L::kSize; ++j) {
        const double v = static_cast<double>(g[j]);
        sum += a.l1mean ? fabs(v) : v * v;
      }
    }
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0) {
      a.partials[image * gridDim.x + blockIdx.x] = sum;
    }
  }
}

// CO / PRO / clamp over elements [begin, end) of one image; kCo and kPro are the image's flags.
template <typename scalar_t, bool kVector, bool kCo, bool kPro>
__device__ __forceinline__ void update_range(const StepArgs<scalar_t>& a, int64_t image, scalar_t norm,
                                             int64_t begin, int64_t end) {
  using L = Loader<scalar_t, kVector>;
  const int64_t offset = image * a.numel;
  scalar_t* xp = a.xp + offset;
  scalar_t* mom = a.mom + offset;
  const scalar_t* grad = a.grad + offset;
  const scalar_t beta = kCo ? static_cast<scalar_t>(a.beta[image]) : scalar_t(0);
  const int32_t target_mask = kPro ? a.mask_idx[image] : 0;
  const uint64_t noise_key = kPro ? static_cast<uint64_t>(a.keys[2 * image]) : 0;
  const uint64_t mask_key = kPro ? static_cast<uint64_t>(a.keys[2 * image + 1]) : 0;
  for (int64_t e = begin + threadIdx.x * L::kSize; e < end; e += kThreads * L::kSize) {
    scalar_t x[L::kSize];
    scalar_t m[L::kSize];
    scalar_t g[L::kSize];
    L::load(xp + e, x);
    if constexpr (kCo) {
      L::load(mom + e, m);
      L::load(grad + e, g);
    }
    int64_t channel = e / a.hw;
    int64_t pixel = e - channel * a.hw;
#pragma unroll
    for (int j = 0; j < L::kSize; ++j) {
      scalar_t value = x[j];
      if constexpr (kCo) {
        m[j] = a.alpha * m[j] + g[j] / norm;
        value = value - beta * m[j];
      }
      if constexpr (kPro) {
        const uint64_t index = static_cast<uint64_t>(a.pixel_masks ? pixel : e + j);
        if (mask_id(mask_key, index, a.num_masks) == target_mask) {
          value = static_cast<scalar_t>(noise_value(noise_key, static_cast<uint64_t>(e + j)));
        }
      }
      x[j] = nan_max(nan_min(value, static_cast<scalar_t>(a.hi[channel])), static_cast<scalar_t>(a.lo[channel]));
      if (++pixel == a.hw) {  // a pack may straddle channels
        pixel = 0;
        ++channel;
      }
    }
    L::store(xp + e, x);
    if constexpr (kCo) {
      L::store(mom + e, m);
    }
  }
}

template <typename scalar_t, bool kVector>
__global__ void __launch_bounds__(kThreads) fade_update_kernel(StepArgs<scalar_t> a) {
  __shared__ double scratch[kWarps];
  __shared__ scalar_t shared_norm;
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * a.chunk;
  const int64_t end = begin + a.chunk < a.numel ? begin + a.chunk : a.numel;
  for (int64_t image = blockIdx.y; image < a.batch; image += gridDim.y) {
    const bool co = a.do_co[image];
    const bool pro = a.do_pro[image];
    scalar_t norm = scalar_t(1);
    if (co) {
      const double* partials = a.partials + image * gridDim.x;
      double total = 0.0;
      for (int64_t k = threadIdx.x; k < gridDim.x; k += kThreads) {
        total += partials[k];
      }
      total = block_sum(total, scratch);
      if (threadIdx.x == 0) {
        if (a.l1mean) {
          total /= static_cast<double>(a.numel);
        }
        shared_norm = nan_max(static_cast<scalar_t>(total), static_cast<scalar_t>(1e-12));
      }
      __syncthreads();
      norm = shared_norm;
    }
    if (co) {
      if (pro) {
        update_range<scalar_t, kVector, true, true>(a, image, norm, begin, end);
      } else {
        update_range<scalar_t, kVector, true, false>(a, image, norm, begin, end);
      }
    } else if (pro) {
      update_range<scalar_t, kVector, false, true>(a, image, norm, begin, end);
    } else {
      update_range<scalar_t, kVector, false, false>(a, image, norm, begin, end);
    }
  }
}

template <typename scalar_t, bool kVector>
void launch_passes(const StepArgs<scalar_t>& args, dim3 grid, cudaStream_t stream) {
  norm_partials_kernel<scalar_t, kVector><<<grid, kThreads, 0, stream>>>(args);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  fade_update_kernel<scalar_t, kVector><<<grid, kThreads, 0, stream>>>(args);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t>
void fade_step_cuda_typed(const FadeStepTensors& t, const FadeStepParams& p) {
  const int64_t batch = t.xp.size(0);
  const int64_t numel = batch == 0 ? 0 : t.xp.numel() / batch;
  if (batch == 0 || numel == 0) {
    return;
  }
  const bool vector = numel % Pack<scalar_t>::kSize == 0 && aligned16(t.xp.data_ptr()) &&
                      aligned16(t.mom.data_ptr()) && aligned16(t.grad.data_ptr());
  const int64_t pack = vector ? Pack<scalar_t>::kSize : 1;
  // Blocks per image: enough to fill the GPU, but at least one pack per thread; chunks are whole packs.
  const int64_t wanted = std::max<int64_t>(1, ceil_div(target_blocks(), batch));
  const int64_t most = ceil_div(numel, kThreads * pack);
  const int64_t chunk = ceil_div(ceil_div(numel, std::min(wanted, most)), pack) * pack;
  const int64_t blocks_per_image = ceil_div(numel, chunk);
  const dim3 grid(static_cast<unsigned int>(blocks_per_image), static_cast<unsigned int>(std::min(batch, kMaxGridY)));

  at::Tensor partials = at::empty({batch, blocks_per_image}, t.xp.options().dtype(at::kDouble));
  const StepArgs<scalar_t> args{t.xp.data_ptr<scalar_t>(),
                                t.mom.data_ptr<scalar_t>(),
                                t.grad.data_ptr<scalar_t>(),
                                partials.data_ptr<double>(),
                                t.do_co.data_ptr<bool>(),
                                t.do_pro.data_ptr<bool>(),
                                t.beta.data_ptr<float>(),
                                t.mask_idx.data_ptr<int32_t>(),
                                t.keys.data_ptr<int64_t>(),
                                t.lo.data_ptr<float>(),
                                t.hi.data_ptr<float>(),
                                batch,
                                numel,
                                t.xp.size(2) * t.xp.size(3),
                                chunk,
                                static_cast<scalar_t>(p.alpha),
                                p.num_masks,
                                p.norm == Norm::L1Mean,
                                p.pixel_masks};
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  if (vector) {
    launch_passes<scalar_t, true>(args, grid, stream);
  } else {
    launch_passes<scalar_t, false>(args, grid, stream);
  }
}

void fade_step_kernel_cuda(const FadeStepTensors& t, const FadeStepParams& p) {
  const c10::cuda::CUDAGuard guard(t.xp.device());
  AT_DISPATCH_FLOATING_TYPES(t.xp.scalar_type(), "pixelfade::fade_step_ (CUDA)",
                             [&] { fade_step_cuda_typed<scalar_t>(t, p); });
}

void fade_step_cuda(at::Tensor& xp, at::Tensor& mom, const at::Tensor& grad, const at::Tensor& do_co,
                    const at::Tensor& do_pro, const at::Tensor& beta, const at::Tensor& mask_idx,
                    const at::Tensor& keys, const at::Tensor& lo, const at::Tensor& hi, double alpha,
                    int64_t num_masks, c10::string_view norm, bool pixel_masks) {
  run_fade_step(c10::DeviceType::CUDA, xp, mom, grad, do_co, do_pro, beta, mask_idx, keys, lo, hi, alpha,
                num_masks, norm, pixel_masks, &fade_step_kernel_cuda);
}

}  // namespace
}  // namespace cuda
}  // namespace pixelfade

TORCH_LIBRARY_IMPL(pixelfade, CUDA, m) {
  m.impl("fade_step_", &pixelfade::cuda::fade_step_cuda);
}
