// What this build of the pixelfade library contains (reported by pixelfade_fast._C.build_info() and the C++
// smoke test).
#pragma once

#include <string>
#include <vector>

namespace pixelfade {

struct BuildInfo {
  bool cuda;                            // CUDA kernels compiled in
  std::vector<std::string> cuda_archs;  // e.g. {"sm_80", "sm_90"}; empty without CUDA
  std::string cuda_version;             // CUDA runtime the kernels were compiled with, e.g. "13.0"; empty without
  bool openmp;                          // CPU sources compiled with OpenMP
  std::string torch_version;            // torch headers compiled against, e.g. "2.13.0"
};

BuildInfo build_info();

#ifdef PIXELFADE_WITH_CUDA
// Defined in cuda/cuda_build_info.cu, from what nvcc compiled.
std::vector<std::string> cuda_arch_list();
std::string cuda_runtime_version();
#endif

}  // namespace pixelfade
