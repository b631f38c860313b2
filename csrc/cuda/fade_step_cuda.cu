// fade_step_ on CUDA, two launches on the current stream:
//   pass 1: every block sums |G| or G^2 over its chunk of one image into partials[image, block] (double);
//   pass 2: every block reduces its image's partials in a fixed order (so all blocks of an image get the same
//           norm, and a rerun the same bits), then runs CO, PRO and the clamp over its chunk in one pass.
// Grid: (blocks per image, images), sized to fill the GPU for any batch. Per-image flags are read on the device,
// once per block, and select one of four specialised loops; images without CO never read grad, images without
// PRO never run Philox. Mask ids are read from `mask_ids` when the caller materialised them, else drawn from the
// keys. 16-byte loads/stores when N is a multiple of the pack size and the pointers are aligned.
//
// The two passes read grad twice (24 bytes per element for a CO step instead of the minimal 20); pass 2 takes the
// images in reverse order and streams xp/mom with evict-first hints, so the gradients pass 1 read last are still
// in L2 when pass 2 re-reads them (what fits: about 50 MB on an H100/H200). The `cluster`
// variant (Hopper and later) reads it once: a thread-block cluster of kClusterBlocks blocks owns one image, each
// block keeps its slice of grad in shared memory while the cluster sums the norm through distributed shared
// memory (block totals added in rank order, so every block gets the same bits), then updates from shared memory.
// PIXELFADE_CUDA_STEP=two_pass|cluster picks the variant (default two_pass until the cluster variant is measured;
// bench/gpu_check.sh tests and times both).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cooperative_groups.h>
#include <torch/library.h>

#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "cuda/launch_utils.cuh"
#include "fade_checks.h"
#include "philox.h"

namespace pixelfade {
namespace cuda {
namespace {

constexpr int kClusterBlocks = 8;  // the portable maximum cluster size

template <typename scalar_t>
struct StepArgs {
  scalar_t* xp;
  scalar_t* mom;
  const scalar_t* grad;
  double* partials;  // [batch, gridDim.x] (two-pass variant only)
  const bool* do_co;
  const bool* do_pro;
  const float* beta;
  const int32_t* mask_idx;
  const int64_t* keys;
  const uint8_t* mask_ids;  // [batch, numel] materialised ids, or nullptr: draw them from the mask keys
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

// The 16-byte vector type CUDA's cache-hint intrinsics take for a Pack of scalar_t.
template <typename scalar_t>
struct Vector16;
template <>
struct Vector16<float> {
  using type = float4;
};
template <>
struct Vector16<double> {
  using type = double2;
};

template <typename scalar_t, bool kVector>
struct Loader {
  static constexpr int kSize = kVector ? Pack<scalar_t>::kSize : 1;
  using Vector = typename Vector16<scalar_t>::type;

  // Global data read for the last time and then overwritten (xp, mom in the update): evict-first loads and
  // stores (ld/st.global.cs), so that what the norm pass left in L2 (the gradients) outlives them there.
  __device__ __forceinline__ static void load_last_use(const scalar_t* src, scalar_t (&dst)[kSize]) {
    if constexpr (kVector) {
      Pack<scalar_t> pack;
      *reinterpret_cast<Vector*>(&pack) = __ldcs(reinterpret_cast<const Vector*>(src));
#pragma unroll
      for (int j = 0; j < kSize; ++j) {
        dst[j] = pack.v[j];
      }
    } else {
      dst[0] = __ldcs(src);
    }
  }

