#include "client/training/device.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <torch/cuda.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tessera {

absl::StatusOr<std::string> ResolveDevice(absl::string_view spec) {
  if (spec == "cpu") return std::string("cpu");
  if (spec == "auto") {
    return torch::cuda::is_available() ? std::string("cuda:0") : std::string("cpu");
  }
  int index = 0;
  if (spec != "cuda") {
    if (!absl::StartsWith(spec, "cuda:") ||
        !absl::SimpleAtoi(spec.substr(5), &index) || index < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown device \"", spec, "\"; want auto, cpu, cuda or cuda:N"));
    }
  }
  if (!torch::cuda::is_available()) {
    return absl::FailedPreconditionError(
        absl::StrCat("device \"", spec,
                     "\" requested but CUDA is not available (this LibTorch is CPU-only or "
                     "no GPU is visible); use --device=cpu or auto"));
  }
  const size_t count = torch::cuda::device_count();
  if (static_cast<size_t>(index) >= count) {
    return absl::FailedPreconditionError(absl::StrCat(
        "device \"", spec, "\" requested but only ", count, " CUDA device(s) exist"));
  }
  return absl::StrCat("cuda:", index);
}

absl::Status SetTorchThreads(int num_threads) {
  if (num_threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("thread count must be >= 0, got ", num_threads));
  }
  if (num_threads > 0) {
    at::set_num_threads(num_threads);
    // LibTorch's CPU matrix products run in OpenBLAS (Debian's libopenblas0-pthread), whose
    // own thread pool at::set_num_threads does not size (it only handles MKL); left alone it
    // starts one spinning thread per core beside LibTorch's. Found at run time, so a build
    // against another BLAS is unaffected.
    using SetThreads = void (*)(int);
    if (auto* set_openblas =
            reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
      set_openblas(num_threads);
    }
  }
  return absl::OkStatus();
}

int TorchThreads() { return at::get_num_threads(); }

}  // namespace tessera
