// Argument checks shared by the CPU and CUDA implementations of the pixelfade ops, and the host-side wrapper
// that lets the kernels assume contiguous tensors.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/string_view.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace pixelfade {

enum class Norm { L1Mean, L2Sq };

// "l1mean" or "l2sq"; anything else raises a ValueError naming `op`'s argument `norm`.
Norm parse_norm(const char* op, c10::string_view norm);

// Raises unless 1 <= num_masks <= 255 (mask ids are uint8).
void check_num_masks(const char* op, int64_t num_masks);

// Raises unless `keys` is an int64 [B, 4] tensor (B = expected_batch when >= 0) and `shape` is (C, H, W) >= 0.
void check_keys(const char* op, const at::Tensor& keys, int64_t expected_batch);
void check_image_shape(const char* op, c10::IntArrayRef shape);

// fade_noise / fade_mask_ids: checks keys (on a `backend` device) and shape; returns [B, C, H, W].
std::vector<int64_t> check_rng_image_args(const char* op, c10::DeviceType backend, const at::Tensor& keys,
                                          c10::IntArrayRef shape);

// philox_words: key, index (and counter_high when given) int64 tensors of one shape on one `backend` device;
// returns [*shape, 4].
std::vector<int64_t> check_philox_args(c10::DeviceType backend, const at::Tensor& key, const at::Tensor& index,
                                       const std::optional<at::Tensor>& counter_high);

// The fade_step_ arguments as the kernels see them: every tensor contiguous, on xp's device, checked.
// mask_ids is undefined when the caller did not materialise the ids (the kernels then draw them from the keys).
struct FadeStepTensors {
  at::Tensor xp, mom, grad, do_co, do_pro, beta, mask_idx, keys, lo, hi, mask_ids;
};

struct FadeStepParams {
  double alpha;
  int32_t num_masks;
  Norm norm;
  bool pixel_masks;
};

using FadeStepKernel = void (*)(const FadeStepTensors&, const FadeStepParams&);

// Checks every argument of fade_step_ (names the argument and the expectation on failure; xp must be on a
// `backend` device), runs `kernel` on contiguous tensors, and copies the results back into xp/mom where those
// were not contiguous.
void run_fade_step(c10::DeviceType backend, at::Tensor& xp, at::Tensor& mom, const at::Tensor& grad,
                   const at::Tensor& do_co, const at::Tensor& do_pro, const at::Tensor& beta,
                   const at::Tensor& mask_idx, const at::Tensor& keys, const at::Tensor& lo, const at::Tensor& hi,
                   double alpha, int64_t num_masks, c10::string_view norm, bool pixel_masks,
                   const std::optional<at::Tensor>& mask_ids, FadeStepKernel kernel);

}  // namespace pixelfade
