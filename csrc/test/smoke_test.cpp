// C++ smoke test of the pixelfade library (run by ctest): calls the ops through the dispatcher, as a libtorch
// user would, and checks them against known answers and independent ATen computations; checks the CPU kernels'
// vectorised Philox runs (and η from vector logf/cosf) against the scalar contract where the ops cannot reach
// (indices across 2^32 and up to 2^64 - 1).
//
// usage: pixelfade_smoke_test --philox KEY INDEX W0 W1 W2 W3 [--philox ...] --noise KEY NORMAL MASK_ID_5
//                             --philox-kat K0 K1 C0 C1 C2 C3 W0 W1 W2 W3 [--philox-kat ...]
//   --philox:     Philox4x32-10 words of (KEY, INDEX) with a zero upper counter (decimal uint64 / uint32);
//   --noise:      η and the 5-mask id at element 0 for noise/mask key KEY, zero counter words (contract v1);
//                 both from tests/data/rng_vectors.json;
//   --philox-kat: words of key (K0, K1) and all four counter words (0x hex uint32; Random123's known answers in
//                 tests/data/rng_vectors_v2.json): the counter's upper words, which contract v2 uses.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <iostream>
#include <string>
#include <vector>

#include "build_info.h"
#include "cpu/philox_runs.h"
#include "philox.h"

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  std::cout << (ok ? "  ok    " : "  FAIL  ") << what << "\n";
  if (!ok) {
    ++failures;
  }
}

int64_t key_bits(const std::string& decimal) {
  return static_cast<int64_t>(std::stoull(decimal));  // uint64 bits carried in int64, as the ops expect
}

// Two 32-bit words written in 0x hex as one 64-bit value (low word first), in int64.
int64_t word_pair(const std::string& low, const std::string& high) {
  return static_cast<int64_t>(std::stoull(low, nullptr, 16) | (std::stoull(high, nullptr, 16) << 32));
}

using PhiloxWordsOp = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&);
using FadeNoiseOp = at::Tensor(const at::Tensor&, c10::SymIntArrayRef);
using FadeMaskIdsOp = at::Tensor(const at::Tensor&, c10::SymIntArrayRef, int64_t, bool);
using FadeStepOp = void(at::Tensor&, at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                        const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                        double, int64_t, c10::string_view, bool, const std::optional<at::Tensor>&);

template <typename Signature>
c10::TypedOperatorHandle<Signature> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

void check_philox(const std::vector<std::string>& v) {
  const at::Tensor key = at::tensor({key_bits(v[0])}, at::kLong);
  const at::Tensor index = at::tensor({key_bits(v[1])}, at::kLong);
  const at::Tensor words = find_op<PhiloxWordsOp>("pixelfade::philox_words").call(key, index, std::nullopt);
  bool same = words.sizes() == c10::IntArrayRef({1, 4});
  for (int j = 0; same && j < 4; ++j) {
    same = words[0][j].item<int64_t>() == std::stoll(v[2 + j]);
  }
  expect(same, "philox_words(" + v[0] + ", " + v[1] + ") matches the known answer");
}

// v: K0 K1 C0 C1 C2 C3 W0 W1 W2 W3 (0x hex).
void check_philox_kat(const std::vector<std::string>& v) {
  const at::Tensor key = at::tensor({word_pair(v[0], v[1])}, at::kLong);
  const at::Tensor index = at::tensor({word_pair(v[2], v[3])}, at::kLong);
  const at::Tensor high = at::tensor({word_pair(v[4], v[5])}, at::kLong);
  const at::Tensor words = find_op<PhiloxWordsOp>("pixelfade::philox_words").call(key, index, high);
  bool same = words.sizes() == c10::IntArrayRef({1, 4});
  for (int j = 0; same && j < 4; ++j) {
    same = static_cast<uint64_t>(words[0][j].item<int64_t>()) == std::stoull(v[6 + j], nullptr, 16);
  }
  expect(same, "philox_words with counter (" + v[2] + ", " + v[3] + ", " + v[4] + ", " + v[5] +
                   ") matches Random123's known answer");
}

