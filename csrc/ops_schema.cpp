// Schemas of the pixelfade ops (DESIGN.md, "Fused ops"); kernels are registered per backend in cpu/ and cuda/.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

TORCH_LIBRARY(pixelfade, m) {
  const std::vector<at::Tag> compliant{at::Tag::pt2_compliant_tag};
  m.def(
      "fade_step_(Tensor(a!) xp, Tensor(b!) mom, Tensor grad, Tensor do_co, Tensor do_pro, Tensor beta, "
      "Tensor mask_idx, Tensor keys, Tensor lo, Tensor hi, float alpha, int num_masks, str norm, "
      "bool pixel_masks, Tensor? mask_ids=None) -> ()",
      compliant);
  m.def("fade_noise(Tensor keys, SymInt[] shape) -> Tensor", compliant);
  m.def("fade_mask_ids(Tensor keys, SymInt[] shape, int num_masks, bool pixel_masks) -> Tensor", compliant);
  m.def("philox_words(Tensor key, Tensor index, Tensor? counter_high=None) -> Tensor", compliant);
}