  __device__ __forceinline__ static void store_streaming(scalar_t* dst, const scalar_t (&src)[kSize]) {
    if constexpr (kVector) {
      Pack<scalar_t> pack;
#pragma unroll
      for (int j = 0; j < kSize; ++j) {
        pack.v[j] = src[j];
      }
      __stcs(reinterpret_cast<Vector*>(dst), *reinterpret_cast<const Vector*>(&pack));
    } else {
      __stcs(dst, src[0]);
    }
  }

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

// This thread's share of sum |G| (l1mean) or sum G^2 over [begin, end) of one image's gradient, in double.
// With kToShared the values are also kept in `slice` (slice[e - begin], read back later by this same thread):
// that is grad's only read from memory, so it is loaded evict-first.
template <typename scalar_t, bool kVector, bool kToShared>
__device__ __forceinline__ double thread_norm_sum(const StepArgs<scalar_t>& a, const scalar_t* grad, int64_t begin,
                                                  int64_t end, scalar_t* slice) {
  using L = Loader<scalar_t, kVector>;
  double sum = 0.0;
  for (int64_t e = begin + threadIdx.x * L::kSize; e < end; e += kThreads * L::kSize) {
    scalar_t g[L::kSize];
    if constexpr (kToShared) {
      L::load_last_use(grad + e, g);
      L::store(slice + (e - begin), g);
    } else {
      L::load(grad + e, g);
    }
#pragma unroll
    for (int j = 0; j < L::kSize; ++j) {
      const double v = static_cast<double>(g[j]);
      sum += a.l1mean ? fabs(v) : v * v;
    }
  }
  return sum;
}

template <typename scalar_t, bool kVector>
__global__ void __launch_bounds__(kThreads) norm_partials_kernel(StepArgs<scalar_t> a) {
  __shared__ double scratch[kWarps];
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * a.chunk;
  const int64_t end = begin + a.chunk < a.numel ? begin + a.chunk : a.numel;
  for (int64_t image = blockIdx.y; image < a.batch; image += gridDim.y) {
    if (!a.do_co[image]) {
      continue;  // the same for the whole block: no grad read, no partial written (pass 2 will not read it)
    }
    const double sum = block_sum(
        thread_norm_sum<scalar_t, kVector, false>(a, a.grad + image * a.numel, begin, end, nullptr), scratch);
    if (threadIdx.x == 0) {
      a.partials[image * gridDim.x + blockIdx.x] = sum;
    }
  }
}

// η for the elements a warp replaces, shared out over its lanes. The warp's selected elements are ranked (pack
// slot j, then lane); lane w evaluates ranks w, w + 32, ... and each owner takes its values back by shuffle.
// Without this, one selected element makes all 32 lanes run Philox and Box-Muller (the branch diverges), so a
// PRO step would cost a full η evaluation per element instead of one per replaced element. Every lane of the
// warp must call it; `warp_first` is the element of lane 0's first slot, lane l owns warp_first + l*kSize + j.
template <int kSize>
__device__ __forceinline__ void warp_shared_noise(Stream noise_words, int64_t warp_first, const bool (&take)[kSize],
                                                  float (&noise)[kSize]) {
  const unsigned int lane = threadIdx.x % 32;
  unsigned int ballot[kSize];
  int rank[kSize];
  int total = 0;
#pragma unroll
  for (int j = 0; j < kSize; ++j) {
    ballot[j] = __ballot_sync(0xffffffffu, take[j]);
    rank[j] = total + __popc(ballot[j] & ((1u << lane) - 1u));
    total += __popc(ballot[j]);
  }
  for (int round = 0; round * 32 < total; ++round) {  // `total` is the same in every lane
    float value = 0.0f;
    const int work = round * 32 + static_cast<int>(lane);
    if (work < total) {
      // Which (slot, owner lane) has rank `work`: skip whole slots, then the lower set bits of the slot's ballot.
      int slot = 0;
      int within = work;
#pragma unroll
      for (int j = 0; j + 1 < kSize; ++j) {
        const int count = __popc(ballot[j]);
        if (slot == j && within >= count) {
          within -= count;
          slot = j + 1;
        }
      }
      unsigned int bits = 0;
#pragma unroll
      for (int j = 0; j < kSize; ++j) {
        bits = slot == j ? ballot[j] : bits;
      }
      for (int k = 0; k < within; ++k) {
        bits &= bits - 1u;  // drop the lowest set bit
      }
      const int owner = __ffs(static_cast<int>(bits)) - 1;
      value = noise_value(noise_words, static_cast<uint64_t>(warp_first + owner * kSize + slot));
    }
#pragma unroll
    for (int j = 0; j < kSize; ++j) {
      const float got = __shfl_sync(0xffffffffu, value, rank[j] % 32);
      if (take[j] && rank[j] / 32 == round) {
        noise[j] = got;
      }
    }
  }
}

// CO / PRO / clamp over elements [begin, end) of one image; kCo and kPro are the image's flags. Element e's
// gradient is grad[e - grad_first]: the image's gradient in global memory (grad_first = 0) or a slice of it in
// shared memory. The loop runs the same number of times in every lane of the block (lanes past `end` idle),
// because PRO shares η across each warp.
template <typename scalar_t, bool kVector, bool kCo, bool kPro>
__device__ __forceinline__ void update_range(const StepArgs<scalar_t>& a, int64_t image, scalar_t norm,
                                             const scalar_t* grad, int64_t grad_first, int64_t begin,
                                             int64_t end) {
  using L = Loader<scalar_t, kVector>;
  const int64_t offset = image * a.numel;
  scalar_t* xp = a.xp + offset;
  scalar_t* mom = a.mom + offset;
  const scalar_t beta = kCo ? static_cast<scalar_t>(a.beta[image]) : scalar_t(0);
  const int32_t target_mask = kPro ? a.mask_idx[image] : 0;
  const Stream noise_words = kPro ? noise_stream(a.keys, image) : Stream{0, 0};
  const Stream mask_words = kPro ? mask_stream(a.keys, image) : Stream{0, 0};
  const int64_t lane_offset = static_cast<int64_t>(threadIdx.x) * L::kSize;
  for (int64_t first = begin; first < end; first += kThreads * L::kSize) {
    const int64_t e = first + lane_offset;
    // In the vector path begin, end and e are whole packs, so a lane's pack is either all inside or all past end.
    const bool inside = e < end;
    scalar_t x[L::kSize];
    scalar_t m[L::kSize];
    scalar_t g[L::kSize];
    if (inside) {
      L::load_last_use(xp + e, x);
      if constexpr (kCo) {
        L::load_last_use(mom + e, m);
        L::load(grad + (e - grad_first), g);  // may be shared memory (cluster variant): no global cache hint
      }
    }
    int64_t channel = e / a.hw;
    int64_t pixel = e - channel * a.hw;
    bool take[L::kSize];
    float noise[L::kSize];
    if constexpr (kPro) {
#pragma unroll
      for (int j = 0; j < L::kSize; ++j) {
        int32_t id = -1;
        if (inside) {
          int64_t index = e + j;
          if (a.pixel_masks) {
            index = (pixel + j) % a.hw;  // a pack may straddle channels (or several, when hw < the pack)
          }
          id = a.mask_ids != nullptr ? static_cast<int32_t>(a.mask_ids[offset + e + j])
                                     : mask_id(mask_words, static_cast<uint64_t>(index), a.num_masks);
        }
        take[j] = id == target_mask;
      }
      warp_shared_noise<L::kSize>(noise_words, e - static_cast<int64_t>(threadIdx.x % 32) * L::kSize, take, noise);
    }
    if (!inside) {
      continue;
    }
#pragma unroll
    for (int j = 0; j < L::kSize; ++j) {
      scalar_t value = x[j];
      if constexpr (kCo) {
        m[j] = a.alpha * m[j] + g[j] / norm;
        value = value - beta * m[j];
      }
      if constexpr (kPro) {
        if (take[j]) {
          value = static_cast<scalar_t>(noise[j]);
        }
      }
      x[j] = nan_max(nan_min(value, static_cast<scalar_t>(a.hi[channel])), static_cast<scalar_t>(a.lo[channel]));
      if (++pixel == a.hw) {  // a pack may straddle channels
        pixel = 0;
        ++channel;
      }
    }
    L::store_streaming(xp + e, x);
    if constexpr (kCo) {
      L::store_streaming(mom + e, m);
    }
  }
}

// The image's flags select one of four specialised loops (the same branch for the whole block).
template <typename scalar_t, bool kVector>
__device__ __forceinline__ void update_image_range(const StepArgs<scalar_t>& a, int64_t image, bool co, bool pro,
                                                   scalar_t norm, const scalar_t* grad, int64_t grad_first,
                                                   int64_t begin, int64_t end) {
  if (co) {
    if (pro) {
      update_range<scalar_t, kVector, true, true>(a, image, norm, grad, grad_first, begin, end);
    } else {
      update_range<scalar_t, kVector, true, false>(a, image, norm, grad, grad_first, begin, end);
    }
  } else if (pro) {
    update_range<scalar_t, kVector, false, true>(a, image, norm, grad, grad_first, begin, end);
  } else {
    update_range<scalar_t, kVector, false, false>(a, image, norm, grad, grad_first, begin, end);
  }
}

// The image norm from its total: mean for l1mean, floored at 1e-12.
template <typename scalar_t>
__device__ __forceinline__ scalar_t image_norm(const StepArgs<scalar_t>& a, double total) {
  if (a.l1mean) {
    total /= static_cast<double>(a.numel);
  }
  return nan_max(static_cast<scalar_t>(total), static_cast<scalar_t>(1e-12));
}

template <typename scalar_t, bool kVector>
__global__ void __launch_bounds__(kThreads) fade_update_kernel(StepArgs<scalar_t> a) {
  __shared__ double scratch[kWarps];
  __shared__ scalar_t shared_norm;
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * a.chunk;
  const int64_t end = begin + a.chunk < a.numel ? begin + a.chunk : a.numel;
  // Images in the reverse of pass 1's order: the last images' gradients are the ones still in L2.
  for (int64_t slot = blockIdx.y; slot < a.batch; slot += gridDim.y) {
    const int64_t image = a.batch - 1 - slot;
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
        shared_norm = image_norm(a, total);
      }
      __syncthreads();
      norm = shared_norm;
    }
    update_image_range<scalar_t, kVector>(a, image, co, pro, norm, a.grad + image * a.numel, 0, begin, end);
  }
}

// One image per cluster of kClusterBlocks blocks; block `rank` owns elements [rank*chunk, (rank+1)*chunk) and keeps
// their gradient in dynamic shared memory between the norm and the update, so grad is read from memory once.
template <typename scalar_t, bool kVector>
__global__ void __launch_bounds__(kThreads) fade_step_cluster_kernel(StepArgs<scalar_t> a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  namespace cg = cooperative_groups;
  extern __shared__ __align__(16) unsigned char grad_slice_bytes[];
  scalar_t* grad_slice = reinterpret_cast<scalar_t*>(grad_slice_bytes);
  __shared__ double scratch[kWarps];
  __shared__ double block_total;
  const cg::cluster_group cluster = cg::this_cluster();
  const int64_t image = blockIdx.x / kClusterBlocks;
  const int64_t begin = static_cast<int64_t>(cluster.block_rank()) * a.chunk;
  const int64_t end = begin + a.chunk < a.numel ? begin + a.chunk : a.numel;
  const bool co = a.do_co[image];  // the same for every block of the cluster, so all or none reach cluster.sync()
  const bool pro = a.do_pro[image];
  scalar_t norm = scalar_t(1);
  if (co) {
    const double sum = block_sum(
        thread_norm_sum<scalar_t, kVector, true>(a, a.grad + image * a.numel, begin, end, grad_slice), scratch);
    if (threadIdx.x == 0) {
      block_total = sum;
    }
    cluster.sync();  // every block's total is written and visible to the cluster
    double total = 0.0;
    for (unsigned int rank = 0; rank < kClusterBlocks; ++rank) {
      total += *cluster.map_shared_rank(&block_total, rank);
    }
    cluster.sync();  // no block leaves (freeing its shared memory) while another still reads its total
    norm = image_norm(a, total);
  }
  update_image_range<scalar_t, kVector>(a, image, co, pro, norm, grad_slice, begin, begin, end);
#else
  __trap();  // launched only on compute capability 9.0 and later (see launch_cluster)
#endif
}

template <typename scalar_t, bool kVector>
void launch_passes(const StepArgs<scalar_t>& args, dim3 grid, cudaStream_t stream) {
  norm_partials_kernel<scalar_t, kVector><<<grid, kThreads, 0, stream>>>(args);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  fade_update_kernel<scalar_t, kVector><<<grid, kThreads, 0, stream>>>(args);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

enum class StepVariant { TwoPass, Cluster };

// PIXELFADE_CUDA_STEP, read at every call so that tests and benchmarks can switch variants in one process.
StepVariant requested_variant() {
  const char* value = std::getenv("PIXELFADE_CUDA_STEP");
  const std::string name = value == nullptr ? "" : value;
  if (name.empty() || name == "two_pass") {
    return StepVariant::TwoPass;
  }
  TORCH_CHECK_VALUE(name == "cluster",
                    "pixelfade::fade_step_: PIXELFADE_CUDA_STEP must be 'two_pass' or 'cluster', got '" + name + "'");
  return StepVariant::Cluster;
}

// Lets `kernel` use up to `bytes` of dynamic shared memory on `device`: set once per kernel and device (at the
// first call, outside any CUDA-graph capture that later calls replay), not at every launch.
template <typename Kernel>
void allow_dynamic_shared_memory(Kernel kernel, int device, int bytes) {
  static std::mutex mutex;
  static std::set<std::pair<const void*, int>> configured;  // (kernel, device)
  const std::lock_guard<std::mutex> lock(mutex);
  if (configured.insert({reinterpret_cast<const void*>(kernel), device}).second) {
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  }
}

// The cluster variant: one cluster of kClusterBlocks blocks per image, dynamic shared memory for one block's
// slice of the gradient. Says why when this GPU cannot run it.
template <typename scalar_t, bool kVector>
void launch_cluster(const StepArgs<scalar_t>& args, cudaStream_t stream) {
  const auto kernel = fade_step_cluster_kernel<scalar_t, kVector>;
  const int64_t slice_bytes = args.chunk * static_cast<int64_t>(sizeof(scalar_t));
  const int device = c10::cuda::current_device();
  int major = 0;
  int shared_optin = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&shared_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  TORCH_CHECK_VALUE(major >= 9, "pixelfade::fade_step_: PIXELFADE_CUDA_STEP=cluster needs compute capability 9.0 "
                    "or later (thread-block clusters), this GPU has " + std::to_string(major) +
                    ".x; unset it or set it to 'two_pass'");
  constexpr int64_t kStaticShared = 1024;  // the kernel's own __shared__ variables, rounded up
  TORCH_CHECK_VALUE(slice_bytes + kStaticShared <= shared_optin,
                    "pixelfade::fade_step_: PIXELFADE_CUDA_STEP=cluster keeps 1/" + std::to_string(kClusterBlocks) +
                    " of an image's gradient in each block's shared memory: " + std::to_string(slice_bytes) +
                    " bytes for images of " + std::to_string(args.numel) + " elements, more than the " +
                    std::to_string(shared_optin) + " this GPU allows; use PIXELFADE_CUDA_STEP=two_pass");
  allow_dynamic_shared_memory(kernel, device, static_cast<int>(shared_optin - kStaticShared));
  cudaLaunchConfig_t config{};
  cudaLaunchAttribute attribute{};
  config.gridDim = dim3(static_cast<unsigned int>(args.batch * kClusterBlocks));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = static_cast<size_t>(slice_bytes);
  config.stream = stream;
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = kClusterBlocks;
  attribute.val.clusterDim.y = 1;
  attribute.val.clusterDim.z = 1;
  config.attrs = &attribute;
  config.numAttrs = 1;
  int clusters = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&clusters, kernel, &config));
  TORCH_CHECK_VALUE(clusters > 0, "pixelfade::fade_step_: this GPU cannot schedule a cluster of " +
                    std::to_string(kClusterBlocks) + " blocks with " + std::to_string(slice_bytes) +
                    " bytes of shared memory each; use PIXELFADE_CUDA_STEP=two_pass");
  C10_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, args));
}

