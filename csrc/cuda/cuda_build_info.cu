// The CUDA side of build_info(): the architectures nvcc compiled this file for and the CUDA runtime version.
#include <cuda_runtime_api.h>

#include <sstream>
#include <string>
#include <vector>

#include "build_info.h"

#define PIXELFADE_STRINGIFY(...) #__VA_ARGS__
#define PIXELFADE_EXPAND_STRINGIFY(...) PIXELFADE_STRINGIFY(__VA_ARGS__)

namespace pixelfade {

std::vector<std::string> cuda_arch_list() {
  std::vector<std::string> archs;
#ifdef __CUDA_ARCH_LIST__
  // nvcc defines __CUDA_ARCH_LIST__ as the compiled virtual architectures, e.g. 800,860,900.
  std::istringstream list(PIXELFADE_EXPAND_STRINGIFY(__CUDA_ARCH_LIST__));
  std::string arch;
  while (std::getline(list, arch, ',')) {
    archs.push_back("sm_" + std::to_string(std::stoi(arch) / 10));
  }
#endif
  return archs;
}

std::string cuda_runtime_version() {
  return std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10);
}

}  // namespace pixelfade
