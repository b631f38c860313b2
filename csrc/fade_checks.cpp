#include "fade_checks.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <string>
#include <vector>

#include "philox.h"

namespace pixelfade {
namespace {

constexpr const char* kKeysLayout =
    "noise key, noise counter word, mask key, mask counter word per image; reference.derive_keys";

// torch's Python spelling of a dtype (float32, int64, ...), so messages read like the Python API.
std::string dtype_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kShort: return "int16";
    case at::kChar: return "int8";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return c10::toString(dtype);
  }
}

// "[2, 3, 4, 4]", built without iostreams (as are all integers in these messages): formatting an integer
// through an ostream segfaulted in one CUDA build of the extension (torch 2.11, gcc 13, Ubuntu 24.04).
std::string shape_text(c10::IntArrayRef shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    text += (i == 0 ? "" : ", ") + std::to_string(shape[i]);
  }
  return text + "]";
}

// "a float32 tensor" / "an int64 tensor".
std::string with_article(const std::string& dtype) {
  return (dtype[0] == 'i' || dtype[0] == 'u' ? "an " : "a ") + dtype;
}

std::string describe(const at::Tensor& t) {
  return with_article(dtype_name(t.scalar_type())) + " tensor of shape " + shape_text(t.sizes()) + " on " +
         t.device().str();
}

// Checks dtype (TypeError), then shape and device (ValueError) of one tensor argument.
void expect_tensor(const char* op, const char* name, const at::Tensor& t, at::ScalarType dtype,
                   c10::IntArrayRef shape, const at::Device& device) {
  TORCH_CHECK_VALUE(t.defined(), op, ": ", name, " must be a tensor, got an undefined tensor");
  TORCH_CHECK_TYPE(t.scalar_type() == dtype, op, ": ", name, " must be ", with_article(dtype_name(dtype)),
                   " tensor of shape ", shape_text(shape), ", got ", describe(t));
  TORCH_CHECK_VALUE(t.sizes() == shape, op, ": ", name, " must have shape ", shape_text(shape), ", got ",
                    describe(t));
  TORCH_CHECK_VALUE(t.device() == device, op, ": ", name, " must be on ", device.str(),
                    " (the device of xp), got ", describe(t));
}

}  // namespace

Norm parse_norm(const char* op, c10::string_view norm) {
  if (norm == "l1mean") {
    return Norm::L1Mean;
  }
  TORCH_CHECK_VALUE(norm == "l2sq", op, ": norm must be 'l1mean' or 'l2sq', got '", std::string(norm), "'");
  return Norm::L2Sq;
}

void check_num_masks(const char* op, int64_t num_masks) {
  TORCH_CHECK_VALUE(num_masks >= 1 && num_masks <= 255, op,
                    ": num_masks must be in [1, 255] (mask ids are uint8), got ", std::to_string(num_masks));
}

void check_keys(const char* op, const at::Tensor& keys, int64_t expected_batch) {
  TORCH_CHECK_VALUE(keys.defined(), op, ": keys must be a tensor, got an undefined tensor");
  TORCH_CHECK_TYPE(keys.scalar_type() == at::kLong, op, ": keys must be an int64 tensor of shape [B, 4] (", kKeysLayout,
                   "), got ", describe(keys));
  TORCH_CHECK_VALUE(keys.dim() == 2 && keys.size(1) == kKeyWords, op, ": keys must have shape [B, 4] (", kKeysLayout,
                    "), got ", describe(keys));
  TORCH_CHECK_VALUE(expected_batch < 0 || keys.size(0) == expected_batch, op, ": keys must have shape [",
                    std::to_string(expected_batch), ", 4] (one row per image of xp), got ", describe(keys));
}

void check_image_shape(const char* op, c10::IntArrayRef shape) {
  TORCH_CHECK_VALUE(shape.size() == 3, op, ": shape must be (C, H, W), got ", shape_text(shape));
  for (const int64_t size : shape) {
    TORCH_CHECK_VALUE(size >= 0, op, ": shape must be non-negative, got ", shape_text(shape));
  }
}

std::vector<int64_t> check_rng_image_args(const char* op, c10::DeviceType backend, const at::Tensor& keys,
                                          c10::IntArrayRef shape) {
  check_keys(op, keys, -1);
  TORCH_CHECK_VALUE(keys.device().type() == backend, op, ": keys must be on a ", c10::DeviceTypeName(backend, true),
                    " device for this kernel, got ", describe(keys));
  check_image_shape(op, shape);
  return {keys.size(0), shape[0], shape[1], shape[2]};
}