template <typename scalar_t>
void fade_step_cuda_typed(const FadeStepTensors& t, const FadeStepParams& p) {
  const int64_t batch = t.xp.size(0);
  const int64_t numel = batch == 0 ? 0 : t.xp.numel() / batch;
  if (batch == 0 || numel == 0) {
    return;
  }
  const StepVariant variant = requested_variant();
  const bool vector = numel % Pack<scalar_t>::kSize == 0 && aligned16(t.xp.data_ptr()) &&
                      aligned16(t.mom.data_ptr()) && aligned16(t.grad.data_ptr());
  const int64_t pack = vector ? Pack<scalar_t>::kSize : 1;
  int64_t blocks_per_image = kClusterBlocks;
  if (variant == StepVariant::TwoPass) {
    // Enough blocks per image to fill the GPU, but at least one pack per thread.
    const int64_t wanted = std::max<int64_t>(1, ceil_div(target_blocks(), batch));
    blocks_per_image = std::min(wanted, ceil_div(numel, kThreads * pack));
  }
  // Chunks are whole packs, so every block's first element is 16-byte aligned.
  const int64_t chunk = ceil_div(ceil_div(numel, blocks_per_image), pack) * pack;
  if (variant == StepVariant::TwoPass) {
    blocks_per_image = ceil_div(numel, chunk);
  }
  at::Tensor partials;
  if (variant == StepVariant::TwoPass) {
    partials = at::empty({batch, blocks_per_image}, t.xp.options().dtype(at::kDouble));
  }
  const StepArgs<scalar_t> args{t.xp.data_ptr<scalar_t>(),
                                t.mom.data_ptr<scalar_t>(),
                                t.grad.data_ptr<scalar_t>(),
                                partials.defined() ? partials.data_ptr<double>() : nullptr,
                                t.do_co.data_ptr<bool>(),
                                t.do_pro.data_ptr<bool>(),
                                t.beta.data_ptr<float>(),
                                t.mask_idx.data_ptr<int32_t>(),
                                t.keys.data_ptr<int64_t>(),
                                t.mask_ids.defined() ? t.mask_ids.data_ptr<uint8_t>() : nullptr,
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
  if (variant == StepVariant::Cluster) {
    if (vector) {
      launch_cluster<scalar_t, true>(args, stream);
    } else {
      launch_cluster<scalar_t, false>(args, stream);
    }
    return;
  }
  const dim3 grid(static_cast<unsigned int>(blocks_per_image), static_cast<unsigned int>(std::min(batch, kMaxGridY)));
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
                    int64_t num_masks, c10::string_view norm, bool pixel_masks,
                    const std::optional<at::Tensor>& mask_ids) {
  run_fade_step(c10::DeviceType::CUDA, xp, mom, grad, do_co, do_pro, beta, mask_idx, keys, lo, hi, alpha,
                num_masks, norm, pixel_masks, mask_ids, &fade_step_kernel_cuda);
}

}  // namespace
}  // namespace cuda
}  // namespace pixelfade

TORCH_LIBRARY_IMPL(pixelfade, CUDA, m) {
  m.impl("fade_step_", &pixelfade::cuda::fade_step_cuda);
}
