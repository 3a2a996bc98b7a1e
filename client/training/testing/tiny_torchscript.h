// File: tiny_torchscript.h
// Test-only: writes a small TorchScript program built in C++ the way torch.jit.script
// saves one, so tests need neither Python nor LibTorch headers.
#ifndef TESSERA_CLIENT_TRAINING_TESTING_TINY_TORCHSCRIPT_H_
#define TESSERA_CLIENT_TRAINING_TESTING_TINY_TORCHSCRIPT_H_

#include <string>

#include "absl/status/status.h"
#include "client/data/dataset.h"

namespace tessera {

// A linear classifier over 4 features and 3 classes behind a BatchNorm-like submodule.
// State, in state_dict order:
//   weight float32[3,4], bias float32[3], bn.weight float32[4]   (parameters)
//   bn.running_mean float32[4], bn.num_batches_tracked int64[]   (buffers)
// In training mode forward increments bn.num_batches_tracked and updates running_mean.
// Weights are drawn from `seed`. Errors: INTERNAL when LibTorch fails to save.
absl::Status WriteTinyTorchScript(const std::string& path, uint64_t seed = 0);

// 30 examples with 4 features of 3 classes, which the tiny program can learn.
Dataset TinyTabularDataset();

}  // namespace tessera

#endif  // TESSERA_CLIENT_TRAINING_TESTING_TINY_TORCHSCRIPT_H_
