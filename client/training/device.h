// File: device.h
// Run-time choice of the LibTorch device and thread count. The code compiles against the
// CPU-only Debian LibTorch; CUDA is used only when the LibTorch linked at run time has it.
#ifndef TESSERA_CLIENT_TRAINING_DEVICE_H_
#define TESSERA_CLIENT_TRAINING_DEVICE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera {

// Resolves a device spec to a concrete LibTorch device string:
//   "auto"   -> "cuda:0" when CUDA is available, else "cpu"
//   "cpu"    -> "cpu"
//   "cuda"   -> "cuda:0";  "cuda:N" -> "cuda:N"
// Errors: INVALID_ARGUMENT for any other spec; FAILED_PRECONDITION when CUDA is requested
// but this LibTorch has no CUDA device (or fewer than N + 1 devices).
absl::StatusOr<std::string> ResolveDevice(absl::string_view spec);

// Sets LibTorch's intra-op thread count for the whole process (at::set_num_threads).
// 0 leaves LibTorch's default (one thread per core). Not thread-safe with running models:
// call it at start-up. Errors: INVALID_ARGUMENT for a negative count.
absl::Status SetTorchThreads(int num_threads);
// The current intra-op thread count.
int TorchThreads();

}  // namespace tessera

#endif  // TESSERA_CLIENT_TRAINING_DEVICE_H_
