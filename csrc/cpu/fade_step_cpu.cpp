// fade_step_ on CPU: a deterministic per-image norm (pass 1: fixed-layout chunk partials, summed in order),
// then one fused pass per chunk (CO, PRO, clamp), parallel over (image, chunk) with at::parallel_for.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu/philox_runs.h"
#include "cpu_chunks.h"
#include "fade_checks.h"

namespace pixelfade {
namespace {

constexpr int kLanes = 8;     // independent accumulators: a fixed summation order the compiler can vectorise
constexpr int64_t kTile = kPhiloxRun;  // PRO works on tiles: mask ids for the whole tile, then the replacements

// NaN-propagating min / max, like torch.minimum / torch.maximum / clamp_min.
template <typename T>
inline T nan_min(T a, T b) {
  return (a < b || a != a) ? a : b;
}
template <typename T>
inline T nan_max(T a, T b) {
  return (a > b || a != a) ? a : b;
}

// Sum over one chunk of |g| (l1mean) or g^2 (l2sq), in double, in a fixed order.
template <typename scalar_t>
double chunk_norm_sum(const scalar_t* g, int64_t n, Norm norm) {
  double lanes[kLanes] = {};
  const int64_t full = n - n % kLanes;
  if (norm == Norm::L1Mean) {
    for (int64_t e = 0; e < full; e += kLanes) {
      for (int k = 0; k < kLanes; ++k) {
        lanes[k] += std::abs(static_cast<double>(g[e + k]));
      }
    }
    for (int64_t e = full; e < n; ++e) {
      lanes[e - full] += std::abs(static_cast<double>(g[e]));
    }
  } else {
    for (int64_t e = 0; e < full; e += kLanes) {
      for (int k = 0; k < kLanes; ++k) {
        const double v = static_cast<double>(g[e + k]);
        lanes[k] += v * v;
      }
    }
    for (int64_t e = full; e < n; ++e) {
      const double v = static_cast<double>(g[e]);
      lanes[e - full] += v * v;
    }
  }
  double total = 0.0;
  for (int k = 0; k < kLanes; ++k) {
    total += lanes[k];
  }
  return total;
}

// Everything the fused pass needs to know about one image.
template <typename scalar_t>
struct ImageStep {
  scalar_t* xp;
  scalar_t* mom;
  const scalar_t* grad;
  bool co;
  bool pro;
  scalar_t alpha;
  scalar_t beta;
  scalar_t norm;
  int32_t target_mask;
  Stream noise;
  Stream mask;
  const uint8_t* mask_ids;  // the image's materialised mask ids, or nullptr: draw them from the mask stream
};

struct ImageLayout {
  int64_t hw;
  int32_t num_masks;
  bool pixel_masks;
  const float* lo;
  const float* hi;
};

// The elements first + j (j < n) whose mask id ids[j] is `target`, written to `replaced` (branch-free); their count.
template <typename id_t>
int64_t replaced_elements(const id_t* ids, int64_t n, int32_t target, int64_t first, uint64_t* replaced) {
  int64_t count = 0;
  for (int64_t j = 0; j < n; ++j) {
    replaced[count] = static_cast<uint64_t>(first + j);
    count += static_cast<int32_t>(ids[j]) == target;
  }
  return count;
}

// CO, PRO and clamp on elements [begin, end) of one image, one channel segment and tile at a time.
template <typename scalar_t>
void update_chunk(const ImageStep<scalar_t>& s, const ImageLayout& layout, int64_t begin, int64_t end) {
  int32_t ids[kTile];
  uint64_t replaced[kTile];
  float noise[kTile];
  for (int64_t segment = begin; segment < end;) {
    const int64_t channel = segment / layout.hw;
    const int64_t segment_end = std::min(end, (channel + 1) * layout.hw);
    const scalar_t lo = static_cast<scalar_t>(layout.lo[channel]);
    const scalar_t hi = static_cast<scalar_t>(layout.hi[channel]);
    for (int64_t first = segment; first < segment_end; first += kTile) {
      const int64_t n = std::min(segment_end - first, kTile);
      scalar_t* x = s.xp + first;
      if (s.co) {
        scalar_t* m = s.mom + first;
        const scalar_t* g = s.grad + first;
        for (int64_t j = 0; j < n; ++j) {
          const scalar_t updated = s.alpha * m[j] + g[j] / s.norm;
          m[j] = updated;
          x[j] = x[j] - s.beta * updated;
        }
      }
      if (s.pro) {
        // Mask ids for the whole tile (read, or drawn with vectorised Philox), then η only where replaced.
        int64_t count = 0;
        if (s.mask_ids != nullptr) {
          count = replaced_elements(s.mask_ids + first, n, s.target_mask, first, replaced);
        } else {
          const uint64_t mask_index =
              static_cast<uint64_t>(layout.pixel_masks ? first - channel * layout.hw : first);
          mask_id_run(s.mask, mask_index, n, layout.num_masks, ids);
          count = replaced_elements(ids, n, s.target_mask, first, replaced);
        }
        noise_at(s.noise, replaced, count, noise);
        for (int64_t k = 0; k < count; ++k) {
          x[static_cast<int64_t>(replaced[k]) - first] = static_cast<scalar_t>(noise[k]);
        }
      }
      for (int64_t j = 0; j < n; ++j) {
        x[j] = nan_max(nan_min(x[j], hi), lo);
      }
    }
    segment = segment_end;
  }
}

template <typename scalar_t>
void fade_step_cpu_typed(const FadeStepTensors& t, const FadeStepParams& p) {
  const int64_t batch = t.xp.size(0);
  const int64_t numel = t.xp.numel() / std::max<int64_t>(batch, 1);
  if (batch == 0 || numel == 0) {
    return;
  }
  scalar_t* xp = t.xp.data_ptr<scalar_t>();
  scalar_t* mom = t.mom.data_ptr<scalar_t>();
  const scalar_t* grad = t.grad.data_ptr<scalar_t>();
  const bool* do_co = t.do_co.data_ptr<bool>();
  const bool* do_pro = t.do_pro.data_ptr<bool>();
  const float* beta = t.beta.data_ptr<float>();
  const int32_t* mask_idx = t.mask_idx.data_ptr<int32_t>();
  const int64_t* keys = t.keys.data_ptr<int64_t>();
  const uint8_t* mask_ids = t.mask_ids.defined() ? t.mask_ids.data_ptr<uint8_t>() : nullptr;

  // Pass 1: per-chunk partial sums of the norm (only for images that take a CO step; others never read grad).
  const int64_t chunks = cpu_chunks_per_image(numel);
  std::vector<double> partials(static_cast<size_t>(batch * chunks), 0.0);
  for_each_image_chunk(batch, numel, [&](int64_t image, int64_t chunk, int64_t begin, int64_t end) {
    if (do_co[image]) {
      partials[image * chunks + chunk] = chunk_norm_sum(grad + image * numel + begin, end - begin, p.norm);
    }
  });
  std::vector<scalar_t> norms(static_cast<size_t>(batch), scalar_t(1));
  for (int64_t image = 0; image < batch; ++image) {
    if (!do_co[image]) {
      continue;
    }
    double total = 0.0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      total += partials[image * chunks + chunk];
    }
    if (p.norm == Norm::L1Mean) {
      total /= static_cast<double>(numel);
    }
    norms[image] = nan_max(static_cast<scalar_t>(total), static_cast<scalar_t>(1e-12));
  }

