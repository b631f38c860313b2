#include "build_info.h"

#include <torch/version.h>

#include <string>

namespace pixelfade {

BuildInfo build_info() {
  BuildInfo info;
#ifdef PIXELFADE_WITH_CUDA
  info.cuda = true;
  info.cuda_archs = cuda_arch_list();
  info.cuda_version = cuda_runtime_version();
#else
  info.cuda = false;
#endif
#ifdef _OPENMP
  info.openmp = true;
#else
  info.openmp = false;
#endif
  info.torch_version = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                       std::to_string(TORCH_VERSION_PATCH);
  return info;
}

}  // namespace pixelfade