void check_noise(const std::vector<std::string>& v) {
  // Noise key = mask key = KEY with zero counter words: a v1 image's keys row.
  const at::Tensor keys = at::tensor({key_bits(v[0]), int64_t{0}, key_bits(v[0]), int64_t{0}}, at::kLong).reshape({1, 4});
  const std::vector<c10::SymInt> shape{c10::SymInt(1), c10::SymInt(1), c10::SymInt(1)};
  const at::Tensor noise = find_op<FadeNoiseOp>("pixelfade::fade_noise").call(keys, shape);
  expect(noise.sizes() == c10::IntArrayRef({1, 1, 1, 1}) && noise.scalar_type() == at::kFloat &&
             std::abs(noise.item<float>() - std::stod(v[1])) <= 1e-6,
         "fade_noise at element 0 matches the known η");
  const at::Tensor ids = find_op<FadeMaskIdsOp>("pixelfade::fade_mask_ids").call(keys, shape, 5, false);
  expect(ids.scalar_type() == at::kByte && ids.item<uint8_t>() == std::stoi(v[2]),
         "fade_mask_ids at element 0 matches the known 5-mask id");
}

// Image 0: CO only (mom checked against an ATen computation of the update); image 1: PRO only, zero gradient.
void check_fade_step() {
  const auto fade_step = find_op<FadeStepOp>("pixelfade::fade_step_");
  at::manual_seed(0);
  const int64_t batch = 2, channels = 3;
  at::Tensor xp = at::randn({batch, channels, 7, 5}) * 4;
  at::Tensor mom = at::randn_like(xp);
  at::Tensor grad = at::randn_like(xp);
  grad[1].zero_();
  const at::Tensor mom_before = mom.clone();
  const at::Tensor do_co = at::tensor({1, 0}).to(at::kBool);
  const at::Tensor do_pro = at::tensor({0, 1}).to(at::kBool);
  const at::Tensor beta = at::full({batch}, 0.5f);
  const at::Tensor mask_idx = at::zeros({batch}, at::kInt);
  const at::Tensor keys =
      at::tensor({int64_t{11}, int64_t{5}, int64_t{12}, int64_t{-7}, int64_t{-3}, int64_t{-1}, int64_t{-4}, int64_t{9}},
                 at::kLong)
          .reshape({2, 4});
  const at::Tensor lo = at::tensor({-1.0f, -0.5f, -2.0f});
  const at::Tensor hi = at::tensor({1.0f, 0.5f, 2.0f});
  const double alpha = 0.6;
  const int64_t num_masks = 5;
  const c10::string_view norm = "l1mean";
  const at::Tensor xp_before = xp.clone();
  fade_step.call(xp, mom, grad, do_co, do_pro, beta, mask_idx, keys, lo, hi, alpha, num_masks, norm, true,
                 std::nullopt);

  const at::Tensor expected_mom0 = alpha * mom_before[0] + grad[0] / grad[0].abs().mean();
  expect(at::allclose(mom[0], expected_mom0, 1e-5, 1e-6), "fade_step_ CO updates mom as alpha*mom + G/mean|G|");
  expect(at::equal(mom[1], mom_before[1]), "fade_step_ leaves mom alone without CO");
  const at::Tensor lo_b = lo.reshape({1, channels, 1, 1});
  const at::Tensor hi_b = hi.reshape({1, channels, 1, 1});
  expect(at::all(xp >= lo_b).item<bool>() && at::all(xp <= hi_b).item<bool>(), "fade_step_ clamps xp to [lo, hi]");
  expect(!at::any(at::isnan(xp)).item<bool>() && !at::any(at::isnan(mom)).item<bool>(), "fade_step_ makes no NaN");

  const std::vector<c10::SymInt> image_shape{c10::SymInt(channels), c10::SymInt(7), c10::SymInt(5)};
  const at::Tensor ids = find_op<FadeMaskIdsOp>("pixelfade::fade_mask_ids").call(keys, image_shape, num_masks, true);
  at::Tensor xp_ids = xp_before.clone();
  at::Tensor mom_ids = mom_before.clone();
  fade_step.call(xp_ids, mom_ids, grad, do_co, do_pro, beta, mask_idx, keys, lo, hi, alpha, num_masks, norm, true,
                 ids);
  expect(at::equal(xp_ids, xp) && at::equal(mom_ids, mom),
         "fade_step_ with materialised mask_ids gives the same bits as drawing the ids from the keys");

  bool named_argument = false;
  try {
    fade_step.call(xp, mom, grad, do_co, do_pro, beta.to(at::kDouble), mask_idx, keys, lo, hi, alpha, num_masks, norm,
                   true, std::nullopt);
  } catch (const c10::TypeError& error) {
    named_argument = std::string(error.what_without_backtrace()).find("beta") != std::string::npos;
  }
  expect(named_argument, "fade_step_ rejects a float64 beta with a TypeError naming beta");
}