  // Pass 2: the fused update.
  const ImageLayout layout{t.xp.size(2) * t.xp.size(3), p.num_masks, p.pixel_masks, t.lo.data_ptr<float>(),
                           t.hi.data_ptr<float>()};
  for_each_image_chunk(batch, numel, [&](int64_t image, int64_t /*chunk*/, int64_t begin, int64_t end) {
    const int64_t offset = image * numel;
    const ImageStep<scalar_t> step{xp + offset,
                                   mom + offset,
                                   grad + offset,
                                   do_co[image],
                                   do_pro[image],
                                   static_cast<scalar_t>(p.alpha),
                                   static_cast<scalar_t>(beta[image]),
                                   norms[image],
                                   mask_idx[image],
                                   noise_stream(keys, image),
                                   mask_stream(keys, image),
                                   mask_ids == nullptr ? nullptr : mask_ids + offset};
    update_chunk(step, layout, begin, end);
  });
}

void fade_step_kernel_cpu(const FadeStepTensors& t, const FadeStepParams& p) {
  AT_DISPATCH_FLOATING_TYPES(t.xp.scalar_type(), "pixelfade::fade_step_ (CPU)",
                             [&] { fade_step_cpu_typed<scalar_t>(t, p); });
}

void fade_step_cpu(at::Tensor& xp, at::Tensor& mom, const at::Tensor& grad, const at::Tensor& do_co,
                   const at::Tensor& do_pro, const at::Tensor& beta, const at::Tensor& mask_idx,
                   const at::Tensor& keys, const at::Tensor& lo, const at::Tensor& hi, double alpha,
                   int64_t num_masks, c10::string_view norm, bool pixel_masks,
                   const std::optional<at::Tensor>& mask_ids) {
  run_fade_step(c10::DeviceType::CPU, xp, mom, grad, do_co, do_pro, beta, mask_idx, keys, lo, hi, alpha,
                num_masks, norm, pixel_masks, mask_ids, &fade_step_kernel_cpu);
}

}  // namespace
}  // namespace pixelfade

TORCH_LIBRARY_IMPL(pixelfade, CPU, m) {
  m.impl("fade_step_", &pixelfade::fade_step_cpu);
}
