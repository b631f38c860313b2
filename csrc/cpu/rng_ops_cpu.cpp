// fade_noise, fade_mask_ids and philox_words on CPU: every value is a pure function of (key, index), so each
// element is computed independently, parallel over (image, chunk).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "cpu/philox_runs.h"
#include "cpu_chunks.h"
#include "fade_checks.h"
#include "philox.h"

namespace pixelfade {
namespace {

int64_t image_numel(c10::IntArrayRef shape) {
  return shape[0] * shape[1] * shape[2];
}

at::Tensor fade_noise_cpu(const at::Tensor& keys, c10::IntArrayRef shape) {
  const auto out_shape = check_rng_image_args("pixelfade::fade_noise", c10::DeviceType::CPU, keys, shape);
  at::Tensor out = at::empty(out_shape, keys.options().dtype(at::kFloat));
  const int64_t numel = image_numel(shape);
  if (out.numel() == 0) {
    return out;
  }
  const at::Tensor keys_c = keys.contiguous();
  const int64_t* key_ptr = keys_c.data_ptr<int64_t>();
  float* out_ptr = out.data_ptr<float>();
  for_each_image_chunk(keys.size(0), numel, [&](int64_t image, int64_t, int64_t begin, int64_t end) {
    const Stream noise = noise_stream(key_ptr, image);
    float* image_out = out_ptr + image * numel;
    for (int64_t e = begin; e < end; e += kPhiloxRun) {
      noise_run(noise, static_cast<uint64_t>(e), std::min(kPhiloxRun, end - e), image_out + e);
    }
  });
  return out;
}

at::Tensor fade_mask_ids_cpu(const at::Tensor& keys, c10::IntArrayRef shape, int64_t num_masks, bool pixel_masks) {
  constexpr const char* op = "pixelfade::fade_mask_ids";
  const auto out_shape = check_rng_image_args(op, c10::DeviceType::CPU, keys, shape);
  check_num_masks(op, num_masks);
  at::Tensor out = at::empty(out_shape, keys.options().dtype(at::kByte));
  const int64_t numel = image_numel(shape);
  if (out.numel() == 0) {
    return out;
  }
  const int64_t hw = shape[1] * shape[2];
  const int32_t masks = static_cast<int32_t>(num_masks);
  const at::Tensor keys_c = keys.contiguous();
  const int64_t* key_ptr = keys_c.data_ptr<int64_t>();
  uint8_t* out_ptr = out.data_ptr<uint8_t>();
  for_each_image_chunk(keys.size(0), numel, [&](int64_t image, int64_t, int64_t begin, int64_t end) {
    const Stream mask = mask_stream(key_ptr, image);
    uint8_t* image_out = out_ptr + image * numel;
    int32_t ids[kPhiloxRun];
    for (int64_t e = begin; e < end;) {
      // A run of consecutive mask indices: within one channel when masks are per pixel.
      const int64_t index = pixel_masks ? e % hw : e;
      const int64_t run = std::min({kPhiloxRun, end - e, pixel_masks ? hw - index : kPhiloxRun});
      mask_id_run(mask, static_cast<uint64_t>(index), run, masks, ids);
      for (int64_t j = 0; j < run; ++j) {
        image_out[e + j] = static_cast<uint8_t>(ids[j]);
      }
      e += run;
    }
  });
  return out;
}

at::Tensor philox_words_cpu(const at::Tensor& key, const at::Tensor& index,
                            const std::optional<at::Tensor>& counter_high) {
  const auto out_shape = check_philox_args(c10::DeviceType::CPU, key, index, counter_high);
  at::Tensor out = at::empty(out_shape, key.options());
  const at::Tensor key_c = key.contiguous();
  const at::Tensor index_c = index.contiguous();
  const at::Tensor high_c = counter_high.has_value() ? counter_high->contiguous() : at::zeros_like(key_c);
  const int64_t* key_ptr = key_c.data_ptr<int64_t>();
  const int64_t* index_ptr = index_c.data_ptr<int64_t>();
  const int64_t* high_ptr = high_c.data_ptr<int64_t>();
  int64_t* out_ptr = out.data_ptr<int64_t>();
  at::parallel_for(0, key.numel(), 1024, [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) {
      const Stream stream{static_cast<uint64_t>(key_ptr[i]), static_cast<uint64_t>(high_ptr[i])};
      const PhiloxWords words = philox4x32_10(stream, static_cast<uint64_t>(index_ptr[i]));
      out_ptr[4 * i + 0] = words.r0;
      out_ptr[4 * i + 1] = words.r1;
      out_ptr[4 * i + 2] = words.r2;
      out_ptr[4 * i + 3] = words.r3;
    }
  });
  return out;
}

}  // namespace
}  // namespace pixelfade

TORCH_LIBRARY_IMPL(pixelfade, CPU, m) {
  m.impl("fade_noise", &pixelfade::fade_noise_cpu);
  m.impl("fade_mask_ids", &pixelfade::fade_mask_ids_cpu);
  m.impl("philox_words", &pixelfade::philox_words_cpu);
}