// Runs of kPhiloxRun indices that straddle 2^32 (the counter's high word changes mid-run) and end at 2^64 - 1.
void check_philox_runs() {
  const uint64_t firsts[] = {0, (uint64_t{1} << 32) - 100, ~uint64_t{0} - (pixelfade::kPhiloxRun - 1)};
  const pixelfade::Stream streams[] = {{0x0123456789abcdefULL, 0}, {~uint64_t{0}, 0xfedcba9876543210ULL}};
  bool masks_same = true;
  bool noise_same = true;
  for (const pixelfade::Stream key : streams) {
    for (const uint64_t first : firsts) {
      int32_t ids[pixelfade::kPhiloxRun];
      float noise[pixelfade::kPhiloxRun];
      pixelfade::mask_id_run(key, first, pixelfade::kPhiloxRun, 7, ids);
      pixelfade::noise_run(key, first, pixelfade::kPhiloxRun, noise);
      for (int64_t j = 0; j < pixelfade::kPhiloxRun; ++j) {
        masks_same = masks_same && ids[j] == pixelfade::mask_id(key, first + j, 7);
        noise_same = noise_same && std::abs(noise[j] - pixelfade::noise_value(key, first + j)) <= 1e-6f;
      }
    }
  }
  expect(masks_same, "vectorised mask-id runs equal the scalar mask ids across 2^32 and up to 2^64 - 1");
  expect(noise_same, "vectorised η runs are within 1e-6 of the scalar η across 2^32 and up to 2^64 - 1");
}

}  // namespace

int main(int argc, char** argv) {
  const pixelfade::BuildInfo info = pixelfade::build_info();
  std::cout << "pixelfade smoke test: torch " << info.torch_version << ", OpenMP " << (info.openmp ? "yes" : "no")
            << ", CUDA " << (info.cuda ? info.cuda_version : "no") << "\n";
  int philox_vectors = 0;
  int kat_vectors = 0;
  bool noise_vector = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--philox" && i + 6 < argc) {
      check_philox(std::vector<std::string>(argv + i + 1, argv + i + 7));
      i += 6;
      ++philox_vectors;
    } else if (flag == "--philox-kat" && i + 10 < argc) {
      check_philox_kat(std::vector<std::string>(argv + i + 1, argv + i + 11));
      i += 10;
      ++kat_vectors;
    } else if (flag == "--noise" && i + 3 < argc) {
      check_noise(std::vector<std::string>(argv + i + 1, argv + i + 4));
      i += 3;
      noise_vector = true;
    } else {
      std::cerr << "unknown or incomplete argument '" << flag << "' (see the usage at the top of smoke_test.cpp)\n";
      return 2;
    }
  }
  expect(philox_vectors >= 2 && noise_vector && kat_vectors >= 1,
         "at least two --philox vectors, one --noise vector and one --philox-kat vector were given");
  check_fade_step();
  check_philox_runs();
  std::cout << (failures == 0 ? "all checks passed" : std::to_string(failures) + " check(s) failed") << "\n";
  return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