std::vector<int64_t> check_philox_args(c10::DeviceType backend, const at::Tensor& key, const at::Tensor& index,
                                       const std::optional<at::Tensor>& counter_high) {
  constexpr const char* op = "pixelfade::philox_words";
  TORCH_CHECK_VALUE(key.defined() && index.defined(), op, ": key and index must be tensors");
  TORCH_CHECK_TYPE(key.scalar_type() == at::kLong, op, ": key must be an int64 tensor (uint64 bits), got ",
                   describe(key));
  TORCH_CHECK_TYPE(index.scalar_type() == at::kLong, op, ": index must be an int64 tensor, got ", describe(index));
  TORCH_CHECK_VALUE(key.sizes() == index.sizes(), op, ": key and index must have the same shape, got key ",
                    describe(key), " and index ", describe(index));
  TORCH_CHECK_VALUE(key.device() == index.device() && key.device().type() == backend, op,
                    ": key and index must be on one ", c10::DeviceTypeName(backend, true), " device, got key ",
                    describe(key), " and index ", describe(index));
  if (counter_high.has_value()) {
    TORCH_CHECK_TYPE(counter_high->scalar_type() == at::kLong, op,
                     ": counter_high must be an int64 tensor (uint64 bits), got ", describe(*counter_high));
    TORCH_CHECK_VALUE(counter_high->sizes() == key.sizes() && counter_high->device() == key.device(), op,
                      ": counter_high must have key's shape and device, got key ", describe(key),
                      " and counter_high ", describe(*counter_high));
  }
  std::vector<int64_t> out_shape(key.sizes().begin(), key.sizes().end());
  out_shape.push_back(4);
  return out_shape;
}

void run_fade_step(c10::DeviceType backend, at::Tensor& xp, at::Tensor& mom, const at::Tensor& grad,
                   const at::Tensor& do_co, const at::Tensor& do_pro, const at::Tensor& beta,
                   const at::Tensor& mask_idx, const at::Tensor& keys, const at::Tensor& lo, const at::Tensor& hi,
                   double alpha, int64_t num_masks, c10::string_view norm, bool pixel_masks,
                   const std::optional<at::Tensor>& mask_ids, FadeStepKernel kernel) {
  constexpr const char* op = "pixelfade::fade_step_";
  TORCH_CHECK_VALUE(xp.defined(), op, ": xp must be a tensor, got an undefined tensor");
  TORCH_CHECK_TYPE(xp.scalar_type() == at::kFloat || xp.scalar_type() == at::kDouble, op,
                   ": xp must be a float32 or float64 tensor of shape [B, C, H, W], got ", describe(xp));
  TORCH_CHECK_VALUE(xp.dim() == 4, op, ": xp must have shape [B, C, H, W], got ", describe(xp));
  TORCH_CHECK_VALUE(xp.device().type() == backend, op, ": all tensors must be on one device; this call went to the ",
                    c10::DeviceTypeName(backend), " kernel (some argument is there) but xp is ", describe(xp));
  const int64_t batch = xp.size(0);
  const int64_t channels = xp.size(1);
  const at::Device device = xp.device();
  expect_tensor(op, "mom", mom, xp.scalar_type(), xp.sizes(), device);
  expect_tensor(op, "grad", grad, xp.scalar_type(), xp.sizes(), device);
  expect_tensor(op, "do_co", do_co, at::kBool, {batch}, device);
  expect_tensor(op, "do_pro", do_pro, at::kBool, {batch}, device);
  expect_tensor(op, "beta", beta, at::kFloat, {batch}, device);
  expect_tensor(op, "mask_idx", mask_idx, at::kInt, {batch}, device);
  check_keys(op, keys, batch);
  expect_tensor(op, "keys", keys, at::kLong, {batch, kKeyWords}, device);
  expect_tensor(op, "lo", lo, at::kFloat, {channels}, device);
  expect_tensor(op, "hi", hi, at::kFloat, {channels}, device);
  check_num_masks(op, num_masks);
  TORCH_CHECK_VALUE(!xp.is_same(mom), op, ": xp and mom must be different tensors");
  const bool has_mask_ids = mask_ids.has_value() && mask_ids->defined();
  if (has_mask_ids) {  // fade_mask_ids(keys, (C, H, W), num_masks, pixel_masks), materialised once per batch
    expect_tensor(op, "mask_ids", *mask_ids, at::kByte, xp.sizes(), device);
  }

  const FadeStepParams params{alpha, static_cast<int32_t>(num_masks), parse_norm(op, norm), pixel_masks};
  FadeStepTensors tensors{xp.contiguous(), mom.contiguous(), grad.contiguous(), do_co.contiguous(),
                          do_pro.contiguous(), beta.contiguous(), mask_idx.contiguous(), keys.contiguous(),
                          lo.contiguous(), hi.contiguous(), has_mask_ids ? mask_ids->contiguous() : at::Tensor()};
  kernel(tensors, params);
  // xp/mom were updated on contiguous copies when they were strided; write the results back.
  if (!tensors.xp.is_same(xp)) {
    xp.copy_(tensors.xp);
  }
  if (!tensors.mom.is_same(mom)) {
    mom.copy_(tensors.mom);
  }
}

}  // namespace pixelfade
