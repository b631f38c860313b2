// The Python module pixelfade_fast._C: importing it registers the pixelfade ops (static initialisers of the
// other sources); its one function reports what the build contains.
#include <torch/extension.h>

#include "build_info.h"

namespace {

pybind11::dict build_info_dict() {
  const pixelfade::BuildInfo info = pixelfade::build_info();
  pybind11::dict out;
  out["cuda"] = info.cuda;
  out["cuda_archs"] = info.cuda_archs;
  out["cuda_version"] = info.cuda ? pybind11::object(pybind11::str(info.cuda_version)) : pybind11::none();
  out["openmp"] = info.openmp;
  out["torch_version"] = info.torch_version;
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "pixelfade_fast C++/CUDA ops (torch.ops.pixelfade.*) and their build information";
  m.def("build_info", &build_info_dict,
        "dict: cuda (bool), cuda_archs (list of 'sm_XY'), cuda_version (str or None), openmp (bool), "
        "torch_version (str, the headers compiled against)");
}
